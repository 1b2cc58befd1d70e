/**
 * The Budget seam: rate budgets kept under string keys, shared by whoever holds the same Budget
 * (the outboxes of one process now; several processes when a Redis budget implements it). One
 * `take` is atomic over all its keys: either a slot is taken under every key, or none is and the
 * caller learns how long to wait.
 */
import type { RateLimit } from './adapter.ts';
import { type Clock, systemClock } from './clock.ts';

/** One budget an operation must fit: at most `limit.count` operations under `key` in any `limit.periodMs`. */
export interface BudgetRule {
  readonly key: string;
  readonly limit: RateLimit;
  /**
   * Slots of this window to leave free for others (an intermediate edit leaves one for the next
   * result). Default 0.
   */
  readonly keepFree?: number;
}

/** Rate budgets under keys. */
export interface Budget {
  /**
   * Takes one slot under every rule's key if each has room, and gives 0; otherwise takes nothing
   * and gives the milliseconds until all of them would have room. A budget kept elsewhere (Redis)
   * answers with a promise; one in memory answers at once.
   */
  take(rules: readonly BudgetRule[]): number | Promise<number>;
}

const sweepEveryTakes = 4096;

/** Options of {@link MemoryBudget}. */
export interface MemoryBudgetOptions {
  readonly clock?: Clock;
}

/** Sliding windows in this process's memory. */
export class MemoryBudget implements Budget {
  readonly #clock: Clock;
  /** Times of the slots taken, oldest first, per key. */
  readonly #stamps = new Map<string, number[]>();
  /** The longest window seen: a key with no slot that recent has nothing left to remember. */
  #longestPeriodMs = 0;
  #takes = 0;

  constructor(options: MemoryBudgetOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** Keys with slots still in their window: what this budget holds in memory. */
  get size(): number {
    return this.#stamps.size;
  }

  take(rules: readonly BudgetRule[]): number {
    if (rules.length === 0) return 0;
    const now = this.#clock.now();
    // Keys of chats gone quiet are dropped now and then, so a bot seen in many chats stays small.
    if (++this.#takes % sweepEveryTakes === 0) this.#sweep(now);
    let wait = 0;
    for (const rule of rules) wait = Math.max(wait, this.#waitFor(rule, now));
    if (wait > 0) return wait;
    for (const rule of rules) {
      const stamps = this.#stamps.get(rule.key);
      if (stamps) stamps.push(now);
      else this.#stamps.set(rule.key, [now]);
    }
    return 0;
  }

  #sweep(now: number): void {
    for (const [key, stamps] of this.#stamps) {
      if (stamps[stamps.length - 1]! <= now - this.#longestPeriodMs) this.#stamps.delete(key);
    }
  }

  #waitFor(rule: BudgetRule, now: number): number {
    const { count, periodMs } = rule.limit;
    if (periodMs > this.#longestPeriodMs) this.#longestPeriodMs = periodMs;
    const stamps = this.#stamps.get(rule.key);
    if (!stamps) return count > (rule.keepFree ?? 0) ? 0 : periodMs;
    let expired = 0;
    while (expired < stamps.length && stamps[expired]! <= now - periodMs) expired++;
    if (expired > 0) stamps.splice(0, expired);
    if (stamps.length === 0) this.#stamps.delete(rule.key);
    const allowed = count - 1 - (rule.keepFree ?? 0);
    if (stamps.length <= allowed) return 0;
    if (allowed < 0) return periodMs;
    return stamps[stamps.length - 1 - allowed]! + periodMs - now;
  }
}
