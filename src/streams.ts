/**
 * Stream merging, the streaming half of the concurrency toolkit: many async iterables read side by
 * side, each piece tagged with its source the moment it arrives. Same options and the same
 * cancellation rules as `asCompleted` in concurrency.ts.
 */

import {
  type ConcurrencyOptions,
  checkOptions,
  Doorbell,
  entriesOf,
  Fifo,
  type KeyOf,
  scope,
  type Tasks,
} from './concurrency.ts';
import { CancelledError } from './errors.ts';

/** One piece of a merged stream: a value, the source's end, or the source's error. */
export type StreamEvent<K, T> =
  | { readonly key: K; readonly type: 'value'; readonly value: T }
  | { readonly key: K; readonly type: 'end' }
  | { readonly key: K; readonly type: 'error'; readonly error: unknown };

/** A stream: an async iterable, or a function that opens one and honours `signal`. */
export type StreamSource<T> = AsyncIterable<T> | ((signal: AbortSignal) => AsyncIterable<T>);

type StreamValueOf<T> = T extends readonly StreamSource<infer V>[]
  ? V
  : T extends ReadonlyMap<unknown, StreamSource<infer V>>
    ? V
    : T extends Record<string, StreamSource<infer V>>
      ? V
      : never;

/** Streams keyed by array index, record key or map key. */
export type Streams<K, T> =
  | readonly StreamSource<T>[]
  | ReadonlyMap<K, StreamSource<T>>
  | Readonly<Record<K & string, StreamSource<T>>>;

/**
 * Merges several streams: each piece comes out tagged with its source the moment it arrives, and
 * each source's end (`end`) or failure (`error`) is reported once. A source is read one piece
 * ahead at most, so a slow consumer holds every source back instead of buffering without bound.
 *
 * Early `break`, `signal` and `timeoutMs` behave as in `asCompleted`: on timeout each
 * unfinished source reports an `error` with `TimeoutError`; on abort the iteration throws.
 */
export function mergeStreams<const Input extends Streams<unknown, unknown>>(
  sources: Input,
  options?: Omit<ConcurrencyOptions, 'concurrency'>,
): AsyncGenerator<StreamEvent<KeyOf<Input>, StreamValueOf<Input>>, void, undefined>;
export function mergeStreams<K, T>(
  sources: Streams<K, T>,
  options: Omit<ConcurrencyOptions, 'concurrency'> = {},
): AsyncGenerator<StreamEvent<K, T>, void, undefined> {
  checkOptions(options);
  return mergeInOrder(sources, options);
}

async function* mergeInOrder<K, T>(
  sources: Streams<K, T>,
  options: Omit<ConcurrencyOptions, 'concurrency'>,
): AsyncGenerator<StreamEvent<K, T>, void, undefined> {
  const entries = entriesOf(sources as Tasks<K, never>) as unknown as [K, StreamSource<T>][];
  const run = scope(options);
  const { signal } = run.controller;
  const ready = new Fifo<StreamEvent<K, T>>();
  const open = new Map<K, AsyncIterator<T>>();
  const bell = new Doorbell();

  const pull = (key: K, iterator: AsyncIterator<T>) => {
    let step: Promise<IteratorResult<T>>;
    try {
      step = Promise.resolve(iterator.next());
    } catch (error) {
      step = Promise.reject(error);
    }
    step.then(
      (result) => {
        if (signal.aborted || !open.has(key)) return;
        if (result.done) {
          open.delete(key);
          ready.push({ key, type: 'end' });
        } else ready.push({ key, type: 'value', value: result.value });
        bell.ring();
      },
      (error: unknown) => {
        if (signal.aborted || !open.has(key)) return;
        open.delete(key);
        ready.push({ key, type: 'error', error });
        bell.ring();
      },
    );
  };
  const onAbort = () => bell.ring();
  signal.addEventListener('abort', onAbort);

  try {
    for (const [key, source] of entries) {
      try {
        const iterable = typeof source === 'function' ? source(signal) : source;
        const iterator = iterable[Symbol.asyncIterator]();
        open.set(key, iterator);
        pull(key, iterator);
      } catch (error) {
        ready.push({ key, type: 'error', error });
      }
    }
    while (ready.size > 0 || open.size > 0) {
      const event = ready.shift();
      if (event) {
        yield event;
        const iterator = event.type === 'value' ? open.get(event.key) : undefined;
        if (iterator && !signal.aborted) pull(event.key, iterator);
        continue;
      }
      if (signal.aborted) {
        if (!run.timedOut) throw signal.reason;
        const keys = [...open.keys()];
        closeAll(open);
        for (const key of keys) yield { key, type: 'error', error: signal.reason };
        return;
      }
      await bell.wait();
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    run.close(new CancelledError('mergeStreams: iteration ended'));
    closeAll(open);
  }
}

/** Asks every still-open iterator to finish, without waiting: a stuck source must not hold us. */
function closeAll<K, T>(open: Map<K, AsyncIterator<T>>): void {
  for (const iterator of open.values()) {
    try {
      Promise.resolve(iterator.return?.()).catch(() => {});
    } catch {
      // A source whose return() throws has nothing left to release.
    }
  }
  open.clear();
}
