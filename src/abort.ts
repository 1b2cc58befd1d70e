/**
 * Waiting on an AbortSignal with one listener per signal. A job's signal is shared by everything
 * the job waits for (each backend's limiter, its timeout, a sleep): a listener each would pile up
 * on it, and Node warns past ten. The core's waits go through {@link onAbort} instead.
 */

/** The callbacks waiting on each signal, in the order they came. */
const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` once when `signal` aborts (it must not have yet); returns a function that stops
 * waiting. Every wait on one signal shares one listener.
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let callbacks = waiting.get(signal);
  if (!callbacks) {
    const all = new Set<() => void>();
    callbacks = all;
    waiting.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        waiting.delete(signal);
        for (const each of all) each();
        all.clear();
      },
      { once: true },
    );
  }
  const mine = callbacks;
  mine.add(callback);
  return () => void mine.delete(callback);
}
