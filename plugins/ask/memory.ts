/**
 * Conversation memory in an embedded SQLite file (better-sqlite3), so a restart forgets nothing:
 * the last turns of each conversation, and which bot message belongs to which conversation (a
 * reply to the bot continues that thread).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatMessage } from './backends.ts';

/** The store of every conversation. Synchronous: SQLite on a local file answers in microseconds. */
export class ConversationStore {
  readonly #db: Database.Database;
  readonly #turns: number;
  readonly #insert: Database.Statement<[string, string, string]>;
  readonly #prune: Database.Statement<[string, string, number]>;
  readonly #history: Database.Statement<[string, number], { role: ChatMessage['role']; content: string }>;
  readonly #reset: Database.Statement<[string]>;
  readonly #link: Database.Statement<[string, string, string]>;
  readonly #lookup: Database.Statement<[string], { conversation: string }>;

  /** Opens (or creates) the store at `path`; `:memory:` keeps nothing. `turns`: pairs kept per conversation. */
  constructor(path: string, turns: number) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.exec(`
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
    this.#turns = turns;
    this.#insert = this.#db.prepare('INSERT INTO turns (conversation, role, content) VALUES (?, ?, ?)');
    this.#prune = this.#db.prepare(
      'DELETE FROM turns WHERE conversation = ? AND seq <= (SELECT seq FROM turns WHERE conversation = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
    );
    this.#history = this.#db.prepare(
      'SELECT role, content FROM (SELECT seq, role, content FROM turns WHERE conversation = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
    );
    this.#reset = this.#db.prepare('DELETE FROM turns WHERE conversation = ?');
    this.#link = this.#db.prepare(
      'INSERT OR REPLACE INTO bot_messages (message, conversation) VALUES (? || char(0) || ?, ?)',
    );
    this.#lookup = this.#db.prepare('SELECT conversation FROM bot_messages WHERE message = ?');
  }

  /** The remembered messages of a conversation, oldest first. */
  history(conversation: string): ChatMessage[] {
    if (this.#turns === 0) return [];
    return this.#history.all(conversation, this.#turns * 2);
  }

  /** Remembers one question and its answer, forgetting what falls out of the window. */
  remember(conversation: string, question: string, answer: string): void {
    this.#db.transaction(() => {
      this.#insert.run(conversation, 'user', question);
      this.#insert.run(conversation, 'assistant', answer);
      this.#prune.run(conversation, conversation, this.#turns * 2);
    })();
  }

  /** Forgets a conversation. Returns how many messages went. */
  reset(conversation: string): number {
    return this.#reset.run(conversation).changes;
  }

  /** Records that the bot's message `messageId` in chat `chatKey` answers within `conversation`. */
  link(chatKey: string, messageId: string, conversation: string): void {
    this.#link.run(chatKey, messageId, conversation);
  }

  /** The conversation a bot message belongs to, if known. */
  conversationOf(chatKey: string, messageId: string): string | undefined {
    return this.#lookup.get(`${chatKey}\u0000${messageId}`)?.conversation;
  }

  /** Messages stored, across all conversations. */
  size(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM turns').get() as { n: number }).n;
  }

  close(): void {
    this.#db.close();
  }
}
