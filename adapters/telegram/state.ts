/**
 * The Telegram adapter's memory across restarts: the update ids it has handed to Chorus in the
 * last day, kept per bot (by the bot's id) in the adapter's store, so an update that Telegram
 * sends again after a crash is recognised and skipped; and the batch that polling holds (confirmed
 * to Telegram, not all taken yet), so a crash loses none of it.
 *
 * Only ids seen before are skipped, never "every id below a mark": Telegram picks the next update
 * id at random after a week without updates, and a second token or a test server starts lower, so
 * a mark could silence the bot. Telegram keeps an unconfirmed update for 24 hours, which bounds how
 * long an id is worth remembering: each entry expires then.
 *
 * Lookups are in memory. Writes go in batches: the ids handled since the last {@link
 * HandledUpdates.flush} become one store entry (`handled:<bot id>:<time>:<first id>`), written
 * before the batch is confirmed to Telegram, so a store write costs once per batch, not per update.
 * The held batch is one entry per poller (`held:<bot id>:<poller>`), replaced by each flush that
 * changed it and gone when nothing is held; the next poller takes what the entries it finds hold
 * (after a crash, or taking polling over) and then removes them, so a poller that lost the
 * polling lease and writes late touches only its own entry.
 */
import type { Update } from 'grammy/types';
import type { Json, Store } from '../../src/store.ts';

/** How long an update id is remembered: Telegram keeps unconfirmed updates for 24 hours. */
export const handledLifetimeMs = 24 * 60 * 60 * 1000;

/** Options of {@link HandledUpdates.load}. */
export interface HandledUpdatesOptions {
  readonly now?: () => number;
  /** Most ids remembered in memory; the oldest go first. Default 10,000. */
  readonly max?: number;
  /** Told when the store cannot be read or written; the adapter keeps working from memory. */
  readonly onError?: (what: string, error: unknown) => void;
}

/** One batch as it is stored. */
interface HandledBatch {
  readonly at: number;
  readonly ids: number[];
}

const isBatch = (value: unknown): value is HandledBatch =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as HandledBatch).at === 'number' &&
  Array.isArray((value as HandledBatch).ids) &&
  (value as HandledBatch).ids.every((id) => typeof id === 'number');

/** The update ids one bot handled in the last day, in memory and in a store. */
export class HandledUpdates {
  readonly #store: Store;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #max: number;
  readonly #onError: (what: string, error: unknown) => void;
  /** Update id → when it was handled; in the order they were handled. */
  readonly #ids = new Map<number, number>();
  /** Ids handled since the last flush. */
  #pending: number[] = [];
  #sequence = 0;
  readonly #heldPrefix: string;
  readonly #heldKey: string;
  /** The held entries of earlier pollers, read at load: removed once their updates are taken. */
  #leftOverKeys: string[] = [];
  /** The batch held now, and whether the store has it yet. */
  #held: readonly Update[] = [];
  #heldStored = true;
  #writing: Promise<void> = Promise.resolve();
  /** What the last run held and never took, as read at load. */
  #leftOver: Update[] = [];

  private constructor(store: Store, botId: string, options: HandledUpdatesOptions) {
    this.#store = store;
    this.#prefix = `handled:${botId}:`;
    this.#heldPrefix = `held:${botId}:`;
    this.#heldKey = `${this.#heldPrefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    this.#now = options.now ?? Date.now;
    this.#max = options.max ?? 10_000;
    this.#onError = options.onError ?? (() => {});
  }

  /** The ids bot `botId` handled in the last day, read from `store`. */
  static async load(
    store: Store,
    botId: string,
    options: HandledUpdatesOptions = {},
  ): Promise<HandledUpdates> {
    const handled = new HandledUpdates(store, botId, options);
    await handled.#read();
    return handled;
  }

  /** Whether `updateId` was handled in the last day. */
  has(updateId: number): boolean {
    const at = this.#ids.get(updateId);
    return at !== undefined && this.#now() - at < handledLifetimeMs;
  }

  /** Remembers `updateId` as handled. Stored by the next {@link flush}. */
  add(updateId: number): void {
    this.#remember(updateId, this.#now());
    this.#pending.push(updateId);
  }

  /**
   * Holds `updates`: confirmed to Telegram (or about to be) and not all taken yet. Stored by the
   * next {@link flush}, in place of the batch held before; `[]` holds none.
   */
  hold(updates: readonly Update[]): void {
    if (updates.length === 0 && this.#held.length === 0) return;
    this.#held = updates;
    this.#heldStored = false;
  }

  /** The updates a run before this one held and never took, oldest first (read at load). */
  held(): Update[] {
    return this.#leftOver.filter((update) => !this.has(update.update_id));
  }

  /** Saves the ids taken, then removes the held entries read at load: their updates are taken. */
  async releaseLeftOver(): Promise<void> {
    if (this.#leftOverKeys.length === 0) return;
    await this.flush();
    const keys = this.#leftOverKeys;
    this.#leftOverKeys = [];
    this.#leftOver = [];
    for (const key of keys)
      await this.#store
        .delete(key)
        .catch((error: unknown) => this.#onError('could not remove a held batch', error));
  }

  /**
   * Stores the ids added since the last flush, as one entry, and the held batch if it changed.
   * A failed write is retried with the next.
   */
  flush(): Promise<boolean> {
    // One write after another: a later write of the held batch must not be overtaken by an earlier.
    const written = this.#writing.then(() =>
      Promise.all([this.#flushIds(), this.#flushHeld()]).then(([, held]) => held),
    );
    this.#writing = written.then(() => {});
    return written;
  }

  /** False when the held batch could not be written. */
  async #flushHeld(): Promise<boolean> {
    if (this.#heldStored) return true;
    const held = this.#held;
    this.#heldStored = true;
    try {
      if (held.length === 0) await this.#store.delete(this.#heldKey);
      else
        await this.#store.set(
          this.#heldKey,
          { at: this.#now(), updates: held as unknown as Json[] },
          // Replaced with the next batch: not worth compressing.
          { ttlMs: handledLifetimeMs, shortLived: true },
        );
      return true;
    } catch (error) {
      if (this.#held === held) this.#heldStored = false;
      this.#onError('could not save the updates in hand', error);
      return false;
    }
  }

  async #flushIds(): Promise<void> {
    if (this.#pending.length === 0) return;
    const ids = this.#pending;
    this.#pending = [];
    const at = this.#now();
    try {
      await this.#store.set(
        `${this.#prefix}${at}:${ids[0]}:${this.#sequence++}`,
        { at, ids } satisfies HandledBatch,
        {
          ttlMs: handledLifetimeMs,
        },
      );
    } catch (error) {
      this.#pending = [...ids, ...this.#pending];
      this.#onError('could not save the handled update ids', error);
    }
  }

  #remember(updateId: number, at: number): void {
    this.#ids.delete(updateId);
    this.#ids.set(updateId, at);
    if (this.#ids.size > this.#max) this.#ids.delete(this.#ids.keys().next().value!);
  }

  async #read(): Promise<void> {
    let entries: { value: unknown }[];
    try {
      const held = await this.#store.list<{ updates: Json[] }>(this.#heldPrefix);
      const updates = new Map<number, Update>();
      for (const entry of held) {
        if (!Array.isArray(entry.value?.updates)) continue;
        for (const update of entry.value.updates as unknown as Update[])
          if (Number.isSafeInteger(update?.update_id)) updates.set(update.update_id, update);
      }
      this.#leftOver = [...updates.values()].sort((a, b) => a.update_id - b.update_id);
      this.#leftOverKeys = held.map((entry) => entry.key);
      entries = await this.#store.list(this.#prefix);
    } catch (error) {
      this.#onError('could not read the handled update ids', error);
      return;
    }
    const cutoff = this.#now() - handledLifetimeMs;
    const batches = entries
      .map((entry) => entry.value)
      .filter(isBatch)
      .filter((batch) => batch.at >= cutoff)
      .sort((a, b) => a.at - b.at);
    for (const batch of batches) for (const id of batch.ids) this.#remember(id, batch.at);
  }
}
