/**
 * The Store seam: durable key-value state behind one small async interface, so the core never
 * cares where state lives. Two implementations here: `MemoryStore` (tests, single runs) and
 * `SqliteStore` (an embedded file, the default, in `runtime/sqlite-store.ts`). Every implementation passes the same contract
 * suite (`test/src/store.contract.ts`); each operation is one atomic step that a Redis
 * implementation can do with one command or one script (`SET PX`, `SET NX PX`, a compare-and-delete).
 *
 * Values are plain JSON and are copied in and out: changing an object after `set` or after `get`
 * changes nothing stored.
 */
import { type Clock, systemClock } from './clock.ts';
import { ChorusError } from './errors.ts';

/** A plain JSON value. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** One stored entry. */
export interface StoreEntry<T extends Json = Json> {
  readonly key: string;
  readonly value: T;
}

/** A lock held in a store. Exactly one holder at a time, until it is released or its time runs out. */
export interface StoreLock {
  readonly key: string;
  /** Keeps the lock `ttlMs` longer from now. False when it was lost (it expired, and maybe someone took it). */
  extend(ttlMs: number): Promise<boolean>;
  /** Gives the lock up, if this holder still holds it. */
  release(): Promise<void>;
}

/** Durable key-value state with expiry and locks. */
export interface Store {
  /** The value under `key`, or `undefined` when there is none or it has expired. */
  get<T extends Json = Json>(key: string): Promise<T | undefined>;
  /**
   * Stores `value` under `key`; with `ttlMs`, it expires that long from now (without, it never does).
   * `shortLived`: the value is replaced again soon (a journal entry), so a store that compresses
   * large values stores this one as it is.
   */
  set(
    key: string,
    value: Json,
    options?: { readonly ttlMs?: number; readonly shortLived?: boolean },
  ): Promise<void>;
  /** Removes `key`. True when there was a live value. */
  delete(key: string): Promise<boolean>;
  /** Every live entry whose key starts with `prefix`, in no particular order. */
  list<T extends Json = Json>(prefix: string): Promise<StoreEntry<T>[]>;
  /**
   * Takes the lock named `key` for `ttlMs` if nobody holds it; `undefined` when someone does.
   * Locks live apart from values: a lock and a value may share a key.
   */
  lock(key: string, ttlMs: number): Promise<StoreLock | undefined>;
  /** Releases the store's resources. Later calls fail. */
  close(): Promise<void>;
}

/** For store implementations: a TypeError unless `key` is a string of 1 to 1024 characters. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new TypeError('a store key must be a string of 1 to 1024 characters');
  }
}

/** For store implementations: a TypeError unless `ttlMs` is absent or a positive integer. */
export function checkTtl(ttlMs: number | undefined, what: string): void {
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs <= 0)) {
    throw new TypeError(`${what} must be a positive integer of milliseconds, got ${String(ttlMs)}`);
  }
}

/** The value as JSON text; a TypeError for what JSON cannot hold. */
export function encode(value: Json): string {
  const text: string | undefined = JSON.stringify(value);
  if (text === undefined) throw new TypeError('a store value must be plain JSON');
  return text;
}

/**
 * Expired entries are swept once every this many writes, so keys written once and never read again
 * (event ids seen, with a TTL) do not pile up. Reads skip expired entries whenever they are swept.
 */
export const sweepEveryWrites = 1000;

/** Options of {@link MemoryStore} and of the SQLite store. */
export interface StoreOptions {
  /** Reads time for expiry. Default: the system clock. */
  readonly clock?: Clock;
}

/** A store in this process's memory: for tests and for runs that need to keep nothing. */
export class MemoryStore implements Store {
  readonly #clock: Clock;
  readonly #values = new Map<string, { text: string; expiresAt: number | undefined }>();
  readonly #locks = new Map<string, { token: string; expiresAt: number }>();
  #closed = false;
  #writes = 0;

  constructor(options: StoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  async get<T extends Json = Json>(key: string): Promise<T | undefined> {
    this.#open();
    checkKey(key);
    const entry = this.#live(key);
    return entry === undefined ? undefined : (JSON.parse(entry.text) as T);
  }

  async set(
    key: string,
    value: Json,
    options: { readonly ttlMs?: number; readonly shortLived?: boolean } = {},
  ): Promise<void> {
    this.#open();
    checkKey(key);
    checkTtl(options.ttlMs, 'ttlMs');
    const expiresAt = options.ttlMs === undefined ? undefined : this.#clock.now() + options.ttlMs;
    this.#values.set(key, { text: encode(value), expiresAt });
    this.#wrote();
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    checkKey(key);
    const live = this.#live(key) !== undefined;
    this.#values.delete(key);
    return live;
  }

  async list<T extends Json = Json>(prefix: string): Promise<StoreEntry<T>[]> {
    this.#open();
    const entries: StoreEntry<T>[] = [];
    for (const key of this.#values.keys()) {
      if (!key.startsWith(prefix)) continue;
      const entry = this.#live(key);
      if (entry) entries.push({ key, value: JSON.parse(entry.text) as T });
    }
    return entries;
  }

  async lock(key: string, ttlMs: number): Promise<StoreLock | undefined> {
    this.#open();
    checkKey(key);
    checkTtl(ttlMs, 'ttlMs');
    const now = this.#clock.now();
    const held = this.#locks.get(key);
    if (held && held.expiresAt > now) return undefined;
    const token = crypto.randomUUID();
    this.#locks.set(key, { token, expiresAt: now + ttlMs });
    this.#wrote();
    const mine = () => {
      const current = this.#locks.get(key);
      return current?.token === token && current.expiresAt > this.#clock.now() ? current : undefined;
    };
    return {
      key,
      extend: async (ms) => {
        checkTtl(ms, 'ttlMs');
        const current = mine();
        if (!current) return false;
        current.expiresAt = this.#clock.now() + ms;
        return true;
      },
      release: async () => {
        if (this.#locks.get(key)?.token === token) this.#locks.delete(key);
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #wrote(): void {
    if (++this.#writes % sweepEveryWrites !== 0) return;
    const now = this.#clock.now();
    for (const [key, entry] of this.#values)
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#values.delete(key);
    for (const [key, lock] of this.#locks) if (lock.expiresAt <= now) this.#locks.delete(key);
  }

  #live(key: string) {
    const entry = this.#values.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.#clock.now()) {
      this.#values.delete(key);
      return undefined;
    }
    return entry;
  }

  #open(): void {
    if (this.#closed) throw new ChorusError('STORE_CLOSED', 'the store is closed');
  }
}

/**
 * A view of `store` in which every key is prefixed with `prefix`: what the bot hands each plugin
 * (`plugin:<name>:`) and each adapter (`adapter:<platform>:`), so their keys never meet. Closing
 * the view closes nothing: the store belongs to whoever opened it.
 *
 * @example
 * const mine = namespacedStore(store, 'plugin:ask:');
 * await mine.set('c:telegram:42', ['hi', 'hello']); // kept as plugin:ask:c:telegram:42
 */
export function namespacedStore(store: Store, prefix: string): Store {
  if (typeof prefix !== 'string' || prefix.length === 0)
    throw new TypeError('a store prefix must not be empty');
  const strip = <T extends Json>(entries: StoreEntry<T>[]) =>
    entries.map((entry) => ({ key: entry.key.slice(prefix.length), value: entry.value }));
  return {
    async get<T extends Json = Json>(key: string) {
      checkKey(key);
      return store.get<T>(prefix + key);
    },
    async set(key, value, options) {
      checkKey(key);
      return store.set(prefix + key, value, options);
    },
    async delete(key) {
      checkKey(key);
      return store.delete(prefix + key);
    },
    async list<T extends Json = Json>(keyPrefix: string) {
      return strip(await store.list<T>(prefix + keyPrefix));
    },
    async lock(key, ttlMs) {
      checkKey(key);
      const lock = await store.lock(prefix + key, ttlMs);
      return lock && { key, extend: (ms: number) => lock.extend(ms), release: () => lock.release() };
    },
    close: async () => {},
  };
}
