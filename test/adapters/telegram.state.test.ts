import { describe, expect, it } from 'vitest';
import { HandledUpdates, handledLifetimeMs } from '../../adapters/telegram/state.ts';
import { MemoryStore, type Store } from '../../src/store.ts';
import { FakeClock } from '../../src/testing.ts';

describe('HandledUpdates', () => {
  it('stores each batch as one entry that expires after a day, and a new run reads it back', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const now = () => clock.now();
    const first = await HandledUpdates.load(store, '42', { now });
    for (const id of [100, 101, 102]) first.add(id);
    expect(first.has(101)).toBe(true);
    expect(await store.list('')).toEqual([]);
    await first.flush();
    await first.flush(); // nothing new: nothing written
    first.add(103);
    await first.flush();
    expect((await store.list('handled:42:')).map((e) => e.value)).toHaveLength(2);
    expect(await store.list('handled:43:')).toEqual([]);

    const second = await HandledUpdates.load(store, '42', { now });
    expect([100, 101, 102, 103, 104].map((id) => second.has(id))).toEqual([true, true, true, true, false]);
    // Another bot's ids are its own.
    expect((await HandledUpdates.load(store, '43', { now })).has(100)).toBe(false);

    await clock.tick(handledLifetimeMs);
    expect(second.has(100)).toBe(false);
    expect(await store.list('')).toEqual([]);
    expect((await HandledUpdates.load(store, '42', { now })).has(100)).toBe(false);
  });

  it('keeps the newest `max` ids in memory', async () => {
    const handled = await HandledUpdates.load(new MemoryStore(), '1', { max: 3 });
    for (const id of [5, 6, 7, 8]) handled.add(id);
    expect([5, 6, 7, 8].map((id) => handled.has(id))).toEqual([false, true, true, true]);
  });

  it('a store that fails: says so, works on from memory, and writes the ids with the next flush', async () => {
    const store = new MemoryStore();
    let failing = true;
    const flaky: Store = {
      ...store,
      get: (key) => store.get(key),
      delete: (key) => store.delete(key),
      lock: (key, ttl) => store.lock(key, ttl),
      close: () => store.close(),
      list: (prefix) => (failing ? Promise.reject(new Error('disk gone')) : store.list(prefix)),
      set: (key, value, options) =>
        failing ? Promise.reject(new Error('disk gone')) : store.set(key, value, options),
    };
    const errors: string[] = [];
    const handled = await HandledUpdates.load(flaky, '7', { onError: (what) => errors.push(what) });
    handled.add(1);
    await handled.flush();
    expect(handled.has(1)).toBe(true);
    failing = false;
    handled.add(2);
    await handled.flush();
    expect(errors).toEqual([
      'could not read the handled update ids',
      'could not save the handled update ids',
    ]);
    const next = await HandledUpdates.load(store, '7');
    expect([1, 2].map((id) => next.has(id))).toEqual([true, true]);
  });
});
