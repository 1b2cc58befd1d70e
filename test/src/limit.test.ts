import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/clock.ts';
import { CancelledError } from '../../src/errors.ts';
import { createKeyedLimiter, createLimiter } from '../../src/limit.ts';
import { MemorySlots } from '../../src/slots.ts';
import { FakeClock, flush } from '../../src/testing.ts';

describe('createLimiter', () => {
  it('tells each waiting caller its place, and updates it as the line moves', async () => {
    const clock = new FakeClock();
    const limiter = createLimiter(2);
    const places: Record<string, number[]> = { c: [], d: [], e: [] };
    const run = (name: string, ms: number) =>
      limiter.run((signal) => sleep(clock, ms, signal).then(() => name), {
        onQueued: (ahead) => places[name]?.push(ahead),
      });
    const all = Promise.all([run('a', 100), run('b', 200), run('c', 100), run('d', 100), run('e', 100)]);
    await clock.tick(0);
    expect(limiter.active).toBe(2);
    expect(limiter.queued).toBe(3);
    await clock.tick(1000);
    expect(await all).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(places).toEqual({ c: [0], d: [1, 0], e: [2, 1, 0] });
  });

  it('a caller that aborts while queued leaves the line at once', async () => {
    const clock = new FakeClock();
    const limiter = createLimiter(1);
    const controller = new AbortController();
    const ran: string[] = [];
    const first = limiter.run(async (signal) => {
      await sleep(clock, 100, signal);
      ran.push('first');
    });
    const second = limiter.run(async () => void ran.push('second'), { signal: controller.signal });
    const thirdPlaces: number[] = [];
    const third = limiter.run(async () => void ran.push('third'), { onQueued: (n) => thirdPlaces.push(n) });
    await clock.tick(0);
    controller.abort(new CancelledError('gone'));
    await expect(second).rejects.toThrow('gone');
    expect(thirdPlaces).toEqual([1, 0]);
    await clock.tick(100);
    await Promise.all([first, third]);
    expect(ran).toEqual(['first', 'third']);
  });

  it('watches a signal shared by many waiting callers with one listener, and tells each when it aborts', async () => {
    const limiter = createLimiter(2);
    const job = new AbortController();
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const runs = Array.from({ length: 30 }, (_, i) =>
      limiter.run(() => blocked.then(() => i), { signal: job.signal }).catch((error: unknown) => error),
    );
    await flush();
    expect(limiter.active).toBe(2);
    expect(limiter.queued).toBe(28);
    // One listener for the 28 waiting (Node warns past 10 on one signal), none for the running.
    expect(getEventListeners(job.signal, 'abort')).toHaveLength(1);
    job.abort(new CancelledError('stop'));
    release();
    const results = await Promise.all(runs);
    expect(results.slice(0, 2)).toEqual([0, 1]);
    expect(results.slice(2).every((result) => result instanceof CancelledError)).toBe(true);
    expect(limiter.queued).toBe(0);
  });

  it('rejects a bad concurrency with TypeError', () => {
    expect(() => createLimiter(0)).toThrow(TypeError);
    expect(() => createLimiter(1.5)).toThrow(TypeError);
  });
});

describe('createKeyedLimiter', () => {
  it('takes a free slot before returning, queues per key in order, and lets an aborted waiter leave', async () => {
    const limiter = createKeyedLimiter(1);
    const order: string[] = [];
    const first = limiter.acquire('ann');
    expect(limiter.busy('ann')).toBe(true);
    expect(limiter.busy('bob')).toBe(false);
    const controller = new AbortController();
    const second = limiter.acquire('ann', controller.signal);
    const third = limiter.acquire('ann').then((release) => {
      order.push('third');
      return release;
    });
    controller.abort(new CancelledError('no longer'));
    await expect(second).rejects.toThrow('no longer');
    const releaseFirst = await first;
    order.push('first');
    releaseFirst();
    releaseFirst(); // releasing twice frees one slot only
    (await third)();
    expect(order).toEqual(['first', 'third']);
    expect(limiter.busy('ann')).toBe(false);
    expect(() => createKeyedLimiter(0)).toThrow(TypeError);
  });
});

describe('createLimiter with slots', () => {
  it('counts its slots in the seam: two limiters on one key share the capacity and one line', async () => {
    const slots = new MemorySlots();
    const here = createLimiter(1, { slots, key: 'backend:flux' });
    const there = createLimiter(1, { slots, key: 'backend:flux' });
    const release = await here.acquire();
    expect([here.active, there.active]).toEqual([1, 0]);
    const places: number[] = [];
    let ran = false;
    const waiting = there.run(
      async () => {
        ran = true;
        return 'drawn';
      },
      { onQueued: (ahead) => places.push(ahead) },
    );
    await flush();
    expect([ran, there.queued, places]).toEqual([false, 1, [0]]);
    release();
    expect(await waiting).toBe('drawn');
    expect([here.active, there.active, there.queued]).toEqual([0, 0, 0]);
  });

  it('leaves the line when aborted, and needs a key', async () => {
    const slots = new MemorySlots();
    const limiter = createLimiter(1, { slots, key: 'k' });
    const release = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(limiter.queued).toBe(0);
    release();
    expect(() => createLimiter(1, { slots })).toThrow('createLimiter: a key is needed with slots');
  });
});
