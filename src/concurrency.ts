/**
 * The concurrency toolkit: the TypeScript counterpart of asyncio's `as_completed`, `gather` and
 * `wait`. Its other two parts: stream merging (streams.ts) and shared limiters (limit.ts).
 *
 * Tasks are promises, or functions `(signal) => Promise` that start when the helper says so and
 * stop when their signal fires. Results are "settled" records tagged with the task's key, so one
 * failed task never hides the others.
 */
import { onAbort } from './abort.ts';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';
import { abortReason, CancelledError, TimeoutError } from './errors.ts';

/** A task: a running promise, or a function that starts one and honours `signal`. */
export type Task<T> = PromiseLike<T> | ((signal: AbortSignal) => PromiseLike<T>);

/** A task's outcome, tagged with its key. */
export type Settled<K, T> =
  | { readonly key: K; readonly status: 'fulfilled'; readonly value: T }
  | { readonly key: K; readonly status: 'rejected'; readonly reason: unknown };

/** Tasks keyed by array index, record key or map key. */
export type Tasks<K, T> =
  | readonly Task<T>[]
  | ReadonlyMap<K, Task<T>>
  | Readonly<Record<K & string, Task<T>>>;

/** Options shared by the helpers. */
export interface ConcurrencyOptions {
  /** Aborting it aborts every task still running; the helper then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** After this long, tasks still running are aborted and reported as rejected with `TimeoutError`. */
  timeoutMs?: number;
  /** At most this many task functions run at once. Promises are already running and ignore it. */
  concurrency?: number;
  /**
   * Clock for the timeout. Default: the system clock. In a handler pass `c.clock`, so the test kit's
   * `FakeClock` drives the timeout (`kit.clock.tick(ms)`).
   */
  clock?: Clock;
}

/** @internal The key type of tasks or streams given as an array, a map or a record. Shared with streams.ts. */
export type KeyOf<T> = T extends readonly unknown[]
  ? number
  : T extends ReadonlyMap<infer K, unknown>
    ? K
    : keyof T;
type ValueOf<T> = T extends readonly Task<infer V>[]
  ? V
  : T extends ReadonlyMap<unknown, Task<infer V>>
    ? V
    : T extends Record<string, Task<infer V>>
      ? V
      : never;

/** @internal Shared with streams.ts. */
export function entriesOf<K, T>(tasks: Tasks<K, T>): [K, Task<T>][] {
  if (Array.isArray(tasks)) return tasks.map((task, index) => [index as K, task]);
  if (tasks instanceof Map) return [...tasks.entries()];
  return Object.entries(tasks) as [K, Task<T>][];
}

/** @internal Shared with streams.ts. */
export function checkOptions(options: ConcurrencyOptions): void {
  const { timeoutMs, concurrency } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new TypeError(`timeoutMs must be a finite number >= 0, got ${String(timeoutMs)}`);
  }
  if (
    concurrency !== undefined &&
    !(Number.isInteger(concurrency) && concurrency >= 1) &&
    concurrency !== Infinity
  ) {
    throw new TypeError(`concurrency must be an integer >= 1 or Infinity, got ${String(concurrency)}`);
  }
}

/**
 * A controller that aborts when the caller's signal aborts or the timeout passes, with cleanup.
 * `timedOut` tells the two apart.
 */
/** @internal Shared with streams.ts. */
export function scope(options: ConcurrencyOptions) {
  const controller = new AbortController();
  const clock = options.clock ?? systemClock;
  const outer = options.signal;
  const onOuterAbort = () => controller.abort(abortReason(outer!));
  let timedOut = false;
  let timer: TimerHandle | undefined;
  let stopWaiting: (() => void) | undefined;
  if (outer?.aborted) onOuterAbort();
  else if (outer) stopWaiting = onAbort(outer, onOuterAbort);
  if (options.timeoutMs !== undefined && !controller.signal.aborted) {
    const ms = options.timeoutMs;
    timer = clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new TimeoutError(ms));
    }, ms);
  }
  return {
    controller,
    get timedOut() {
      return timedOut;
    },
    close(reason: Error) {
      if (timer !== undefined) clock.clearTimeout(timer);
      stopWaiting?.();
      if (!controller.signal.aborted) controller.abort(reason);
    },
  };
}

/** A FIFO with O(1) shift: thousands of settled tasks must not cost O(n²). */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    return item;
  }
}

/** Lets a generator sleep until something happens: `wait()` resolves at the next `ring()`. */
export class Doorbell {
  #ring: (() => void) | undefined;

  ring(): void {
    this.#ring?.();
  }

  async wait(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#ring = resolve;
    });
    this.#ring = undefined;
  }
}

function start<T>(task: Task<T>, signal: AbortSignal): Promise<T> {
  try {
    return Promise.resolve(typeof task === 'function' ? task(signal) : task);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Yields each task's settled result the moment it settles, in completion order.
 *
 * - Breaking out of the loop early aborts the tasks still running (their signal fires) and never
 *   starts the ones waiting for a concurrency slot.
 * - On `timeoutMs`, tasks still running or waiting are aborted and yielded as rejected with a
 *   `TimeoutError`, then the iteration ends: every task is reported exactly once.
 * - When `signal` aborts, running tasks are aborted and the iteration throws the signal's reason.
 *
 * @example
 * for await (const result of asCompleted({ fast: (s) => a(s), slow: (s) => b(s) }, { timeoutMs: 30_000 })) {
 *   if (result.status === 'fulfilled') await ctx.replyImages(result.value);
 *   else await ctx.reply(`${result.key} failed`);
 * }
 */
export function asCompleted<const Input extends Tasks<unknown, unknown>>(
  tasks: Input,
  options?: ConcurrencyOptions,
): AsyncGenerator<Settled<KeyOf<Input>, ValueOf<Input>>, void, undefined>;
export function asCompleted<K, T>(
  tasks: Tasks<K, T>,
  options: ConcurrencyOptions = {},
): AsyncGenerator<Settled<K, T>, void, undefined> {
  checkOptions(options); // now, not at the first next(): a bad option is the caller's bug
  return settleInOrder(tasks, options);
}

async function* settleInOrder<K, T>(
  tasks: Tasks<K, T>,
  options: ConcurrencyOptions,
): AsyncGenerator<Settled<K, T>, void, undefined> {
  const entries = entriesOf(tasks);
  const limit = options.concurrency ?? Infinity;
  const run = scope(options);
  const { signal } = run.controller;
  const ready = new Fifo<Settled<K, T>>();
  const unsettled = new Set<K>(entries.map(([key]) => key));
  const bell = new Doorbell();
  let next = 0;
  let running = 0;

  const settle = (result: Settled<K, T>) => {
    running--;
    if (signal.aborted) return; // reported by the timeout or abort path
    unsettled.delete(result.key);
    ready.push(result);
    fill();
    bell.ring();
  };
  const fill = () => {
    while (running < limit && next < entries.length && !signal.aborted) {
      const [key, task] = entries[next++]!;
      running++;
      start(task, signal).then(
        (value) => settle({ key, status: 'fulfilled', value }),
        (reason: unknown) => settle({ key, status: 'rejected', reason }),
      );
    }
  };
  const onAbort = () => bell.ring();
  signal.addEventListener('abort', onAbort);

  try {
    fill();
    while (ready.size > 0 || unsettled.size > 0) {
      const result = ready.shift();
      if (result) {
        yield result;
        continue;
      }
      if (signal.aborted) {
        if (!run.timedOut) throw signal.reason;
        for (const key of [...unsettled]) {
          unsettled.delete(key);
          yield { key, status: 'rejected', reason: signal.reason };
        }
        return;
      }
      await bell.wait();
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    run.close(new CancelledError('asCompleted: iteration ended'));
  }
}

/**
 * Runs every task and resolves with all settled results in input order (never rejects for a
 * task's failure). Same options as {@link asCompleted}.
 */
export async function gather<const Input extends Tasks<unknown, unknown>>(
  tasks: Input,
  options: ConcurrencyOptions = {},
): Promise<Settled<KeyOf<Input>, ValueOf<Input>>[]> {
  const order = entriesOf(tasks).map(([key]) => key);
  const byKey = new Map<unknown, Settled<KeyOf<Input>, ValueOf<Input>>>();
  for await (const result of asCompleted(tasks, options)) byKey.set(result.key, result);
  return order.map((key) => byKey.get(key)!);
}

/** When {@link wait} returns. */
export type ReturnWhen = 'first-completed' | 'first-error' | 'all-completed';

/** What {@link wait} returns: settled results in completion order, and the tasks still running. */
export interface WaitResult<K, T> {
  readonly done: Settled<K, T>[];
  readonly pending: { readonly key: K; readonly promise: Promise<T> }[];
}

/**
 * Starts every task and resolves when `returnWhen` is met or `timeoutMs` passes, whichever is
 * first. Unlike {@link asCompleted} it aborts nothing: pending tasks keep running, and the caller
 * decides (task functions receive `signal`, so aborting it stops them).
 */
export function wait<const Input extends Tasks<unknown, unknown>>(
  tasks: Input,
  options: Omit<ConcurrencyOptions, 'concurrency'> & { returnWhen?: ReturnWhen } = {},
): Promise<WaitResult<KeyOf<Input>, ValueOf<Input>>> {
  checkOptions(options);
  const returnWhen = options.returnWhen ?? 'all-completed';
  if (!['first-completed', 'first-error', 'all-completed'].includes(returnWhen)) {
    throw new TypeError(
      `returnWhen must be first-completed, first-error or all-completed, got ${String(returnWhen)}`,
    );
  }
  type K = KeyOf<Input>;
  type T = ValueOf<Input>;
  const clock = options.clock ?? systemClock;
  const signal = options.signal ?? new AbortController().signal;
  const running = entriesOf(tasks).map(([key, task]) => ({
    key: key as K,
    promise: start(task, signal) as Promise<T>,
  }));
  const done: Settled<K, T>[] = [];
  const settledKeys = new Set<K>();

  return new Promise((resolve) => {
    let finished = false;
    let timer: TimerHandle | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      resolve({ done: [...done], pending: running.filter(({ key }) => !settledKeys.has(key)) });
    };
    if (running.length === 0) return finish();
    if (options.timeoutMs !== undefined) timer = clock.setTimeout(finish, options.timeoutMs);
    for (const { key, promise } of running) {
      const record = (result: Settled<K, T>) => {
        if (finished) return;
        settledKeys.add(key);
        done.push(result);
        if (
          returnWhen === 'first-completed' ||
          (returnWhen === 'first-error' && result.status === 'rejected') ||
          settledKeys.size === running.length
        ) {
          finish();
        }
      };
      promise.then(
        (value) => record({ key, status: 'fulfilled', value }),
        (reason: unknown) => record({ key, status: 'rejected', reason }),
      );
    }
  });
}

/**
 * Wraps a task function so it fails with `TimeoutError` after `ms`; its signal fires then too,
 * so the work really stops. Use it for per-backend time limits inside {@link asCompleted}.
 */
export function withTimeout<T>(
  task: (signal: AbortSignal) => PromiseLike<T>,
  ms: number,
  clock: Clock = systemClock,
): (signal: AbortSignal) => Promise<T> {
  if (!(Number.isFinite(ms) && ms >= 0))
    throw new TypeError(`ms must be a finite number >= 0, got ${String(ms)}`);
  return (outer) => {
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(abortReason(outer));
    let stopWaiting: (() => void) | undefined;
    if (outer.aborted) onOuterAbort();
    else stopWaiting = onAbort(outer, onOuterAbort);
    let timer: TimerHandle | undefined;
    return new Promise<T>((resolve, reject) => {
      timer = clock.setTimeout(() => controller.abort(new TimeoutError(ms)), ms);
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      start(task, controller.signal).then(resolve, reject);
    }).finally(() => {
      if (timer !== undefined) clock.clearTimeout(timer);
      stopWaiting?.();
    });
  };
}
