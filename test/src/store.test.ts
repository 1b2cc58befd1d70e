import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/runtime/sqlite-store.ts';
import { MemoryStore, namespacedStore, type Store } from '../../src/store.ts';
import { FakeClock } from '../../src/testing.ts';
import { storeContract } from './store.contract.ts';

const tempFile = () => join(mkdtempSync(join(tmpdir(), 'chorus-store-')), 'nested', 'state.sqlite');

storeContract('memory', async (clock) => {
  const store = new MemoryStore({ clock });
  return { store, another: async () => store, close: () => store.close() };
});

storeContract('sqlite', async (clock) => {
  const path = tempFile();
  const opened: Store[] = [await openSqliteStore(path, { clock })];
  return {
    store: opened[0]!,
    another: async () => {
      const store = await openSqliteStore(path, { clock });
      opened.push(store);
      return store;
    },
    close: async () => {
      for (const store of opened) await store.close();
    },
  };
});

storeContract('namespaced view of a memory store', async (clock) => {
  const store = new MemoryStore({ clock });
  // Another plugin's keys share the store, and must never show through the view.
  await namespacedStore(store, 'plugin:other:').set('k', 'theirs');
  return {
    store: namespacedStore(store, 'plugin:mine:'),
    another: async () => namespacedStore(store, 'plugin:mine:'),
    close: () => store.close(),
  };
});

storeContract('namespaced view of a sqlite store', async (clock) => {
  const path = tempFile();
  const opened: Store[] = [await openSqliteStore(path, { clock })];
  await namespacedStore(opened[0]!, 'adapter:b:').set('job:1', 'theirs');
  return {
    store: namespacedStore(opened[0]!, 'adapter:a:'),
    another: async () => {
      const store = await openSqliteStore(path, { clock });
      opened.push(store);
      return namespacedStore(store, 'adapter:a:');
    },
    close: async () => {
      for (const store of opened) await store.close();
    },
  };
});

describe('namespacedStore', () => {
  it('keeps each namespace apart, and stores under the prefixed key', async () => {
    const store = new MemoryStore();
    const ask = namespacedStore(store, 'plugin:ask:');
    const draw = namespacedStore(store, 'plugin:draw:');
    await ask.set('c:1', 'a');
    await draw.set('c:1', 'd');
    expect(await ask.get('c:1')).toBe('a');
    expect(await draw.get('c:1')).toBe('d');
    expect(await ask.list('')).toEqual([{ key: 'c:1', value: 'a' }]);
    expect((await store.list('')).map((e) => e.key).sort()).toEqual(['plugin:ask:c:1', 'plugin:draw:c:1']);
    const lock = await ask.lock('l', 1000);
    expect(lock?.key).toBe('l');
    expect(await draw.lock('l', 1000)).toBeDefined();
    expect(await store.lock('plugin:ask:l', 1000)).toBeUndefined();
    await expect(ask.get('')).rejects.toThrow(TypeError);
    expect(() => namespacedStore(store, '')).toThrow(TypeError);
    // Closing a view leaves the store open for everyone else.
    await ask.close();
    expect(await draw.get('c:1')).toBe('d');
  });
});

describe('SqliteStore', () => {
  it('compresses large values: a 5-turn chat takes about half its text on disk, and reads back equal', async () => {
    const path = tempFile();
    const store = await openSqliteStore(path);
    const words = ['light', 'scatters', 'blue', 'sky', 'because', 'air', 'molecules', 'are', 'small', 'red'];
    // Text that does not repeat itself: a pseudo-random walk through the words.
    const prose = (seed: number, length: number) => {
      let text = '';
      for (let x = seed; text.length < length; x = (x * 1103515245 + 12345) % 2147483648)
        text += `${words[x % words.length]}${x % 7 === 0 ? '. ' : ' '}`;
      return text;
    };
    const count = 300;
    const values = Array.from({ length: count }, (_, i) =>
      Array.from({ length: 10 }, (_, turn) => prose(i * 10 + turn, turn % 2 ? 520 : 46)),
    );
    for (const [i, value] of values.entries()) await store.set(`c:${i}`, value);
    expect(await store.get('c:7')).toEqual(values[7]);
    expect((await store.list('c:1')).length).toBe(111);
    await store.close();
    const textBytes = JSON.stringify(values).length / count;
    const fileBytes = statSync(path).size / count;
    expect(textBytes).toBeGreaterThan(2800);
    expect(fileBytes).toBeLessThan(textBytes * 0.6);
  });

  it('stores a short-lived value as plain text: it is replaced before compressing it would pay', async () => {
    const path = tempFile();
    const store = await openSqliteStore(path);
    const updates = Array.from({ length: 100 }, (_, i) => ({ update_id: i, text: `/echo message ${i}` }));
    await store.set('held', { updates }, { shortLived: true });
    await store.set('kept', { updates });
    expect(await store.get('held')).toEqual({ updates });
    await store.close();
    const db = new Database(path, { readonly: true });
    const kinds = db.prepare('SELECT key, typeof(value) AS kind FROM kv ORDER BY key').all();
    db.close();
    expect(kinds).toEqual([
      { key: 'held', kind: 'text' },
      { key: 'kept', kind: 'blob' },
    ]);
  });

  it('finds a file it may read but not write at open, not at the first write', async () => {
    const path = tempFile();
    await (await openSqliteStore(path)).close();
    if (process.getuid?.() === 0) return; // root writes read-only files (the ask memory test covers it with chattr)
    chmodSync(path, 0o444);
    await expect(openSqliteStore(path)).rejects.toThrow(/readonly/);
  });

  it('keeps values across a close and a reopen of the file', async () => {
    const path = tempFile();
    const first = await openSqliteStore(path);
    await first.set('job:1', { runAt: 123 });
    await first.set('short', 'lived', { ttlMs: 60_000 });
    await first.close();
    const second = await openSqliteStore(path);
    expect(await second.get('job:1')).toEqual({ runAt: 123 });
    expect(await second.get('short')).toBe('lived');
    await second.close();
  });

  it('waits for another connection’s write without stopping the event loop, then writes', async () => {
    const path = tempFile();
    const store = await openSqliteStore(path, { busyTimeoutMs: 5 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    other.prepare("INSERT INTO kv (key, value) VALUES ('theirs', '1')").run();
    let loopTurns = 0;
    const timer = setInterval(() => loopTurns++, 1);
    const write = store.set('mine', 2);
    let settled = false;
    void write.finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect(loopTurns).toBeGreaterThan(2);
    other.exec('COMMIT');
    await write;
    clearInterval(timer);
    expect(await store.get('mine')).toBe(2);
    expect(await store.get('theirs')).toBe(1);
    other.close();
    await store.close();
  });

  it('gives up with STORE_BUSY when the file stays locked past busyRetryMs', async () => {
    const path = tempFile();
    const store = await openSqliteStore(path, { busyTimeoutMs: 5, busyRetryMs: 100 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await expect(store.set('k', 1)).rejects.toMatchObject({ code: 'STORE_BUSY' });
    other.exec('ROLLBACK');
    other.close();
    await store.set('k', 1);
    expect(await store.get('k')).toBe(1);
    await store.close();
  });
});

describe('MemoryStore', () => {
  it('refuses work once closed', async () => {
    const store = new MemoryStore();
    await store.close();
    await expect(store.get('k')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});

describe('expired entries', () => {
  it('are swept every 1000 writes, values and locks alike, from both stores', async () => {
    const path = tempFile();
    const clock = new FakeClock();
    const sqlite = await openSqliteStore(path, { clock });
    const memory = new MemoryStore({ clock });
    for (const store of [sqlite, memory]) {
      for (let i = 0; i < 50; i++) {
        await store.set(`seen:${i}`, 1, { ttlMs: 1000 });
        await store.lock(`claim:${i}`, 1000);
      }
      await store.set('kept', 'forever');
    }
    const rows = new Database(path, { readonly: true });
    const count = () =>
      (
        rows.prepare('SELECT (SELECT count(*) FROM kv) + (SELECT count(*) FROM locks) AS n').get() as {
          n: number;
        }
      ).n;
    expect(count()).toBe(101);
    await clock.tick(1000);
    for (const store of [sqlite, memory]) for (let i = 0; i < 899; i++) await store.set('other', i);
    expect(count()).toBe(2);
    expect(await memory.get('kept')).toBe('forever');
    expect(await memory.lock('claim:1', 1000)).toBeDefined();
    rows.close();
    await sqlite.close();
  });
});
