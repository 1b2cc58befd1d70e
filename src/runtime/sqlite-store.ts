/**
 * The embedded `Store`: one SQLite file (better-sqlite3), the default state of a bot. Values over
 * a kilobyte are stored compressed; a file that another process holds busy is retried briefly.
 * It passes the same contract suite as every other store (`test/src/store.contract.ts`).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import {
  brotliCompress,
  brotliDecompress,
  brotliDecompressSync,
  constants as zlibConstants,
} from 'node:zlib';
import Database from 'better-sqlite3';
import { type Clock, sleep, systemClock } from '../clock.ts';
import { ChorusError } from '../errors.ts';
import {
  checkKey,
  checkTtl,
  encode,
  type Json,
  type Store,
  type StoreEntry,
  type StoreLock,
  type StoreOptions,
  sweepEveryWrites,
} from '../store.ts';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions extends StoreOptions {
  /**
   * How long one statement may wait for another connection's write lock. Kept short because
   * better-sqlite3 waits synchronously, stopping the event loop; a busy store is retried after
   * an asynchronous pause instead. Default 20 ms.
   */
  readonly busyTimeoutMs?: number;
  /** How long, in all, an operation keeps retrying a busy store before it fails. Default 5 s. */
  readonly busyRetryMs?: number;
}

interface LockParams {
  readonly key: string;
  readonly token: string;
  readonly expiresAt: number;
  readonly now: number;
}

/**
 * The SQL for the two tables: values (optional expiry) and locks. A value is JSON text, or that
 * text brotli-compressed as a BLOB when it is large. Values live in a rowid table, so a value of a
 * few KB sits in its page: in a WITHOUT ROWID table anything over a quarter of a page spills into
 * an overflow page of its own, and a 1.5 KB conversation would take 4 KB. (Files made before keep
 * their WITHOUT ROWID table; the same statements work on both.)
 */
const schema = `
  CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY NOT NULL,
    value NOT NULL,
    expires_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE IF NOT EXISTS locks (
    key TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
`;

/**
 * A store in an embedded SQLite file (better-sqlite3), which several processes on one machine may
 * share. Each operation is one short statement; contention is waited out asynchronously.
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #clock: Clock;
  readonly #busyRetryMs: number;
  readonly #get: Database.Statement<[string, number], { value: StoredValue }>;
  readonly #set: Database.Statement<[string, StoredValue, number | null]>;
  readonly #delete: Database.Statement<[string, number], { live: number }>;
  readonly #list: Database.Statement<[string, string, number], { key: string; value: StoredValue }>;
  readonly #purge: Database.Statement<[number]>;
  readonly #purgeLocks: Database.Statement<[number]>;
  #writes = 0;
  readonly #lock: Database.Statement<[LockParams]>;
  readonly #extend: Database.Statement<[LockParams]>;
  readonly #unlock: Database.Statement<[string, string]>;

  /** Use {@link openSqliteStore}, which waits out a file that another process is creating. */
  constructor(db: Database.Database, options: SqliteStoreOptions = {}) {
    this.#db = db;
    this.#clock = options.clock ?? systemClock;
    this.#busyRetryMs = options.busyRetryMs ?? 5_000;
    this.#get = db.prepare('SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)');
    this.#set = db.prepare(
      'INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
    );
    this.#delete = db.prepare(
      'DELETE FROM kv WHERE key = ? RETURNING (expires_at IS NULL OR expires_at > ?) AS live',
    );
    // A range scan on the primary key: every key that starts with the prefix sorts within it.
    this.#list = db.prepare(
      'SELECT key, value FROM kv WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?)',
    );
    this.#purge = db.prepare('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?');
    this.#purgeLocks = db.prepare('DELETE FROM locks WHERE expires_at <= ?');
    this.#lock = db.prepare(
      'INSERT INTO locks (key, token, expires_at) VALUES (@key, @token, @expiresAt) ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at WHERE locks.expires_at <= @now',
    );
    this.#extend = db.prepare(
      'UPDATE locks SET expires_at = @expiresAt WHERE key = @key AND token = @token AND expires_at > @now',
    );
    this.#unlock = db.prepare('DELETE FROM locks WHERE key = ? AND token = ?');
  }

  async get<T extends Json = Json>(key: string): Promise<T | undefined> {
    checkKey(key);
    const row = await this.#retry(() => this.#get.get(key, this.#clock.now()));
    return row === undefined ? undefined : ((await decodeStored(row.value)) as T);
  }

  async set(
    key: string,
    value: Json,
    options: { readonly ttlMs?: number; readonly shortLived?: boolean } = {},
  ): Promise<void> {
    checkKey(key);
    checkTtl(options.ttlMs, 'ttlMs');
    const text = encode(value);
    const stored = options.shortLived ? text : await encodeStored(text);
    await this.#retry(() => {
      const expiresAt = options.ttlMs === undefined ? null : this.#clock.now() + options.ttlMs;
      this.#set.run(key, stored, expiresAt);
      this.#wrote();
    });
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const row = await this.#retry(() => this.#delete.get(key, this.#clock.now()));
    return row?.live === 1;
  }

  async list<T extends Json = Json>(prefix: string): Promise<StoreEntry<T>[]> {
    const rows = await this.#retry(() => {
      const now = this.#clock.now();
      this.#purge.run(now);
      return this.#list.all(prefix, `${prefix}\u{10FFFF}`, now);
    });
    const entries: StoreEntry<T>[] = [];
    for (const row of rows) entries.push({ key: row.key, value: (await decodeStored(row.value)) as T });
    return entries;
  }

  async lock(key: string, ttlMs: number): Promise<StoreLock | undefined> {
    checkKey(key);
    checkTtl(ttlMs, 'ttlMs');
    const token = crypto.randomUUID();
    const taken = await this.#retry(() => {
      const now = this.#clock.now();
      const taken = this.#lock.run({ key, token, expiresAt: now + ttlMs, now }).changes === 1;
      this.#wrote();
      return taken;
    });
    if (!taken) return undefined;
    return {
      key,
      extend: async (ms) => {
        checkTtl(ms, 'ttlMs');
        return this.#retry(() => {
          const now = this.#clock.now();
          return this.#extend.run({ key, token, expiresAt: now + ms, now }).changes === 1;
        });
      },
      release: async () => {
        await this.#retry(() => this.#unlock.run(key, token));
      },
    };
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  /** Every so many writes, deletes what has expired (values by their index on expiry). */
  #wrote(): void {
    if (++this.#writes % sweepEveryWrites !== 0) return;
    const now = this.#clock.now();
    this.#purge.run(now);
    this.#purgeLocks.run(now);
  }

  /** Runs one statement; when another connection holds the file, pauses (without blocking) and tries again. */
  #retry<T>(statement: () => T): Promise<T> {
    return retryBusy(statement, this.#busyRetryMs);
  }
}

/** A value as SQLite keeps it: JSON text, or brotli-compressed JSON text. */
type StoredValue = string | Buffer;

/** JSON text this long or longer is compressed: chat text shrinks to about half. */
const compressFromChars = 1024;
/** Compressed values up to this size are read back synchronously (tens of µs); larger ones off the loop. */
const syncDecompressBytes = 64 * 1024;
const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

/** The text, or its compressed bytes when it is long and they are smaller. Compressed off the event loop. */
async function encodeStored(text: string): Promise<StoredValue> {
  if (text.length < compressFromChars) return text;
  const bytes = Buffer.from(text);
  const packed = await compress(bytes, {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: 5,
      [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  return packed.length < bytes.length ? packed : text;
}

async function decodeStored(value: StoredValue): Promise<Json> {
  if (typeof value === 'string') return JSON.parse(value) as Json;
  const bytes = value.length <= syncDecompressBytes ? brotliDecompressSync(value) : await decompress(value);
  return JSON.parse(bytes.toString('utf8')) as Json;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Contention is between real processes, so its pauses are on the real clock whatever the store's clock. */
async function retryBusy<T>(statement: () => T, budgetMs: number): Promise<T> {
  const clock = systemClock;
  const deadline = clock.now() + budgetMs;
  for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 200)) {
    try {
      return statement();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (clock.now() >= deadline) {
        throw new ChorusError('STORE_BUSY', `the state file stayed busy for ${budgetMs} ms`, {
          cause: error,
        });
      }
    }
    await sleep(clock, pauseMs);
  }
}

/**
 * Opens (or creates) a SQLite store at `path` (`:memory:` keeps nothing). Folders are created;
 * another process creating the same file at the same moment is waited out.
 *
 * @example
 * const store = await openSqliteStore('.chorus/state.sqlite');
 * await store.set('greeting', { text: 'hi' }, { ttlMs: 60_000 });
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: options.busyTimeoutMs ?? 20 });
  try {
    await retryBusy(() => {
      db.pragma('journal_mode = WAL');
      // In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a crash of the process
      // loses nothing, a power cut at most the last writes, and a write costs microseconds, not a disk flush.
      db.pragma('synchronous = NORMAL');
      db.exec(schema);
      // A write at start, so a file the bot may read but not write is found now, not at the first write.
      db.pragma('user_version = 1');
    }, options.busyRetryMs ?? 5_000);
  } catch (error) {
    db.close();
    throw error;
  }
  return new SqliteStore(db, options);
}
