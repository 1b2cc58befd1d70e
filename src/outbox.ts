/**
 * The outbox: every send and edit goes through a per-chat queue that keeps the adapter's declared
 * rate budgets. Edits of one message that have not gone out yet coalesce (the latest text wins),
 * so a fast stream costs one edit per budget slot, not one per token. Sends and final edits are
 * never dropped: a `RateLimitError` pauses that chat's queue for `retryAfterMs` and retries.
 */
import type { Adapter, RateLimit, RateLimits } from './adapter.ts';
import { type Clock, sleep, systemClock } from './clock.ts';
import { RateLimitError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { ChatAddress, OutgoingMessage, SentMessage } from './message.ts';

/** A sliding window: at most `count` operations in any `periodMs`. */
class Window {
  readonly #stamps: number[] = [];
  constructor(readonly limit: RateLimit) {}

  /** The earliest time at which one more operation fits. */
  nextFree(now: number): number {
    while (this.#stamps.length > 0 && this.#stamps[0]! <= now - this.limit.periodMs) this.#stamps.shift();
    return this.#stamps.length < this.limit.count ? now : this.#stamps[0]! + this.limit.periodMs;
  }

  take(now: number): void {
    this.#stamps.push(now);
  }
}

type Operation =
  | { kind: 'send'; message: OutgoingMessage; settle: Settlers<SentMessage>[] }
  | { kind: 'edit'; messageId: string; message: OutgoingMessage; final: boolean; settle: Settlers<void>[] };

interface Settlers<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface ChatQueue {
  readonly chat: ChatAddress;
  readonly operations: (Operation & { chat: ChatAddress; attempts: number; inFlight: boolean })[];
  readonly windows: Window[];
  pausedUntil: number;
  draining: boolean;
}

/** Options of an outbox. */
export interface OutboxOptions {
  clock?: Clock;
  log: Logger;
  /** How often one operation is retried after rate limits before it fails. Default 8. */
  maxRetries?: number;
}

/** Counters, for logs and benchmarks. */
export interface OutboxStats {
  sent: number;
  edited: number;
  coalesced: number;
  rateLimited: number;
}

/** The per-chat queues of one adapter. */
export class Outbox {
  readonly #adapter: Pick<Adapter, 'send' | 'edit' | 'limits' | 'name' | 'planSend'>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxRetries: number;
  readonly #queues = new Map<string, ChatQueue>();
  readonly #global: Window | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  readonly stats: OutboxStats = { sent: 0, edited: 0, coalesced: 0, rateLimited: 0 };

  constructor(
    adapter: Pick<Adapter, 'send' | 'edit' | 'limits' | 'name' | 'planSend'>,
    options: OutboxOptions,
  ) {
    this.#adapter = adapter;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
    this.#maxRetries = options.maxRetries ?? 8;
    const { global } = adapter.limits.rate;
    this.#global = global ? new Window(global) : undefined;
  }

  /**
   * Queues a message. Resolves once the platform has it. A message the adapter sends in several
   * calls (`planSend`) is queued as that many operations, back to back, each within the budget.
   */
  send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    const parts = this.#adapter.planSend?.(message) ?? [message];
    const sends = parts.map(
      (part) =>
        new Promise<SentMessage>((resolve, reject) => {
          this.#push(chat, { kind: 'send', message: part, settle: [{ resolve, reject }] });
        }),
    );
    if (sends.length === 1) return sends[0]!;
    return Promise.all(sends).then((sent) => ({ chat, ids: sent.flatMap((s) => s.ids) }));
  }

  /**
   * Queues an edit. An edit of the same message still waiting in the queue takes the new text
   * instead (both callers resolve when it goes out); `final` sticks once set.
   */
  edit(
    chat: ChatAddress,
    messageId: string,
    message: OutgoingMessage,
    options: { final: boolean },
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const queue = this.#queue(chat);
      const waiting = queue.operations.find(
        (op) => op.kind === 'edit' && op.messageId === messageId && !op.inFlight,
      );
      if (waiting && waiting.kind === 'edit') {
        waiting.message = message;
        waiting.final ||= options.final;
        waiting.settle.push({ resolve, reject });
        this.stats.coalesced++;
        return;
      }
      this.#push(chat, {
        kind: 'edit',
        messageId,
        message,
        final: options.final,
        settle: [{ resolve, reject }],
      });
    });
  }

  /** Operations waiting or in flight, across all chats. */
  get pending(): number {
    let count = 0;
    for (const queue of this.#queues.values()) count += queue.operations.length;
    return count;
  }

  /** Resolves once every queue is empty. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #queue(chat: ChatAddress): ChatQueue {
    // Platforms count budgets per chat, not per topic: topics of one chat share a queue.
    const key = `${chat.adapter}:${chat.id}`;
    let queue = this.#queues.get(key);
    if (!queue) {
      const { perChat, perGroup } = this.#adapter.limits.rate;
      const windows: Window[] = [];
      if (perChat) windows.push(new Window(perChat));
      if (perGroup && chat.kind !== 'private') windows.push(new Window(perGroup));
      queue = { chat, operations: [], windows, pausedUntil: 0, draining: false };
      this.#queues.set(key, queue);
    }
    return queue;
  }

  #push(chat: ChatAddress, operation: Operation): void {
    const queue = this.#queue(chat);
    // Each operation keeps its own address: topics and threads share their chat's queue, not its address.
    queue.operations.push({ ...operation, chat, attempts: 0, inFlight: false });
    if (!queue.draining) void this.#drain(queue);
  }

  async #drain(queue: ChatQueue): Promise<void> {
    queue.draining = true;
    while (queue.operations.length > 0) {
      await this.#waitForBudget(queue);
      // The head may have been coalesced into while we waited; it is still the head.
      const op = queue.operations[0]!;
      op.inFlight = true;
      try {
        if (op.kind === 'send') {
          const sent = await this.#adapter.send(op.chat, op.message);
          this.stats.sent++;
          queue.operations.shift();
          for (const s of op.settle) s.resolve(sent);
        } else {
          await this.#adapter.edit(op.chat, op.messageId, op.message, { final: op.final });
          this.stats.edited++;
          queue.operations.shift();
          for (const s of op.settle) s.resolve();
        }
      } catch (error) {
        if (error instanceof RateLimitError && op.attempts < this.#maxRetries) {
          op.attempts++;
          op.inFlight = false;
          this.stats.rateLimited++;
          queue.pausedUntil = Math.max(queue.pausedUntil, this.#clock.now() + error.retryAfterMs);
          this.#log.warn('rate limited, pausing chat', {
            adapter: this.#adapter.name,
            chat: queue.chat.id,
            retryAfterMs: error.retryAfterMs,
            attempt: op.attempts,
          });
          continue;
        }
        queue.operations.shift();
        for (const s of op.settle) s.reject(error);
      }
    }
    queue.draining = false;
    if (this.pending === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  async #waitForBudget(queue: ChatQueue): Promise<void> {
    for (;;) {
      const now = this.#clock.now();
      let at = Math.max(now, queue.pausedUntil);
      for (const window of queue.windows) at = Math.max(at, window.nextFree(now));
      if (this.#global) at = Math.max(at, this.#global.nextFree(now));
      if (at <= now) {
        for (const window of queue.windows) window.take(now);
        this.#global?.take(now);
        return;
      }
      await sleep(this.#clock, at - now);
    }
  }
}

/** Budgets that never wait: for adapters without limits and for benchmarks. */
export const unlimited: RateLimits = {};
