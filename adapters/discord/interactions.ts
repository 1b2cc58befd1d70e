/**
 * The slash commands a Discord adapter is answering: each one's token (replies go through its
 * webhook for 15 minutes), whether the deferred reply has been used, and the messages sent through
 * it. Expired ones are dropped and the table is bounded, so a busy bot does not keep every command
 * it ever saw.
 */

/** One slash command being answered. */
export interface PendingInteraction {
  readonly token: string;
  /** Resolves once Discord has the "thinking..." reply. */
  readonly deferred: Promise<void>;
  readonly expiresAt: number;
  originalUsed: boolean;
  /** Messages sent through this interaction's webhook, edited through it too. */
  readonly messages: Set<string>;
}

/** Options of {@link Interactions}. */
export interface InteractionsOptions {
  /** Interaction tokens last 15 minutes; a little less leaves room for the last reply. Default 14 min. */
  readonly lifetimeMs?: number;
  /** Most interactions kept; the oldest go first. Default 5,000. */
  readonly max?: number;
  readonly now?: () => number;
}

/** The live slash commands, by the id of the message they stand for. */
export class Interactions {
  readonly #items = new Map<string, PendingInteraction>();
  readonly #lifetimeMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: InteractionsOptions = {}) {
    this.#lifetimeMs = options.lifetimeMs ?? 14 * 60 * 1000;
    this.#max = options.max ?? 5_000;
    this.#now = options.now ?? Date.now;
  }

  /** How many are kept now. */
  get size(): number {
    return this.#items.size;
  }

  /** Remembers a deferred slash command, first dropping expired ones and the oldest beyond the bound. */
  add(id: string, token: string, deferred: Promise<void>): PendingInteraction {
    const now = this.#now();
    // Insertion order is expiry order: stop at the first one that is live, once there is room.
    for (const [key, item] of this.#items) {
      if (item.expiresAt > now && this.#items.size < this.#max) break;
      this.#items.delete(key);
    }
    const item: PendingInteraction = {
      token,
      deferred,
      expiresAt: now + this.#lifetimeMs,
      originalUsed: false,
      messages: new Set(),
    };
    this.#items.set(id, item);
    return item;
  }

  /** The live interaction that a reply to `messageId` goes through, if any. */
  replyingTo(messageId: string | undefined): PendingInteraction | undefined {
    if (messageId === undefined) return undefined;
    const item = this.#items.get(messageId);
    if (item && this.#now() >= item.expiresAt) {
      this.#items.delete(messageId);
      return undefined;
    }
    return item;
  }

  /** The live interaction whose webhook sent `messageId`, if any (its edits go through it too). */
  holding(messageId: string): PendingInteraction | undefined {
    const now = this.#now();
    for (const item of this.#items.values()) {
      if (item.messages.has(messageId) && now < item.expiresAt) return item;
    }
    return undefined;
  }

  clear(): void {
    this.#items.clear();
  }
}
