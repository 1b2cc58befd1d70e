/**
 * Long polling for the Telegram adapter: the next batch of updates is asked for while the last one
 * is being taken, so the bot never sits waiting on Telegram between batches (the wait is a round
 * trip, a good share of each batch's time under load). The ask goes once the takes give the event
 * loop a turn, after the replies they queued: a reply is not held up behind it.
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

/** How many updates of a batch are taken before the event loop gets a turn. */
const takesPerTurn = 16;

/**
 * Resolves after the writes queued now: undici writes a request on a kept-alive connection in the
 * event loop's check phase (it first looks for bytes the server sent unasked), and this waits for
 * the check phase after the next.
 */
const aTurnLater = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

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
 * Updates are taken one after another, in Telegram's order. `handOver` aborts when another
 * process has taken polling over: this poller stops taking at once and leaves the store as it is,
 * so the other takes the rest of the batch from it.
 */
export async function pollUpdates(
  options: PollOptions,
  signal: AbortSignal,
  handOver?: AbortSignal,
): Promise<void> {
  const { handled } = options;
  let failures = 0;
  /** Aborted once this poller ends, however it ends: an ask still to go then never goes. */
  const ended = new AbortController();
  const asking = AbortSignal.any([signal, ended.signal, ...(handOver ? [handOver] : [])]);
  /** `attempt`'s result, retried as `retryDelayMs` says; `undefined` once polling stops. */
  const retrying = async <T>(attempt: () => Promise<T>): Promise<T | undefined> => {
    for (;;) {
      if (asking.aborted) return undefined;
      try {
        const result = await attempt();
        if (failures > 0) options.onRecovered?.();
        failures = 0;
        return result;
      } catch (error) {
        if (asking.aborted) return undefined;
        const delay = options.retryDelayMs(error, failures++);
        await sleep(systemClock, delay, asking).catch(() => {});
      }
    }
  };
  /**
   * The next batch, `undefined` once polling stops. Never rejects but with a reason to stop.
   * getUpdates with an offset confirms every update before it, so what was taken or held is saved
   * first; when the held batch could not be saved, the ask waits until the batch is `taken`.
   */
  const ask = async (from: number, taken: Promise<void>): Promise<Update[] | undefined> => {
    if (asking.aborted) return undefined;
    if (!(await handled.flush())) await taken;
    return retrying(() => options.getUpdates(from, asking));
  };
  /** Takes `updates` in order; those not taken when a take throws or polling is handed over stay held. */
  const takeAll = async (updates: readonly Update[]): Promise<void> => {
    for (const [index, update] of updates.entries()) {
      // A long batch lets the event loop turn now and then: the replies queued so far are written,
      // and the next ask goes out, while the rest is taken.
      if (index > 0 && index % takesPerTurn === 0) await new Promise((resolve) => setImmediate(resolve));
      if (handOver?.aborted) return;
      try {
        await options.take(update);
      } catch (error) {
        handled.hold(updates.slice(index + 1));
        throw error;
      }
    }
  };
  await takeAll(handled.held());
  if (handOver?.aborted) return;
  await handled.releaseLeftOver();
  let offset = 0;
  if (options.prepare) await retrying(() => options.prepare!(asking));
  let next = ask(offset, Promise.resolve());
  let inHand = false;
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
      let asked = false;
      let taken!: () => void;
      const whenTaken = new Promise<void>((resolve) => {
        taken = resolve;
      });
      const from = offset;
      // The next ask goes once the takes pause (a batch taken, or one waiting on I/O), a turn of
      // the event loop later: the replies they queued are written first, then the ask.
      next = aTurnLater().then(() => {
        asked = true;
        return ask(from, whenTaken);
      });
      // A reason to stop polling is thrown where the batch is awaited, not while this one is taken.
      next.then(
        () => {
          arrived = true;
        },
        () => {},
      );
      inHand = true;
      await takeAll(batch);
      if (handOver?.aborted) return;
      inHand = false;
      taken();
      // All taken. When the next ask is out and its batch not there yet (a quiet bot), the ids
      // taken are saved now, not when it comes; an ask still to go saves them itself, and under
      // load the next ask saves them along with the next batch. The held batch stays in the store
      // until the next replaces it: every update of it is known as taken. Writes go one after
      // another, so the next ask's write waits for this one; taking does not.
      if (asked && !arrived) void handled.flush();
    }
  } finally {
    ended.abort();
    if (!handOver?.aborted) {
      // A take that threw left the rest of its batch held; otherwise nothing is.
      if (!inHand) handled.hold([]);
      const held = await handled.flush();
      // Stopped, not refused: a poll after a 409 would cut the other poller's short in turn. Updates
      // still in hand are confirmed only once the store holds them.
      if (offset > 0 && signal.aborted && (held || !inHand)) await options.confirm(offset).catch(() => {});
    }
  }
}
