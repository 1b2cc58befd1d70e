/**
 * The Store contract: what every store must do, run against each implementation (memory, SQLite;
 * later Redis) by `store.test.ts`. Time is a fake clock the harness hands the store.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/store.ts';
import { FakeClock } from '../../src/testing.ts';

export interface StoreHarness {
  readonly store: Store;
  /** A second handle on the same state, as another process would open it. */
  another(): Promise<Store>;
  close(): Promise<void>;
}

const sorted = <T extends { key: string }>(entries: T[]) =>
  [...entries].sort((a, b) => (a.key < b.key ? -1 : 1));

export function storeContract(name: string, open: (clock: FakeClock) => Promise<StoreHarness>): void {
  describe(`Store contract: ${name}`, () => {
    const setup = async () => {
      const clock = new FakeClock();
      const harness = await open(clock);
      return { clock, store: harness.store, harness };
    };

    it('keeps plain JSON values and gives them back equal', async () => {
      const { store, harness } = await setup();
      const values = [
        null,
        true,
        0,
        -1.5,
        '',
        'héllo 你好 🎉',
        [],
        [1, 'two', [3]],
        { a: { b: [null, false] }, 'with space': 'x' },
      ];
      for (const [index, value] of values.entries()) await store.set(`k${index}`, value);
      for (const [index, value] of values.entries()) expect(await store.get(`k${index}`)).toEqual(value);
      expect(await store.get('missing')).toBeUndefined();
      await harness.close();
    });

    it('copies values in and out: changing an object later changes nothing stored', async () => {
      const { store, harness } = await setup();
      const value = { list: [1, 2] };
      await store.set('k', value);
      value.list.push(3);
      const read = await store.get<{ list: number[] }>('k');
      read!.list.push(4);
      expect(await store.get('k')).toEqual({ list: [1, 2] });
      await harness.close();
    });

    it('overwrites, and a set without ttlMs clears an earlier expiry', async () => {
      const { store, clock, harness } = await setup();
      await store.set('k', 1, { ttlMs: 1000 });
      await store.set('k', 2);
      await clock.tick(5000);
      expect(await store.get('k')).toBe(2);
      await harness.close();
    });

    it('keeps a large short-lived value like any other, expiry included', async () => {
      const { store, clock, harness } = await setup();
      const batch = Array.from({ length: 100 }, (_, i) => ({
        update_id: 1000 + i,
        text: `/echo message ${i}`,
      }));
      await store.set('held', { updates: batch }, { ttlMs: 1000, shortLived: true });
      expect(await store.get('held')).toEqual({ updates: batch });
      await store.set('held', { updates: batch.slice(50) }, { ttlMs: 1000, shortLived: true });
      expect(await store.get('held')).toEqual({ updates: batch.slice(50) });
      await clock.tick(1000);
      expect(await store.get('held')).toBeUndefined();
      await harness.close();
    });

    it('expires a value exactly ttlMs after it was set, for get, list and delete alike', async () => {
      const { store, clock, harness } = await setup();
      await store.set('session:a', 'a', { ttlMs: 1000 });
      await store.set('session:b', 'b');
      await clock.tick(999);
      expect(await store.get('session:a')).toBe('a');
      expect(sorted(await store.list('session:')).map((e) => e.key)).toEqual(['session:a', 'session:b']);
      await clock.tick(1);
      expect(await store.get('session:a')).toBeUndefined();
      expect((await store.list('session:')).map((e) => e.key)).toEqual(['session:b']);
      expect(await store.delete('session:a')).toBe(false);
      await harness.close();
    });

    it('deletes, telling whether there was a value', async () => {
      const { store, harness } = await setup();
      await store.set('k', 'v');
      expect(await store.delete('k')).toBe(true);
      expect(await store.delete('k')).toBe(false);
      expect(await store.get('k')).toBeUndefined();
      await harness.close();
    });

    it('lists exactly the keys that start with the prefix, wildcards taken literally', async () => {
      const { store, harness } = await setup();
      for (const key of ['job:1', 'job:2', 'job', 'jobs:1', 'a%b', 'a%', 'axb', 'a_b', 'ab', 'é:1', 'é:2']) {
        await store.set(key, key.length);
      }
      expect(sorted(await store.list('job:'))).toEqual([
        { key: 'job:1', value: 5 },
        { key: 'job:2', value: 5 },
      ]);
      expect(sorted(await store.list('a%')).map((e) => e.key)).toEqual(['a%', 'a%b']);
      expect((await store.list('a_')).map((e) => e.key)).toEqual(['a_b']);
      expect(sorted(await store.list('é:')).map((e) => e.key)).toEqual(['é:1', 'é:2']);
      expect(await store.list('nothing')).toEqual([]);
      expect(await store.list('')).toHaveLength(11);
      await harness.close();
    });

    it('refuses what JSON cannot hold, empty keys and bad expiry times, with a TypeError', async () => {
      const { store, harness } = await setup();
      await expect(store.set('k', undefined as never)).rejects.toThrow(TypeError);
      await expect(store.set('k', 1n as never)).rejects.toThrow(TypeError);
      await expect(store.set('', 1)).rejects.toThrow(TypeError);
      await expect(store.set('k', 1, { ttlMs: 0 })).rejects.toThrow(TypeError);
      await expect(store.set('k', 1, { ttlMs: 1.5 })).rejects.toThrow(TypeError);
      await expect(store.lock('k', -1)).rejects.toThrow(TypeError);
      expect(await store.get('k')).toBeUndefined();
      await harness.close();
    });

    it('gives a lock to one holder at a time, until it is released', async () => {
      const { store, harness } = await setup();
      const first = await store.lock('job:1', 10_000);
      expect(first).toBeDefined();
      expect(await store.lock('job:1', 10_000)).toBeUndefined();
      expect(await store.lock('job:2', 10_000)).toBeDefined();
      await first!.release();
      const second = await store.lock('job:1', 10_000);
      expect(second).toBeDefined();
      // A holder that already released cannot release someone else's lock.
      await first!.release();
      expect(await store.lock('job:1', 10_000)).toBeUndefined();
      await harness.close();
    });

    it('hands out exactly one of many simultaneous attempts on a lock', async () => {
      const { store, harness } = await setup();
      const attempts = await Promise.all(Array.from({ length: 20 }, () => store.lock('race', 10_000)));
      expect(attempts.filter(Boolean)).toHaveLength(1);
      await harness.close();
    });

    it('lets a lock run out after ttlMs, unless extended; a lost lock cannot be extended', async () => {
      const { store, clock, harness } = await setup();
      const lock = await store.lock('job', 1000);
      await clock.tick(800);
      expect(await lock!.extend(1000)).toBe(true);
      await clock.tick(800);
      expect(await store.lock('job', 1000)).toBeUndefined();
      await clock.tick(200);
      const other = await store.lock('job', 1000);
      expect(other).toBeDefined();
      expect(await lock!.extend(1000)).toBe(false);
      await lock!.release();
      expect(await store.lock('job', 1000)).toBeUndefined();
      await harness.close();
    });

    it('keeps locks apart from values of the same key', async () => {
      const { store, harness } = await setup();
      await store.set('shared', 'value');
      const lock = await store.lock('shared', 1000);
      expect(await store.get('shared')).toBe('value');
      expect(await store.delete('shared')).toBe(true);
      expect(await store.lock('shared', 1000)).toBeUndefined();
      await lock!.release();
      await harness.close();
    });

    it('shares values and locks between two handles on the same state', async () => {
      const { store, harness } = await setup();
      const other = await harness.another();
      await store.set('k', { from: 'first' });
      expect(await other.get('k')).toEqual({ from: 'first' });
      const lock = await other.lock('job', 10_000);
      expect(lock).toBeDefined();
      expect(await store.lock('job', 10_000)).toBeUndefined();
      await lock!.release();
      expect(await store.lock('job', 10_000)).toBeDefined();
      expect(await other.delete('k')).toBe(true);
      expect(await store.get('k')).toBeUndefined();
      await harness.close();
    });
  });
}
