/**
 * Time as a dependency. The outbox, the concurrency helpers and the handler context read time and
 * set timers through a `Clock`, so tests can drive them with `FakeClock` (see `chorus-bot/testing`)
 * instead of waiting on the wall clock.
 */

import { onAbort } from './abort.ts';

/** The handle a clock returns for a timer. */
export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

/** Reads time and schedules callbacks. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The process's real clock. */
export const systemClock: Clock = {
  // Date.now is the cheapest reading there is, and whole milliseconds are all timers have anyway.
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Waits `ms` on `clock`. Rejects with the signal's reason when `signal` aborts first.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const handle = clock.setTimeout(
      () => {
        stopWaiting?.();
        resolve();
      },
      Math.max(0, ms),
    );
    const stopWaiting =
      signal &&
      onAbort(signal, () => {
        clock.clearTimeout(handle);
        reject(signal.reason);
      });
  });
}

/** An AbortSignal that aborts with `reason` after `ms` on `clock`, and a function to disarm it. */
export function timeoutSignal(
  clock: Clock,
  ms: number,
  reason: () => Error,
): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const handle = clock.setTimeout(() => controller.abort(reason()), ms);
  return { signal: controller.signal, clear: () => clock.clearTimeout(handle) };
}
