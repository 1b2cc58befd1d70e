/**
 * The Store seam on Redis: what `SqliteStore` keeps in a file, kept in Redis so that every
 * process of one bot reads and writes the same state (ask's conversations, scheduled jobs,
 * handled update ids, locks). It passes the same contract suite as the embedded stores.
 *
 * Expiry follows the store's clock, not Redis's: each value carries the time it expires, and a
 * read past that time finds nothing (so a fake clock drives it in tests, as it does the others).
 * Redis's own expiry, set a little later, is what frees the memory.
 */
import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '../../clock.ts';
import { ChorusError } from '../../errors.ts';
import type { Json, Store, StoreEntry, StoreLock } from '../../store.ts';
import type { RedisClient } from './connection.ts';
import { LuaScript } from './script.ts';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** Reads time for expiry. Default: the system clock. */
  readonly clock?: Clock;
  /** Put before every key in Redis, so several bots can share one Redis. Default `chorus:`. */
  readonly prefix?: string;
}

/** How long after its expiry Redis drops a value: reads check expiry themselves, this frees memory. */
const graceMs = 60_000;

/** `*`, `?`, `[`, `]` and `\` taken literally in a SCAN pattern. */
const globEscape = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');

/** The stored form: `<expires at, or empty>\n<JSON>`. */
const pack = (json: string, expiresAt: number | undefined) => `${expiresAt ?? ''}\n${json}`;

function unpack(stored: string | null, now: number): string | undefined {
  if (stored === null) return undefined;
  const cut = stored.indexOf('\n');
  const expiresAt = cut > 0 ? Number(stored.slice(0, cut)) : undefined;
  if (expiresAt !== undefined && expiresAt <= now) return undefined;
  return stored.slice(cut + 1);
}

const lockScript = new LuaScript(`
local held = redis.call('GET', KEYS[1])
if held and tonumber(string.match(held, '\\n(%d+)$')) > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'PX', ARGV[4])
return 1`);

const extendScript = new LuaScript(`
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local token, expires = string.match(held, '^(.*)\\n(%d+)$')
if token ~= ARGV[1] or tonumber(expires) <= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'PX', ARGV[4])
return 1`);

const releaseScript = new LuaScript(`
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^(.*)\\n%d+$') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`);

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new TypeError('a store key must be a string of 1 to 1024 characters');
  }
}

function checkTtl(ttlMs: number | undefined): void {
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs <= 0)) {
    throw new TypeError(`ttlMs must be a positive integer of milliseconds, got ${String(ttlMs)}`);
  }
}

function encode(value: Json): string {
  const text: string | undefined = JSON.stringify(value);
  if (text === undefined) throw new TypeError('a store value must be plain JSON');
  return text;
}

/**
 * A store in Redis, shared by every process that opens it with the same prefix. It uses the client
 * it is given and does not close it.
 *
 * @example
 * const redis = await connectRedis(process.env.REDIS_URL!);
 * const store = new RedisStore(redis);
 * await store.set('greeting', { text: 'hi' }, { ttlMs: 60_000 });
 */
export class RedisStore implements Store {
  readonly #redis: RedisClient;
  readonly #clock: Clock;
  readonly #values: string;
  readonly #locks: string;
  #closed = false;

  constructor(redis: RedisClient, options: RedisStoreOptions = {}) {
    this.#redis = redis;
    this.#clock = options.clock ?? systemClock;
    const prefix = options.prefix ?? 'chorus:';
    this.#values = `${prefix}kv:`;
    this.#locks = `${prefix}lock:`;
  }

  async get<T extends Json = Json>(key: string): Promise<T | undefined> {
    this.#open();
    checkKey(key);
    const text = unpack(await this.#redis.get(this.#values + key), this.#clock.now());
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async set(
    key: string,
    value: Json,
    options: { readonly ttlMs?: number; readonly shortLived?: boolean } = {},
  ): Promise<void> {
    this.#open();
    checkKey(key);
    checkTtl(options.ttlMs);
    const text = encode(value);
    if (options.ttlMs === undefined) {
      await this.#redis.set(this.#values + key, pack(text, undefined));
    } else {
      const stored = pack(text, this.#clock.now() + options.ttlMs);
      await this.#redis.set(this.#values + key, stored, 'PX', options.ttlMs + graceMs);
    }
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    checkKey(key);
    return unpack(await this.#redis.getdel(this.#values + key), this.#clock.now()) !== undefined;
  }

  async list<T extends Json = Json>(prefix: string): Promise<StoreEntry<T>[]> {
    this.#open();
    const pattern = `${globEscape(this.#values + prefix)}*`;
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      for (const key of found) keys.add(key);
      cursor = next;
    } while (cursor !== '0');
    const entries: StoreEntry<T>[] = [];
    const all = [...keys];
    for (let start = 0; start < all.length; start += 500) {
      const batch = all.slice(start, start + 500);
      const values = await this.#redis.mget(...batch);
      const now = this.#clock.now();
      for (const [index, stored] of values.entries()) {
        const text = unpack(stored, now);
        if (text !== undefined)
          entries.push({ key: batch[index]!.slice(this.#values.length), value: JSON.parse(text) as T });
      }
    }
    return entries;
  }

  async lock(key: string, ttlMs: number): Promise<StoreLock | undefined> {
    this.#open();
    checkKey(key);
    checkTtl(ttlMs);
    const token = randomUUID();
    const name = this.#locks + key;
    const run = (script: LuaScript, ms: number) => {
      const now = this.#clock.now();
      return script.run(this.#redis, [name], [token, now + ms, now, ms + graceMs]);
    };
    if ((await run(lockScript, ttlMs)) !== 1) return undefined;
    return {
      key,
      extend: async (ms) => {
        checkTtl(ms);
        return (await run(extendScript, ms)) === 1;
      },
      release: async () => {
        await releaseScript.run(this.#redis, [name], [token]);
      },
    };
  }

  /** Stops using the client; the client itself belongs to whoever connected it. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new ChorusError('STORE_CLOSED', 'the store is closed');
  }
}
