/**
 * The outbox: every send and edit goes through a per-chat queue that keeps the adapter's declared
 * rate budgets and puts results first.
 *
 * - Sends (answers, albums, the first message of a stream) go before pending edits, in the order
 *   they were queued, and may use the whole burst a budget allows.
 * - Edits use what sends leave: at most one per sustained slot (a budget of 5 per 5 s allows an
 *   edit a second), and an intermediate edit never the last free slot of a window, which stays
 *   for the next result (a final edit may take it).
 *   Pending edits of one message coalesce (the latest text wins, `final` sticks), so a fast stream
 *   costs one edit per slot, not one per token. Edits of different messages take turns.
 * - Nothing is dropped: a `RateLimitError` pauses that chat's queue for `retryAfterMs` and retries.
 *
 * This module drains the queues; a chat's line and how edits coalesce are `outbox-queue.ts`, the
 * budgets and pauses that pace it `outbox-pace.ts`.
 */
import type { Adapter } from './adapter.ts';
import { type Budget, MemoryBudget } from './budget.ts';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';
import { RateLimitError } from './errors.ts';
import type { Logger } from './logger.ts';
import type { ChatAddress, OutgoingMessage, SentMessage } from './message.ts';
import type { AdapterCell } from './metrics.ts';
import { budgetRetryMs, chatRules, pauseAfterRateLimit, pauseFor, rulesFor } from './outbox-pace.ts';
import {
  type ChatQueue,
  coalesceEdit,
  dropOperation,
  newChatQueue,
  nextOperation,
  type Operation,
  operationsIn,
  requeue,
  takeNext,
} from './outbox-queue.ts';

/** How many chat queues an outbox keeps before it drops the idle ones. */
const maxIdleQueues = 10_000;

/** What an outbox needs of its adapter. */
export type OutboxAdapter = Pick<
  Adapter,
  'send' | 'edit' | 'limits' | 'name' | 'planSend' | 'sendTyping' | 'sendDraft'
>;

/** Options of an outbox. */
export interface OutboxOptions {
  clock?: Clock;
  log: Logger;
  /** Where the rate budgets are kept. Default: this outbox's own, in memory. */
  budget?: Budget;
  /** How often one operation is retried after rate limits before it fails. Default 8. */
  maxRetries?: number;
  /** The adapter's counters: operations sent by kind, time spent waiting in the queue. */
  metrics?: AdapterCell | undefined;
}

/** An operation that waited longer than this is logged at debug level. */
const slowWaitMs = 1000;

/** Counters, for logs and benchmarks. */
export interface OutboxStats {
  sent: number;
  edited: number;
  coalesced: number;
  rateLimited: number;
}

/** The per-chat queues of one adapter. */
export class Outbox {
  readonly #adapter: OutboxAdapter;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxRetries: number;
  readonly #queues = new Map<string, ChatQueue>();
  readonly #budget: Budget;
  readonly #idleWaiters: (() => void)[] = [];
  readonly #metrics: AdapterCell | undefined;
  /** Whether anyone measures waits (metrics, or a debug log): otherwise the clock is not read. */
  readonly #timed: boolean;
  /** Queues with operations left: the outbox is idle at 0. */
  #draining = 0;
  readonly stats: OutboxStats = { sent: 0, edited: 0, coalesced: 0, rateLimited: 0 };

  constructor(adapter: OutboxAdapter, options: OutboxOptions) {
    this.#adapter = adapter;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
    this.#maxRetries = options.maxRetries ?? 8;
    this.#budget = options.budget ?? new MemoryBudget({ clock: this.#clock });
    this.#metrics = options.metrics;
    this.#timed = options.metrics !== undefined || (options.log.enabled?.('debug') ?? false);
  }

  #queuedAt(): number {
    return this.#timed ? this.#clock.now() : 0;
  }

  /**
   * Queues a message. Resolves once the platform has it. Sends go before pending edits and keep
   * their order among themselves. A message the adapter sends in several calls (`planSend`) is
   * queued as that many operations, back to back, each within the budget.
   */
  send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    const parts = this.#adapter.planSend?.(message) ?? [message];
    if (parts.length === 1) return this.#queueSend(chat, parts[0]!);
    const sends = parts.map((part) => this.#queueSend(chat, part));
    return Promise.all(sends).then((sent) => ({ chat, ids: sent.flatMap((s) => s.ids) }));
  }

  #queueSend(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    return new Promise<SentMessage>((resolve, reject) => {
      const queue = this.#queue(chat);
      queue.sends.push({
        kind: 'send',
        chat,
        message,
        settle: { resolve, reject },
        attempts: 0,
        queuedAt: this.#queuedAt(),
      });
      this.#kick(queue);
    });
  }

  /**
   * Queues an edit. An edit of the same message still waiting takes the new text instead (both
   * callers resolve when it goes out); `final` sticks once set, and fields the new message leaves
   * out (buttons, format) are kept.
   */
  edit(
    chat: ChatAddress,
    messageId: string,
    message: OutgoingMessage,
    options: { final: boolean },
  ): Promise<void> {
    return this.#queueEdit(chat, messageId, undefined, message, options.final);
  }

  /**
   * Queues a draft: a text that grows in place (Telegram private chats) before the real message
   * goes out. Drafts take turns with edits and coalesce the same way. Does nothing where the
   * adapter has no drafts.
   */
  draft(chat: ChatAddress, draftId: number, text: string): Promise<void> {
    if (!this.#adapter.sendDraft) return Promise.resolve();
    return this.#queueEdit(chat, `draft:${draftId}`, draftId, { text }, false);
  }

  /**
   * Shows "typing..." when nothing else waits in the chat and its budget has room; otherwise it is
   * dropped (a message on its way says more). Resolves either way.
   */
  typing(chat: ChatAddress): Promise<void> {
    if (!this.#adapter.sendTyping) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const queue = this.#queue(chat);
      if (queue.typing) {
        queue.typing.settle.push({ resolve, reject });
        return;
      }
      queue.typing = {
        kind: 'typing',
        chat,
        settle: [{ resolve, reject }],
        attempts: 0,
        queuedAt: this.#queuedAt(),
      };
      this.#kick(queue);
    });
  }

  #queueEdit(
    chat: ChatAddress,
    key: string,
    draftId: number | undefined,
    message: OutgoingMessage,
    final: boolean,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const queue = this.#queue(chat);
      const waiting = queue.edits.get(key);
      if (waiting) {
        const becameFinal = coalesceEdit(waiting, message, final, { resolve, reject });
        this.stats.coalesced++;
        // A final edit may go sooner than an intermediate one: let the queue look again.
        if (becameFinal) this.#kick(queue);
        return;
      }
      queue.edits.set(key, {
        kind: 'edit',
        chat,
        messageId: key,
        ...(draftId !== undefined && { draftId }),
        message,
        final,
        settle: [{ resolve, reject }],
        attempts: 0,
        queuedAt: this.#queuedAt(),
      });
      this.#kick(queue);
    });
  }

  /** Operations waiting or in flight, across all chats. */
  get pending(): number {
    let count = 0;
    for (const queue of this.#queues.values()) count += operationsIn(queue);
    return count;
  }

  /** Resolves once every queue is empty. */
  idle(): Promise<void> {
    if (this.#draining === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Drops the queues of chats with nothing to remember (no operation, no pause after a 429, no
   * pending pace of edits); the budgets themselves live in the Budget. Run now and then, so a bot
   * in many chats keeps a bounded number of queues without rebuilding one per message.
   */
  #sweep(): void {
    const now = this.#clock.now();
    for (const [key, queue] of this.#queues) {
      if (queue.draining || queue.pausedUntil > now || queue.lastOpAt + queue.editSpacingMs > now) continue;
      this.#queues.delete(key);
    }
  }

  /** Platforms count budgets per chat, not per topic: topics of one chat share a queue. */
  #keyOf(chat: ChatAddress): string {
    return `${chat.adapter}:${chat.id}`;
  }

  #queue(chat: ChatAddress): ChatQueue {
    const key = this.#keyOf(chat);
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = newChatQueue(chat, chatRules(this.#adapter, chat));
      this.#queues.set(key, queue);
    }
    return queue;
  }

  #kick(queue: ChatQueue): void {
    if (queue.draining) queue.wake?.();
    else void this.#drain(queue);
  }

  async #drain(queue: ChatQueue): Promise<void> {
    queue.draining = true;
    this.#draining++;
    // Let the caller finish queueing what it queues in one go (an album and its status update),
    // so the send goes first even when the edit was queued a moment earlier.
    await Promise.resolve();
    for (let op = nextOperation(queue); op; op = nextOperation(queue)) {
      const now = this.#clock.now();
      let wait = pauseFor(queue, op, now);
      // A final edit (a status's last word) may take the slot intermediate edits leave free.
      if (wait === 0) {
        try {
          const taken = this.#budget.take(rulesFor(queue, op));
          // A budget in memory answers at once: no extra tick per operation.
          wait = typeof taken === 'number' ? taken : await taken;
        } catch (error) {
          // A budget kept elsewhere (Redis) can fail: the operation waits and tries again, and
          // fails once its retries are spent, so the chat's queue never freezes.
          wait = this.#budgetFailed(queue, op, error);
          if (wait < 0) continue;
        }
      }
      if (wait > 0 && op.kind === 'typing' && nextOperation(queue) === op) {
        // "typing..." never waits for a slot: by then there is something better to show.
        queue.typing = undefined;
        for (const s of op.settle) s.resolve();
        continue;
      }
      if (wait > 0) {
        // Something queued meanwhile (a send) may go sooner: look again when woken.
        await this.#wait(queue, wait);
        continue;
      }
      // The budget was taken for the operation at the head; a send queued meanwhile goes first,
      // which the slot serves as well.
      op = nextOperation(queue)!;
      // The pace of edits counts messages sent and edited, not drafts or "typing...".
      if (op.kind === 'send' || (op.kind === 'edit' && op.draftId === undefined))
        queue.lastOpAt = this.#clock.now();
      takeNext(queue, op);
      queue.inFlight = op;
      if (this.#timed && op.attempts === 0) this.#waited(op);
      try {
        if (op.kind === 'send') {
          const sent = await this.#adapter.send(op.chat, op.message);
          this.stats.sent++;
          if (this.#metrics) {
            if (op.message.images?.length) this.#metrics.album++;
            else this.#metrics.send++;
          }
          op.settle.resolve(sent);
        } else if (op.kind === 'typing') {
          await this.#adapter.sendTyping?.(op.chat);
          if (this.#metrics) this.#metrics.typing++;
          for (const s of op.settle) s.resolve();
        } else {
          if (op.draftId !== undefined) {
            await this.#adapter.sendDraft?.(op.chat, op.draftId, op.message.text ?? '');
            if (this.#metrics) this.#metrics.draft++;
          } else {
            await this.#adapter.edit(op.chat, op.messageId, op.message, { final: op.final });
            if (this.#metrics) this.#metrics.edit++;
          }
          this.stats.edited++;
          for (const s of op.settle) s.resolve();
        }
      } catch (error) {
        if (error instanceof RateLimitError && op.attempts < this.#maxRetries) {
          op.attempts++;
          this.stats.rateLimited++;
          pauseAfterRateLimit(queue, error.retryAfterMs, this.#clock.now());
          this.#log.warn('rate limited, pausing chat', {
            adapter: this.#adapter.name,
            chat: queue.chat.id,
            retryAfterMs: error.retryAfterMs,
            attempt: op.attempts,
          });
          requeue(queue, op);
        } else if (op.kind === 'send') {
          op.settle.reject(error);
        } else {
          for (const s of op.settle) s.reject(error);
        }
      } finally {
        queue.inFlight = undefined;
      }
    }
    queue.draining = false;
    if (this.#queues.size > maxIdleQueues) this.#sweep();
    this.#draining--;
    if (this.#draining === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Counts how long `op` waited in its queue before its first try. */
  #waited(op: Operation): void {
    const ms = this.#clock.now() - op.queuedAt;
    this.#metrics?.outboxWait.observe(ms / 1000);
    if (ms > slowWaitMs)
      this.#log.debug('outbox wait', {
        adapter: this.#adapter.name,
        kind: op.kind,
        ms,
        queued: this.pending,
      });
  }

  /**
   * After the budget failed to answer for `op`: how long to wait before asking again (1 s, doubling,
   * up to 30 s), or -1 once `op` has had its retries and was failed and taken off the queue.
   */
  #budgetFailed(queue: ChatQueue, op: Operation, error: unknown): number {
    op.attempts++;
    this.#log.warn('the send budget failed', { adapter: this.#adapter.name, attempt: op.attempts, error });
    if (op.attempts <= this.#maxRetries) return budgetRetryMs(op.attempts);
    dropOperation(queue, op, error);
    return -1;
  }

  /** Waits `ms`, or less when `#kick` wakes the queue. */
  #wait(queue: ChatQueue, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let handle: TimerHandle | undefined;
      const done = () => {
        if (handle !== undefined) this.#clock.clearTimeout(handle);
        queue.wake = undefined;
        resolve();
      };
      queue.wake = done;
      handle = this.#clock.setTimeout(done, ms);
    });
  }
}
