import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MemoryStore, openSqliteStore, type Store } from '../../src/store.ts';
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

describe('SqliteStore', () => {
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
