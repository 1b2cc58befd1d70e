/**
 * How fast the outbox may go in one chat: the adapter's declared rate limits as `Budget` rules (a
 * send may use a window's whole burst; an intermediate edit leaves the last slot of each window for
 * the next result), the sustained pace of edits, the pause after a 429, and how long to wait before
 * asking a budget that failed again.
 */
import type { Adapter, RateLimit, RateLimits } from './adapter.ts';
import type { BudgetRule } from './budget.ts';
import type { ChatAddress } from './message.ts';
import type { ChatQueue, Operation } from './outbox-queue.ts';

/** The budgets of one chat, as the adapter declares them. */
export interface ChatRules {
  /** The chat's budgets (and the adapter's global one) for a send, and for an intermediate edit. */
  readonly sendRules: readonly BudgetRule[];
  readonly editRules: readonly BudgetRule[];
  /** The sustained pace of the chat's budgets: edits go at most once per this many ms. */
  readonly editSpacingMs: number;
}

/** The rules of `chat` under `adapter`'s limits: per chat, per group (not in private chats), global. */
export function chatRules(adapter: Pick<Adapter, 'limits' | 'name'>, chat: ChatAddress): ChatRules {
  const { perChat, perGroup, global } = adapter.limits.rate;
  const name = adapter.name;
  const limits: [string, RateLimit][] = [];
  if (perChat) limits.push([`${name}:chat:${chat.id}`, perChat]);
  if (perGroup && chat.kind !== 'private') limits.push([`${name}:group:${chat.id}`, perGroup]);
  if (global) limits.push([`${name}:global`, global]);
  return {
    sendRules: limits.map(([key, limit]) => ({ key, limit })),
    // An intermediate edit leaves one slot of each window free for the next result.
    editRules: limits.map(([key, limit]) => ({ key, limit, keepFree: limit.count > 1 ? 1 : 0 })),
    editSpacingMs: Math.max(0, ...limits.map(([, limit]) => limit.periodMs / limit.count)),
  };
}

/**
 * The rules `op` takes its slot under: a send's, or an intermediate edit's; a final edit (a
 * status's last word) may take the slot intermediate ones leave free.
 */
export function rulesFor(queue: ChatQueue, op: Operation): readonly BudgetRule[] {
  return op.kind === 'send' || (op.kind === 'edit' && op.final) ? queue.sendRules : queue.editRules;
}

/** How long `op` must wait for a rate-limit pause, or for the pace of edits. */
export function pauseFor(queue: ChatQueue, op: Operation, now: number): number {
  let at = Math.max(now, queue.pausedUntil);
  if (op.kind === 'edit' && op.draftId === undefined) at = Math.max(at, queue.lastOpAt + queue.editSpacingMs);
  return at - now;
}

/** Pauses the chat of `queue` for a 429's `retryAfterMs` from `now` (a longer pause stands). */
export function pauseAfterRateLimit(queue: ChatQueue, retryAfterMs: number, now: number): void {
  queue.pausedUntil = Math.max(queue.pausedUntil, now + retryAfterMs);
}

/** How long to wait before asking a budget that failed `attempts` times again: 1 s, doubling, up to 30 s. */
export function budgetRetryMs(attempts: number): number {
  return Math.min(30_000, 1000 * 2 ** (attempts - 1));
}

/** Budgets that never wait: for adapters without limits and for benchmarks. */
export const unlimited: RateLimits = {};
