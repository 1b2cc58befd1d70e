import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/clock.ts';
import { asCompleted, gather, type Settled, wait, withTimeout } from '../../src/concurrency.ts';
import { CancelledError, TimeoutError } from '../../src/errors.ts';
import { createLimiter } from '../../src/limit.ts';
import { mergeStreams } from '../../src/streams.ts';
import { FakeClock, flush } from '../../src/testing.ts';

/** A small seeded PRNG, so property runs are reproducible. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A task that resolves (or rejects) with its key after `ms` on the fake clock and records aborts. */
function delayed(clock: FakeClock, ms: number, value: string, aborted: string[], fail = false) {
  return async (signal: AbortSignal) => {
    try {
      await sleep(clock, ms, signal);
    } catch (error) {
      aborted.push(value);
      throw error;
    }
    if (fail) throw new Error(`${value} failed`);
    return value;
  };
}

async function collect<T>(iterable: AsyncIterable<T>, clock: FakeClock, maxMs = 100_000): Promise<T[]> {
  const out: T[] = [];
  const done = (async () => {
    for await (const item of iterable) out.push(item);
  })();
  let settled = false;
  let failure: unknown;
  done.then(
    () => {
      settled = true;
    },
    (error) => {
      settled = true;
      failure = error;
    },
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += 10) await clock.tick(10);
  if (failure) throw failure;
  return out;
}

describe('asCompleted', () => {
  it('yields results in completion order, for 50 random latency sets', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = random(seed);
      const clock = new FakeClock();
      const latencies = Array.from(
        { length: 2 + Math.floor(next() * 8) },
        () => Math.floor(next() * 1000) * 10 + 10,
      );
      const failing = latencies.map(() => next() < 0.3);
      const tasks = latencies.map((ms, i) => delayed(clock, ms, `t${i}`, [], failing[i]));
      const results = await collect(asCompleted(tasks, { clock }), clock, 20_000);
      const expectedOrder = latencies
        .map((ms, i) => ({ ms, i }))
        .sort((a, b) => a.ms - b.ms || a.i - b.i)
        .map(({ i }) => i);
      expect(results.map((r) => r.key)).toEqual(expectedOrder);
      for (const result of results)
        expect(result.status).toBe(failing[result.key] ? 'rejected' : 'fulfilled');
    }
  });

  it('reports each result the moment it settles, before slower tasks finish', async () => {
    const clock = new FakeClock();
    const seen: { key: string; at: number }[] = [];
    const start = clock.now();
    const iteration = (async () => {
      for await (const r of asCompleted(
        { fast: delayed(clock, 100, 'a', []), slow: delayed(clock, 5000, 'b', []) },
        { clock },
      )) {
        seen.push({ key: r.key, at: clock.now() - start });
      }
    })();
    await clock.tick(100);
    expect(seen).toEqual([{ key: 'fast', at: 100 }]);
    await clock.tick(4900);
    await iteration;
    expect(seen.map((s) => s.key)).toEqual(['fast', 'slow']);
  });

  it('aborts the tasks still running when the consumer breaks early, and never starts queued ones', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const started: string[] = [];
    const task = (name: string, ms: number) => (signal: AbortSignal) => {
      started.push(name);
      return delayed(clock, ms, name, aborted)(signal);
    };
    const iteration = (async () => {
      for await (const r of asCompleted([task('a', 10), task('b', 1000), task('c', 2000), task('d', 50)], {
        clock,
        concurrency: 2,
      })) {
        return r.key;
      }
    })();
    await clock.tick(10);
    expect(await iteration).toBe(0);
    // `c` took the slot `a` freed; `d` was still waiting for one when the consumer left.
    expect(aborted.sort()).toEqual(['b', 'c']);
    expect(started).toEqual(['a', 'b', 'c']);
  });

  it('keeps the listeners off a signal all its tasks share: timeouts, limiters and sleeps wait on one', async () => {
    const clock = new FakeClock();
    const job = new AbortController();
    const limiter = createLimiter(5);
    const seen = new Set<AbortSignal>();
    // Each of 20 tasks waits as a draw backend does: a limiter's slot, a timeout, a sleep.
    const task = (signal: AbortSignal) => {
      seen.add(signal);
      return limiter.run((slot) => withTimeout((s) => sleep(clock, 60_000, s), 30_000, clock)(slot), {
        signal,
      });
    };
    const iteration = (async () => {
      try {
        for await (const _ of asCompleted(
          Array.from({ length: 20 }, () => task),
          { clock, signal: job.signal },
        ));
      } catch (error) {
        return error;
      }
    })();
    await clock.tick(1);
    const [shared] = [...seen];
    expect(seen.size).toBe(1);
    // Node warns past 10 on one signal: here the run's own and the one all the waits share.
    expect(getEventListeners(shared!, 'abort')).toHaveLength(2);
    expect(getEventListeners(job.signal, 'abort')).toHaveLength(1);
    const reason = new CancelledError('stop');
    job.abort(reason);
    expect(await iteration).toBe(reason);
    await flush();
    expect(limiter.active + limiter.queued).toBe(0);
  });

  it('never runs more task functions at once than `concurrency`', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed);
      const clock = new FakeClock();
      const limit = 1 + Math.floor(next() * 4);
      let running = 0;
      let peak = 0;
      const tasks = Array.from({ length: 12 }, (_, i) => async (signal: AbortSignal) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(clock, 10 + Math.floor(next() * 200), signal);
        running--;
        return i;
      });
      const results = await collect(asCompleted(tasks, { clock, concurrency: limit }), clock);
      expect(results).toHaveLength(12);
      expect(peak).toBe(limit);
    }
  });

  it('on timeout aborts what is left and reports each as TimeoutError, exactly once', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const results = await collect(
      asCompleted(
        {
          a: delayed(clock, 100, 'a', aborted),
          b: delayed(clock, 900, 'b', aborted),
          c: delayed(clock, 3000, 'c', aborted),
        },
        { clock, timeoutMs: 500 },
      ),
      clock,
    );
    expect(results.map((r) => [r.key, r.status])).toEqual([
      ['a', 'fulfilled'],
      ['b', 'rejected'],
      ['c', 'rejected'],
    ]);
    const reasons = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as { reason: unknown }).reason);
    for (const reason of reasons) expect(reason).toBeInstanceOf(TimeoutError);
    expect(aborted.sort()).toEqual(['b', 'c']);
  });

  it('throws the abort reason when the caller aborts, after aborting the tasks', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const controller = new AbortController();
    const seen: Settled<string, string>[] = [];
    const iteration = (async () => {
      for await (const r of asCompleted(
        { a: delayed(clock, 100, 'a', aborted), b: delayed(clock, 900, 'b', aborted) },
        {
          clock,
          signal: controller.signal,
        },
      )) {
        seen.push(r);
      }
    })();
    await clock.tick(200);
    controller.abort(new CancelledError('user cancel'));
    await expect(iteration).rejects.toThrow('user cancel');
    expect(seen.map((r) => r.key)).toEqual(['a']);
    expect(aborted).toEqual(['b']);
  });

  it('accepts plain promises and a Map', async () => {
    const results: unknown[] = [];
    for await (const r of asCompleted(
      new Map<string, Promise<number>>([
        ['x', Promise.resolve(1)],
        ['y', Promise.reject(new Error('no'))],
      ]),
    )) {
      results.push([r.key, r.status]);
    }
    expect(results).toEqual([
      ['x', 'fulfilled'],
      ['y', 'rejected'],
    ]);
  });

  it('rejects bad options with TypeError', () => {
    expect(() => asCompleted([], { concurrency: 0 })).toThrow(TypeError);
    expect(() => asCompleted([], { timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => mergeStreams([], { timeoutMs: Number.NaN })).toThrow(TypeError);
    expect(() => wait([], { returnWhen: 'sometime' as never })).toThrow(TypeError);
  });
});

describe('mergeStreams', () => {
  async function* ticker(
    clock: FakeClock,
    name: string,
    times: number[],
    failAt?: number,
    signal?: AbortSignal,
  ) {
    let previous = 0;
    for (const [index, at] of times.entries()) {
      await sleep(clock, at - previous, signal);
      previous = at;
      if (index === failAt) throw new Error(`${name} broke`);
      yield `${name}${index}`;
    }
  }

  it('interleaves pieces by arrival time and reports each end and error', async () => {
    const clock = new FakeClock();
    const events = await collect(
      mergeStreams({
        a: ticker(clock, 'a', [10, 30, 50]),
        b: ticker(clock, 'b', [20, 40], 1),
      }),
      clock,
    );
    expect(events.map((e) => (e.type === 'value' ? e.value : `${e.key}:${e.type}`))).toEqual([
      'a0',
      'b0',
      'a1',
      'b:error',
      'a2',
      'a:end',
    ]);
  });

  it('stops every source when the consumer breaks', async () => {
    const clock = new FakeClock();
    const closed: string[] = [];
    async function* source(name: string) {
      try {
        for (let i = 0; ; i++) {
          await sleep(clock, 10);
          yield `${name}${i}`;
        }
      } finally {
        closed.push(name);
      }
    }
    const iteration = (async () => {
      let count = 0;
      for await (const event of mergeStreams([source('a'), source('b')])) {
        if (event.type === 'value' && ++count === 3) break;
      }
    })();
    for (let i = 0; i < 10; i++) await clock.tick(10);
    await iteration;
    await clock.tick(20);
    expect(closed.sort()).toEqual(['a', 'b']);
  });

  it('reports unfinished sources as TimeoutError on timeout and aborts their signal', async () => {
    const clock = new FakeClock();
    let abortedSignal = false;
    const events = await collect(
      mergeStreams(
        {
          quick: ticker(clock, 'q', [10]),
          stuck: (signal: AbortSignal) => {
            signal.addEventListener('abort', () => {
              abortedSignal = true;
            });
            return ticker(clock, 's', [10, 100_000], undefined, signal);
          },
        },
        { clock, timeoutMs: 1000 },
      ),
      clock,
    );
    const last = events.at(-1)!;
    expect(last).toMatchObject({ key: 'stuck', type: 'error' });
    expect((last as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect(abortedSignal).toBe(true);
  });

  it('reads each source at most one piece ahead of the consumer', async () => {
    let produced = 0;
    async function* eager() {
      for (let i = 0; i < 100; i++) {
        produced++;
        yield i;
      }
    }
    const iterator = mergeStreams([eager()]);
    await iterator.next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(produced).toBeLessThanOrEqual(2);
    await iterator.return();
  });
});

describe('gather and wait', () => {
  it('gather returns settled results in input order whatever the completion order', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const promise = gather(
      [
        delayed(clock, 300, 'a', aborted),
        delayed(clock, 100, 'b', aborted, true),
        delayed(clock, 200, 'c', aborted),
      ],
      {
        clock,
      },
    );
    await clock.tick(300);
    const results = await promise;
    expect(results.map((r) => [r.key, r.status])).toEqual([
      [0, 'fulfilled'],
      [1, 'rejected'],
      [2, 'fulfilled'],
    ]);
  });

  it('wait first-completed returns the winner and leaves the rest running', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const promise = wait(
      { a: delayed(clock, 300, 'a', aborted), b: delayed(clock, 100, 'b', aborted) },
      {
        clock,
        returnWhen: 'first-completed',
      },
    );
    await clock.tick(100);
    const { done, pending } = await promise;
    expect(done.map((r) => r.key)).toEqual(['b']);
    expect(pending.map((p) => p.key)).toEqual(['a']);
    await clock.tick(200);
    await expect(pending[0]!.promise).resolves.toBe('a');
    expect(aborted).toEqual([]);
  });

  it('wait first-error returns at the first failure', async () => {
    const clock = new FakeClock();
    const promise = wait(
      [delayed(clock, 50, 'ok', []), delayed(clock, 100, 'bad', [], true), delayed(clock, 900, 'late', [])],
      {
        clock,
        returnWhen: 'first-error',
      },
    );
    await clock.tick(100);
    const { done, pending } = await promise;
    expect(done.map((r) => [r.key, r.status])).toEqual([
      [0, 'fulfilled'],
      [1, 'rejected'],
    ]);
    expect(pending.map((p) => p.key)).toEqual([2]);
  });

  it('wait with timeoutMs returns what is done by then', async () => {
    const clock = new FakeClock();
    const promise = wait([delayed(clock, 50, 'a', []), delayed(clock, 5000, 'b', [])], {
      clock,
      timeoutMs: 1000,
    });
    await clock.tick(1000);
    const { done, pending } = await promise;
    expect(done.map((r) => r.key)).toEqual([0]);
    expect(pending.map((p) => p.key)).toEqual([1]);
  });

  it('withTimeout fails with TimeoutError and aborts the task', async () => {
    const clock = new FakeClock();
    const aborted: string[] = [];
    const task = withTimeout(delayed(clock, 5000, 'slow', aborted), 1000, clock);
    const promise = task(new AbortController().signal);
    promise.catch(() => {});
    await clock.tick(1000);
    await expect(promise).rejects.toBeInstanceOf(TimeoutError);
    expect(aborted).toEqual(['slow']);
    expect(clock.pendingTimers).toBe(0);
  });
});
