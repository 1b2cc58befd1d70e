/**
 * The event bus. Adapters emit normalized events; the command router and plugins listen.
 * Payloads are plain data, so the same interface can later be backed by a cross-process transport.
 *
 * Plugins add their own events by augmenting `ChorusEvents`:
 * @example
 * declare module 'chorus-bot' {
 *   interface ChorusEvents { 'draw/finished': { chatId: string; backends: number } }
 * }
 */
import type { Logger } from './logger.ts';
import type { BotIdentity, ButtonPress, ChatAddress, IncomingMessage } from './message.ts';

/** A job's lifecycle, for observability. */
export interface JobEvent {
  readonly jobId: string;
  readonly plugin: string;
  readonly command: string;
  readonly chat: ChatAddress;
  readonly userId: string;
}

/** The events on the bus. Extend with `declare module`. */
export interface ChorusEvents {
  /** A normalized incoming message from any adapter. */
  message: IncomingMessage;
  /** A button a plugin sent was pressed. */
  button: ButtonPress;
  /** An adapter has connected and knows who the bot is. */
  'adapter/ready': { readonly adapter: string; readonly self: BotIdentity };
  'job/start': JobEvent;
  'job/end': JobEvent & { readonly outcome: 'done' | 'failed' | 'cancelled'; readonly ms: number };
}

/** A listener for one event. */
export type Listener<T> = (payload: T) => void | Promise<void>;

/**
 * A typed publish/subscribe bus. A listener that throws (or rejects) is logged and never stops the
 * others; `emit` resolves once every listener has settled.
 */
export class EventBus<Events extends object = ChorusEvents> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Subscribes to `event`. Returns a function that unsubscribes. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as Listener<never>);
    return () => {
      set.delete(listener as Listener<never>);
    };
  }

  /** Delivers `payload` to every listener of `event`, concurrently. */
  async emit<K extends keyof Events>(event: K, payload: Events[K]): Promise<void> {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    if (set.size === 1) {
      // One listener (the router, on `message`): no arrays, no extra promises.
      const [listener] = set;
      try {
        await (listener as Listener<Events[K]>)(payload);
      } catch (error) {
        this.#log.error('listener failed', { event: String(event), error });
      }
      return;
    }
    await Promise.all(
      [...set].map(async (listener) => {
        try {
          await (listener as Listener<Events[K]>)(payload);
        } catch (error) {
          this.#log.error('listener failed', { event: String(event), error });
        }
      }),
    );
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }
}
