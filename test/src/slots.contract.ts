/**
 * The Slots contract: what every keyed semaphore must do, run against each implementation (memory
 * by `slots.test.ts`, Redis by `runtime/redis/state.test.ts`). `another()` is a second handle on
 * the same slots, as another process would open it: the line is one line across both.
 */
import { describe, expect, it, vi } from 'vitest';
import type { ReleaseSlot, Slots } from '../../src/slots.ts';

export interface SlotsHarness {
  readonly slots: Slots;
  another(): Promise<Slots>;
  close(): Promise<void>;
}

/** Settles a promise into a value the test can poll. */
function watch<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { value, settled: true }),
    (error: unknown) => Object.assign(state, { error, settled: true }),
  );
  return state;
}

const eventually = (check: () => void) => vi.waitFor(check, { timeout: 3000, interval: 10 });
/** Long enough for a wrong grant to show (a pub/sub round trip), short enough for CI. */
const pause = () => new Promise((resolve) => setTimeout(resolve, 100));

export function slotsContract(name: string, open: () => Promise<SlotsHarness>): void {
  describe(`Slots contract: ${name}`, () => {
    it('grants up to the capacity, then lets callers in as slots are released, in order', async () => {
      const harness = await open();
      const other = await harness.another();
      const first = await harness.slots.acquire({ key: 'backend:flux', capacity: 2 });
      const second = await other.acquire({ key: 'backend:flux', capacity: 2 });
      expect(first).toBeTypeOf('function');
      expect(second).toBeTypeOf('function');
      const third = watch(other.acquire({ key: 'backend:flux', capacity: 2 }));
      const fourth = watch(harness.slots.acquire({ key: 'backend:flux', capacity: 2 }));
      await pause();
      expect([third.settled, fourth.settled]).toEqual([false, false]);
      first!();
      await eventually(() => expect(third.settled).toBe(true));
      await pause();
      expect(fourth.settled).toBe(false);
      second!();
      await eventually(() => expect(fourth.settled).toBe(true));
      (third.value as ReleaseSlot)();
      (fourth.value as ReleaseSlot)();
      // All free again: a new caller gets a slot at once.
      const again = await harness.slots.acquire({ key: 'backend:flux', capacity: 2, maxWaiting: 0 });
      expect(again).toBeTypeOf('function');
      again!();
      await harness.close();
    });

    it('tells each waiting caller its place, again each time it changes', async () => {
      const harness = await open();
      const other = await harness.another();
      const holder = await harness.slots.acquire({ key: 'k', capacity: 1 });
      const places = { b: [] as number[], c: [] as number[] };
      const b = watch(other.acquire({ key: 'k', capacity: 1, onQueued: (n) => places.b.push(n) }));
      await eventually(() => expect(places.b).toEqual([0]));
      const aborter = new AbortController();
      const c = watch(
        harness.slots.acquire({
          key: 'k',
          capacity: 1,
          signal: aborter.signal,
          onQueued: (n) => places.c.push(n),
        }),
      );
      await eventually(() => expect(places.c).toEqual([1]));
      const d: number[] = [];
      const dWatch = watch(other.acquire({ key: 'k', capacity: 1, onQueued: (n) => d.push(n) }));
      await eventually(() => expect(d).toEqual([2]));
      // C leaves the line: D moves up; B, before it, stays where it was.
      aborter.abort(new Error('user cancelled'));
      await eventually(() => expect(c.error).toEqual(new Error('user cancelled')));
      await eventually(() => expect(d).toEqual([2, 1]));
      expect(places.b).toEqual([0]);
      holder!();
      await eventually(() => expect(b.settled).toBe(true));
      await eventually(() => expect(d).toEqual([2, 1, 0]));
      (b.value as ReleaseSlot)();
      await eventually(() => expect(dWatch.settled).toBe(true));
      (dWatch.value as ReleaseSlot)();
      await harness.close();
    });

    it('refuses a caller when the line is full, and with maxWaiting 0 when no slot is free', async () => {
      const harness = await open();
      const other = await harness.another();
      const holder = await harness.slots.acquire({ key: 'user:ann', capacity: 1, maxWaiting: 1 });
      expect(await other.acquire({ key: 'user:ann', capacity: 1, maxWaiting: 0 })).toBeUndefined();
      const waiting = watch(other.acquire({ key: 'user:ann', capacity: 1, maxWaiting: 1 }));
      await pause();
      expect(waiting.settled).toBe(false);
      expect(await harness.slots.acquire({ key: 'user:ann', capacity: 1, maxWaiting: 1 })).toBeUndefined();
      // Another key has its own slots and line.
      const bob = await harness.slots.acquire({ key: 'user:bob', capacity: 1, maxWaiting: 0 });
      expect(bob).toBeTypeOf('function');
      holder!();
      await eventually(() => expect(waiting.value).toBeTypeOf('function'));
      (waiting.value as ReleaseSlot)();
      bob!();
      await harness.close();
    });

    it('releases once however often release is called, and rejects a signal aborted before', async () => {
      const harness = await open();
      const first = await harness.slots.acquire({ key: 'once', capacity: 1 });
      const next = watch(harness.slots.acquire({ key: 'once', capacity: 1 }));
      first!();
      first!();
      await eventually(() => expect(next.settled).toBe(true));
      // The repeated release did not free a second slot: this one has to wait.
      expect(await harness.slots.acquire({ key: 'once', capacity: 1, maxWaiting: 0 })).toBeUndefined();
      (next.value as ReleaseSlot)();
      const aborted = AbortSignal.abort(new Error('gone'));
      await expect(harness.slots.acquire({ key: 'once', capacity: 1, signal: aborted })).rejects.toThrow(
        'gone',
      );
      await harness.close();
    });

    it('says which option is wrong', async () => {
      const harness = await open();
      await expect(async () => harness.slots.acquire({ key: 'k', capacity: 0 })).rejects.toThrow(
        'capacity must be an integer >= 1, got 0',
      );
      await expect(async () =>
        harness.slots.acquire({ key: 'k', capacity: 1, maxWaiting: -1 }),
      ).rejects.toThrow('maxWaiting must be an integer >= 0, got -1');
      await harness.close();
    });
  });
}
