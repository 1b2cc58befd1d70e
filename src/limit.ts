/**
 * Shared limits: a concurrency limit per backend, shared by all users, that tells each waiting
 * caller its place in line (on p-limit); and a limit per key (per user) that takes a free slot
 * before returning, so two quick requests cannot both slip through.
 */
import pLimit from 'p-limit';
import { onAbort } from './abort.ts';
import { abortReason } from './errors.ts';
import type { Slots } from './slots.ts';

/** Options of one {@link Limiter.run} call. */
export interface LimiterRunOptions {
  /** Aborting it while queued leaves the queue at once; while running, it reaches the task. */
  signal?: AbortSignal;
  /** Called when the call has to wait, and again each time its place changes: `ahead` callers before it. */
  onQueued?: (ahead: number) => void;
}

/** A concurrency limit shared by all its callers, for example all users of one backend. */
export interface Limiter {
  readonly concurrency: number;
  /** Calls of this process running now. */
  readonly active: number;
  /** Calls of this process waiting for a slot. */
  readonly queued: number;
  /** Runs `task` when a slot is free. */
  run<T>(task: (signal: AbortSignal) => PromiseLike<T>, options?: LimiterRunOptions): Promise<T>;
  /**
   * Waits for a slot and holds it until the returned function is called: for work that is not one
   * promise, such as reading a stream.
   */
  acquire(options?: LimiterRunOptions): Promise<() => void>;
}

/** Options of {@link createLimiter}. */
export interface LimiterOptions {
  /**
   * Where the slots are counted: a plugin passes `ctx.slots`, so the limit holds for every process
   * of the bot (on Redis) and not for each process alone. Unset: this process counts its own.
   */
  readonly slots?: Slots | undefined;
  /** The name of this limit among the slots (`backend:flux`); needed with `slots`. */
  readonly key?: string;
}

/**
 * Creates a limiter on top of p-limit that also tells each waiting caller its place in line,
 * so a bot can say "flux: queued, 3 ahead". With `options.slots`, the slots and the line are the
 * seam's, shared by every process that holds the same one.
 *
 * @example
 * const limiter = createLimiter(2, { slots: ctx.slots, key: 'backend:flux' });
 * const images = await limiter.run((signal) => generate(prompt, signal), { signal: c.signal });
 */
export function createLimiter(concurrency: number, options: LimiterOptions = {}): Limiter {
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new TypeError(`concurrency must be an integer >= 1, got ${String(concurrency)}`);
  }
  if (options.slots) {
    if (!options.key) throw new TypeError('createLimiter: a key is needed with slots');
    return sharedLimiter(concurrency, options.slots, options.key);
  }
  const limit = pLimit(concurrency);
  interface Ticket {
    readonly onQueued: ((ahead: number) => void) | undefined;
    lastAhead: number;
  }
  const waiting: Ticket[] = [];
  let active = 0;
  // A waiting ticket within the free slots starts on the next tick: it is not "in line".
  // The others learn how many waiting callers stand before them, each time that number changes.
  const announce = () => {
    const free = concurrency - active;
    waiting.forEach((ticket, index) => {
      const ahead = index - free;
      if (ahead >= 0 && ahead !== ticket.lastAhead) {
        ticket.lastAhead = ahead;
        ticket.onQueued?.(ahead);
      }
    });
  };
  const leave = (ticket: Ticket) => {
    const index = waiting.indexOf(ticket);
    if (index < 0) return false;
    waiting.splice(index, 1);
    announce();
    return true;
  };

  return {
    concurrency,
    acquire(options) {
      return new Promise((resolve, reject) => {
        this.run(
          () =>
            new Promise<void>((release) => {
              let held = true;
              resolve(() => {
                if (held) release();
                held = false;
              });
            }),
          options,
        ).catch(reject);
      });
    },
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    run<T>(task: (signal: AbortSignal) => PromiseLike<T>, options: LimiterRunOptions = {}): Promise<T> {
      const signal = options.signal ?? new AbortController().signal;
      if (signal.aborted) return Promise.reject(abortReason(signal));
      const ticket: Ticket = { onQueued: options.onQueued, lastAhead: -1 };
      waiting.push(ticket);
      announce();

      return new Promise<T>((resolve, reject) => {
        const stopWatching = onAbort(signal, () => {
          if (leave(ticket)) reject(abortReason(signal));
        });
        limit(async () => {
          // Left the queue on abort: let the slot go to the next caller.
          if (!waiting.includes(ticket)) return;
          stopWatching();
          active++;
          leave(ticket);
          try {
            resolve(await task(signal));
          } catch (error) {
            reject(error);
          } finally {
            active--;
          }
        });
      });
    },
  };
}

function sharedLimiter(concurrency: number, slots: Slots, key: string): Limiter {
  let active = 0;
  let queued = 0;
  const acquire = async (options: LimiterRunOptions = {}) => {
    queued++;
    try {
      const release = await slots.acquire({
        key,
        capacity: concurrency,
        ...(options.signal && { signal: options.signal }),
        ...(options.onQueued && { onQueued: options.onQueued }),
      });
      if (!release) throw new Error('slot refused without maxWaiting');
      active++;
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        active--;
        release();
      };
    } finally {
      queued--;
    }
  };
  return {
    concurrency,
    get active() {
      return active;
    },
    get queued() {
      return queued;
    },
    acquire,
    async run(task, options = {}) {
      const signal = options.signal ?? new AbortController().signal;
      const release = await acquire({ ...options, signal });
      try {
        return await task(signal);
      } finally {
        release();
      }
    },
  };
}

/** A limit per key (per user, per chat): at most `perKey` holders of one key at once, the rest wait in order. */
export interface KeyedLimiter {
  readonly perKey: number;
  /** True when `key` has no free slot now. */
  busy(key: string): boolean;
  /**
   * Takes a slot for `key`: at once (before this call returns) when one is free, otherwise when an
   * earlier holder releases. Resolves with the function that releases it. Aborting `signal` while
   * waiting leaves the line and rejects with the signal's reason.
   */
  acquire(key: string, signal?: AbortSignal): Promise<() => void>;
}

/** Creates a {@link KeyedLimiter}. */
export function createKeyedLimiter(perKey: number): KeyedLimiter {
  if (!(Number.isInteger(perKey) && perKey >= 1))
    throw new TypeError(`perKey must be an integer >= 1, got ${String(perKey)}`);
  const holders = new Map<string, number>();
  const waiting = new Map<string, (() => void)[]>();
  const busy = (key: string) => (holders.get(key) ?? 0) >= perKey;
  const take = (key: string) => {
    holders.set(key, (holders.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (holders.get(key) ?? 1) - 1;
      if (left > 0) holders.set(key, left);
      else holders.delete(key);
      const next = waiting.get(key)?.shift();
      if (waiting.get(key)?.length === 0) waiting.delete(key);
      next?.();
    };
  };
  return {
    perKey,
    busy,
    acquire(key, signal) {
      if (signal?.aborted) return Promise.reject(abortReason(signal));
      if (!busy(key) && !waiting.has(key)) return Promise.resolve(take(key));
      return new Promise((resolve, reject) => {
        const line = waiting.get(key) ?? [];
        waiting.set(key, line);
        const wake = () => {
          stopWaiting?.();
          resolve(take(key));
        };
        line.push(wake);
        const stopWaiting =
          signal &&
          onAbort(signal, () => {
            const index = line.indexOf(wake);
            if (index >= 0) line.splice(index, 1);
            if (line.length === 0) waiting.delete(key);
            reject(abortReason(signal));
          });
      });
    },
  };
}
