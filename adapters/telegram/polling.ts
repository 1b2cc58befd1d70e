/**
 * Long polling for the Telegram adapter: the next batch of updates is asked for while the last one
 * is being taken, so the bot never sits waiting on Telegram between batches (the wait is a round
 * trip, a good share of each batch's time under load).
 *
 * Asking for the next batch confirms the last one to Telegram (`getUpdates`' offset) before its
 * updates are all taken. So that a crash in between loses none of them, the batch is written to
 * the store as held first (with the ids taken since the last write: {@link HandledUpdates.flush});
 * a poller that starts, after a crash or taking over from another process, first takes the held
 * updates that were never taken. A poller that is stopped takes the rest of the batch in hand,
 * writes what it took, and confirms it, so the next run starts where this one ended.
 */
import type { Update } from 'grammy/types';
import { sleep, systemClock } from '../../src/clock.ts';
import type { HandledUpdates } from './state.ts';

/** What {@link pollUpdates} needs: how to ask Telegram, how to take an update, where to keep them. */
export interface PollOptions {
  /** Run first, retried like an ask (the adapter removes a webhook: Telegram refuses polls beside one). */
  prepare?(signal: AbortSignal): Promise<void>;
  /** Asks Telegram for the updates from `offset` on (a long poll); rejects when `signal` aborts. */
  getUpdates(offset: number, signal: AbortSignal): Promise<Update[]>;
  /**
   * Confirms every update before `offset` without waiting for more (`getUpdates` with no timeout),
   * when polling stops.
   */
  confirm(offset: number): Promise<void>;
  /** Hands one update to Chorus; resolves once it is taken. Its errors are its own: it never rejects. */
  take(update: Update): Promise<void>;
  /** The ids taken, and the batch held: written before each ask that confirms updates. */
  readonly handled: HandledUpdates;
  /**
   * How long to wait before asking again after `error` (the `failures`-th in a row, from 0), or
   * throws to stop polling (a revoked token, another process polling the same bot).
   */
  retryDelayMs(error: unknown, failures: number): number;
  /** Told when an ask succeeds after failing, so the connection counts as up again. */
  onRecovered?(): void;
}

/**
 * Polls until `signal` aborts (resolves) or `retryDelayMs` gives up (rejects with its error).
 * Updates are taken one after another, in Telegram's order.
 */
export async function pollUpdates(options: PollOptions, signal: AbortSignal): Promise<void> {
  const { handled } = options;
  let failures = 0;
  /** `attempt`'s result, retried as `retryDelayMs` says; `undefined` once polling stops. */
  const retrying = async <T>(attempt: () => Promise<T>): Promise<T | undefined> => {
    for (;;) {
      if (signal.aborted) return undefined;
      try {
        const result = await attempt();
        if (failures > 0) options.onRecovered?.();
        failures = 0;
        return result;
      } catch (error) {
        if (signal.aborted) return undefined;
        const delay = options.retryDelayMs(error, failures++);
        await sleep(systemClock, delay, signal).catch(() => {});
      }
    }
  };
  /** The next batch, `undefined` once polling stops. Never rejects but with a reason to stop. */
  const ask = async (from: number): Promise<Update[] | undefined> => {
    // getUpdates with an offset confirms every update before it: what was taken or held is saved first.
    await handled.flush();
    return retrying(() => options.getUpdates(from, signal));
  };
  for (const update of handled.held()) await options.take(update);
  let offset = 0;
  if (options.prepare) await retrying(() => options.prepare!(signal));
  let next = ask(offset);
  try {
    for (;;) {
      const batch = await next;
      if (batch === undefined) break;
      const last = batch.at(-1);
      if (last) {
        offset = last.update_id + 1;
        handled.hold(batch);
      }
      let arrived = false;
      next = ask(offset);
      // A reason to stop polling is thrown where the batch is awaited, not while this one is taken.
      next.then(
        () => {
          arrived = true;
        },
        () => {},
      );
      for (const update of batch) await options.take(update);
      // All taken. When the next batch is not there yet (a quiet bot), the ids taken are saved now,
      // not when it comes; under load the next ask saves them along with the next batch. The held
      // batch stays in the store until the next replaces it: every update of it is known as taken.
      // Writes go one after another, so the next ask's write waits for this one; taking does not.
      if (!arrived) void handled.flush();
    }
  } finally {
    handled.hold([]);
    await handled.flush();
    // Stopped, not refused: a poll after a 409 would cut the other poller's short in turn.
    if (offset > 0 && signal.aborted) await options.confirm(offset).catch(() => {});
  }
}
