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
  /** Listeners per event, as arrays replaced on change: emit walks one without copying it. */
  readonly #listeners = new Map<keyof Events, readonly Listener<never>[]>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Subscribes to `event`. Returns a function that unsubscribes. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const current = this.#listeners.get(event) ?? [];
    if (!current.includes(listener as Listener<never>)) {
      this.#listeners.set(event, [...current, listener as Listener<never>]);
    }
    return () => {
      const now = this.#listeners.get(event);
      if (now?.includes(listener as Listener<never>)) {
        this.#listeners.set(
          event,
          now.filter((other) => other !== listener),
        );
      }
    };
  }

  /** Delivers `payload` to every listener of `event`, concurrently. */
  async emit<K extends keyof Events>(event: K, payload: Events[K]): Promise<void> {
    const listeners = this.#listeners.get(event) as readonly Listener<Events[K]>[] | undefined;
    if (!listeners || listeners.length === 0) return;
    if (listeners.length === 1) {
      // One listener (the router, on `message`): no arrays, no extra promises.
      try {
        await listeners[0]!(payload);
      } catch (error) {
        this.#log.error('listener failed', { event: String(event), error });
      }
      return;
    }
    await Promise.all(
      listeners.map(async (listener) => {
        try {
          await listener(payload);
        } catch (error) {
          this.#log.error('listener failed', { event: String(event), error });
        }
      }),
    );
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }
}
