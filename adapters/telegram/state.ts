/**
 * The Telegram adapter's memory across restarts: the update ids it has handed to Chorus in the
 * last day, kept per bot (by the bot's id), so an update that Telegram sends again after a crash is
 * recognised and skipped.
 *
 * Only ids seen before are skipped, never "every id below a mark": Telegram picks the next update
 * id at random after a week without updates, and a second token or a test server starts lower, so
 * a mark could silence the bot. Telegram keeps an unconfirmed update for 24 hours, which bounds how
 * long an id is worth remembering.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** How long an update id is remembered: Telegram keeps unconfirmed updates for 24 hours. */
export const handledLifetimeMs = 24 * 60 * 60 * 1000;

/** Options of {@link HandledUpdates}. */
export interface HandledUpdatesOptions {
  readonly now?: () => number;
  /** Most ids remembered; the oldest go first. Default 10,000. */
  readonly max?: number;
  /** Told when the file cannot be read or written; the adapter keeps working from memory. */
  readonly onError?: (what: string, error: unknown) => void;
}

/** The update ids handled in the last day, in memory and in a file. */
export class HandledUpdates {
  readonly #path: string;
  readonly #now: () => number;
  readonly #max: number;
  readonly #onError: (what: string, error: unknown) => void;
  /** Update id → when it was handled; in the order they were handled. */
  readonly #ids = new Map<number, number>();
  #dirty = false;

  constructor(path: string, options: HandledUpdatesOptions = {}) {
    this.#path = path;
    this.#now = options.now ?? Date.now;
    this.#max = options.max ?? 10_000;
    this.#onError = options.onError ?? (() => {});
    this.#read();
  }

  /** Whether `updateId` was handled in the last day. */
  has(updateId: number): boolean {
    const at = this.#ids.get(updateId);
    return at !== undefined && this.#now() - at < handledLifetimeMs;
  }

  /** Remembers `updateId` as handled. Written by the next {@link flush}. */
  add(updateId: number): void {
    this.#ids.set(updateId, this.#now());
    if (this.#ids.size > this.#max) this.#ids.delete(this.#ids.keys().next().value!);
    this.#dirty = true;
  }

  /** Writes the ids if any were added since the last write. */
  flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const cutoff = this.#now() - handledLifetimeMs;
    for (const [id, at] of this.#ids) if (at < cutoff) this.#ids.delete(id);
    try {
      // Write then rename, so a crash mid-write never leaves a torn file.
      mkdirSync(dirname(this.#path), { recursive: true });
      writeFileSync(`${this.#path}.tmp`, JSON.stringify({ handled: [...this.#ids] }));
      renameSync(`${this.#path}.tmp`, this.#path);
    } catch (error) {
      this.#onError(`could not save the handled update ids to ${this.#path}`, error);
    }
  }

  #read(): void {
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') {
        this.#onError(`could not read ${this.#path}`, error);
      }
      return;
    }
    try {
      const { handled } = JSON.parse(text) as { handled?: unknown };
      if (!Array.isArray(handled)) throw new TypeError('no "handled" list');
      const cutoff = this.#now() - handledLifetimeMs;
      for (const pair of handled) {
        if (!Array.isArray(pair)) continue;
        const [id, at] = pair as unknown[];
        if (typeof id === 'number' && typeof at === 'number' && at >= cutoff) this.#ids.set(id, at);
      }
    } catch (error) {
      this.#onError(`ignoring ${this.#path}, which is not a list of handled updates`, error);
    }
  }
}
