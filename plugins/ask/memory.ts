/**
 * Conversation memory in an embedded SQLite file (better-sqlite3), so a restart forgets nothing:
 * the last turns of each conversation, and which bot message belongs to which conversation (a
 * reply to the bot continues that thread).
 *
 * SQLite calls are synchronous, so the store never lets one wait on a lock: the busy timeout is a
 * few milliseconds, and a busy database is retried later on the clock, with the event loop free
 * in between. A write that still fails is logged and reported to the caller. A file that cannot
 * be opened, read or written at start (corrupt, read-only, a directory) turns memory off with one
 * log line naming the path and the reason, and the bot runs on without it. A file deleted while
 * the bot runs is noticed and started again.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, type Logger, silentLogger, sleep, systemClock } from 'chorus-bot';
import type { ChatMessage } from './backends.ts';

/** Options of {@link ConversationStore.open}. */
export interface StoreOptions {
  /** Question-and-answer pairs kept per conversation. */
  readonly turns: number;
  /** Characters of history given back for one question; older messages are left out. */
  readonly maxChars?: number;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** How long one SQLite call may wait for a lock, blocking the event loop. */
export const busyTimeoutMs = 10;
/** Pauses between retries of a busy database, on the clock: about 1.5 s in all. */
const retryDelaysMs = [20, 50, 100, 200, 400, 800];
const schemaVersion = 1;

type Statements = ReturnType<typeof prepare>;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<[string, string, string]>(
      'INSERT INTO turns (conversation, role, content) VALUES (?, ?, ?)',
    ),
    prune: db.prepare<[string, string, number]>(
      'DELETE FROM turns WHERE conversation = ? AND seq <= (SELECT seq FROM turns WHERE conversation = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
    ),
    history: db.prepare<[string, number], { role: ChatMessage['role']; content: string }>(
      'SELECT role, content FROM turns WHERE conversation = ? ORDER BY seq DESC LIMIT ?',
    ),
    reset: db.prepare<[string]>('DELETE FROM turns WHERE conversation = ?'),
    link: db.prepare<[string, string, string]>(
      'INSERT OR REPLACE INTO bot_messages (message, conversation) VALUES (? || char(0) || ?, ?)',
    ),
    lookup: db.prepare<[string], { conversation: string }>(
      'SELECT conversation FROM bot_messages WHERE message = ?',
    ),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM turns'),
  };
}

function openDatabase(path: string): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS turns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns (conversation, seq);
      CREATE TABLE IF NOT EXISTS bot_messages (
        message TEXT PRIMARY KEY,
        conversation TEXT NOT NULL
      ) WITHOUT ROWID;
    `);
    // A write at start, so a file the bot may read but not write is found now, not at the first answer.
    db.pragma(`user_version = ${schemaVersion}`);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

const isBusy = (error: unknown) =>
  typeof (error as { code?: unknown })?.code === 'string' &&
  /^SQLITE_(BUSY|LOCKED)/.test((error as { code: string }).code);

/** The store of every conversation. Memory may be off: then it remembers nothing, and says so. */
export class ConversationStore {
  readonly path: string;
  readonly #turns: number;
  readonly #maxChars: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  #db: Database.Database | undefined;
  #statements: Statements | undefined;

  private constructor(path: string, options: StoreOptions, db: Database.Database | undefined) {
    this.path = path;
    this.#turns = options.turns;
    this.#maxChars = options.maxChars ?? 40_000;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#db = db;
    this.#statements = db && prepare(db);
  }

  /**
   * Opens (or creates) the store at `path`; `:memory:` keeps nothing across restarts. Never
   * throws: a file that cannot be used gives a store with memory off, and one error line.
   */
  static open(path: string, options: StoreOptions): ConversationStore {
    try {
      return new ConversationStore(path, options, openDatabase(path));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      (options.log ?? silentLogger).error('conversation memory is off: cannot use its file', {
        path,
        reason,
      });
      return new ConversationStore(path, options, undefined);
    }
  }

  /** False when memory is off (the file could not be used at start). */
  get enabled(): boolean {
    return this.#db !== undefined;
  }

  /**
   * The remembered messages of a conversation, oldest first: at most `turns` pairs, and no more
   * than `maxChars` characters in all (the newest kept). Empty when memory fails.
   */
  async history(conversation: string): Promise<ChatMessage[]> {
    if (this.#turns === 0) return [];
    const rows = await this.#attempt('read history', (s) =>
      s.history.all(conversation, this.#turns * 2),
    ).catch(() => []);
    const kept: ChatMessage[] = [];
    let chars = 0;
    for (const row of rows ?? []) {
      chars += row.content.length;
      if (chars > this.#maxChars) break;
      kept.push(row);
    }
    // A history must not start with an answer whose question was left out.
    if (kept.at(-1)?.role === 'assistant') kept.pop();
    return kept.reverse();
  }

  /**
   * Remembers one question and its answer, forgetting what falls out of the window. Resolves
   * with false when the turn could not be saved (the reason is logged).
   */
  async remember(conversation: string, question: string, answer: string): Promise<boolean> {
    if (!this.#db) return false;
    return this.#attempt('save a turn', (s) => {
      this.#db!.transaction(() => {
        s.insert.run(conversation, 'user', question);
        s.insert.run(conversation, 'assistant', answer);
        s.prune.run(conversation, conversation, this.#turns * 2);
      })();
      return true;
    }).then(
      (saved) => saved ?? false,
      () => false,
    );
  }

  /** Forgets a conversation. Resolves with how many messages went, or undefined when it failed. */
  async reset(conversation: string): Promise<number | undefined> {
    return this.#attempt('forget a conversation', (s) => s.reset.run(conversation).changes).catch(
      () => undefined,
    );
  }

  /** Records that the bot's message `messageId` in chat `chatKey` answers within `conversation`. */
  async link(chatKey: string, messageId: string, conversation: string): Promise<void> {
    await this.#attempt('link a message', (s) => s.link.run(chatKey, messageId, conversation)).catch(
      () => {},
    );
  }

  /** The conversation a bot message belongs to, if known. */
  async conversationOf(chatKey: string, messageId: string): Promise<string | undefined> {
    const row = await this.#attempt('look up a message', (s) =>
      s.lookup.get(`${chatKey}\u0000${messageId}`),
    ).catch(() => undefined);
    return row?.conversation;
  }

  /** Messages stored, across all conversations. */
  size(): number {
    return this.#statements?.count.get()?.n ?? 0;
  }

  close(): void {
    this.#db?.close();
    this.#db = undefined;
    this.#statements = undefined;
  }

  /**
   * Runs `work` with the statements; a busy database is retried after a pause on the clock.
   * Resolves with undefined when memory is off; rejects (after logging) when the work fails.
   */
  async #attempt<T>(what: string, work: (statements: Statements) => T): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      this.#reopenIfDeleted();
      if (!this.#statements) return undefined;
      try {
        return work(this.#statements);
      } catch (error) {
        const delay = retryDelaysMs[attempt];
        if (isBusy(error) && delay !== undefined) {
          await sleep(this.#clock, delay);
          continue;
        }
        this.#log.error(`conversation memory: could not ${what}`, { path: this.path, error });
        throw error;
      }
    }
  }

  /** A file deleted under a running bot would swallow every later write: start a new one. */
  #reopenIfDeleted(): void {
    if (!this.#db || this.path === ':memory:' || existsSync(this.path)) return;
    this.#log.warn('conversation memory: its file was deleted; starting a new one', { path: this.path });
    this.close();
    try {
      this.#db = openDatabase(this.path);
      this.#statements = prepare(this.#db);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#log.error('conversation memory is off: cannot use its file', { path: this.path, reason });
    }
  }
}
