/**
 * Conversation memory on a `Store`, so a restart forgets nothing: the last turns of each
 * conversation, and which bot message belongs to which conversation (a reply to the bot continues
 * that thread).
 *
 * One value per conversation, `c:<conversation>`: its messages as a flat list of strings, question
 * and answer in turn, oldest first. One read gives a history and one write saves a turn, with no
 * per-message rows; the SQLite store compresses such values, so five turns take about half their
 * text. A bot message's conversation is `m:<[chat, message]>`, kept for group chats only (in a
 * private chat a reply always continues the chat's own conversation).
 *
 * The store is the bot's (`ctx.store`, `state.path`) unless `memory.path` names a file of the
 * plugin's own. A store that fails never stops an answer: the failure is logged, a turn that could
 * not be saved is reported to the caller, and an own file that cannot be opened at start (corrupt,
 * read-only, a directory) turns memory off with one log line. An own file deleted while the bot
 * runs is noticed and started again.
 */
import { existsSync } from 'node:fs';
import {
  type Clock,
  type Logger,
  MemoryStore,
  openSqliteStore,
  type Store,
  silentLogger,
  sleep,
  systemClock,
} from 'chorus-bot';
import type { ChatMessage } from './backends.ts';

/** Options of {@link ConversationMemory.open}. */
export interface MemoryOptions {
  /** Question-and-answer pairs kept per conversation. */
  readonly turns: number;
  /** Characters of history given back for one question; older messages are left out. */
  readonly maxChars?: number;
  /** How long a conversation, and the link from a bot message to it, outlives its last write. Default 30 days. */
  readonly keepMs?: number;
  /** The store to keep conversations in: the plugin's namespace of the bot's store. */
  readonly store?: Store;
  /** A file of memory's own instead (`:memory:`: in this process only). */
  readonly path?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
}

/** How long one SQLite call on an own file may wait for a lock, blocking the event loop. */
export const busyTimeoutMs = 10;
/** How long a busy own file is retried, with the event loop free, before a write fails. */
export const busyRetryMs = 1500;
/** How long one process may hold a conversation while it saves a turn. */
const saveLockMs = 10_000;
/** Pauses while another process saves a turn of the same conversation: about 1.5 s in all. */
const lockRetryDelaysMs = [20, 50, 100, 200, 400, 800];

const conversationKey = (conversation: string) => `c:${conversation}`;
const messageKey = (chatKey: string, messageId: string) => `m:${JSON.stringify([chatKey, messageId])}`;

/** Every conversation's memory. It may be off: then it remembers nothing, and says so. */
export class ConversationMemory {
  /** The own file, when memory has one. */
  readonly path: string | undefined;
  readonly #turns: number;
  readonly #maxChars: number;
  readonly #keep: { readonly ttlMs: number };
  readonly #clock: Clock;
  readonly #log: Logger;
  #store: Store | undefined;
  /** Saves of each conversation in this process, one after another (a save reads, then writes). */
  readonly #saving = new Map<string, Promise<unknown>>();
  #reopening: Promise<void> | undefined;

  private constructor(options: MemoryOptions, store: Store | undefined) {
    this.path = options.path;
    this.#turns = options.turns;
    this.#maxChars = options.maxChars ?? 40_000;
    this.#keep = { ttlMs: Math.round(options.keepMs ?? 30 * 24 * 60 * 60 * 1000) };
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#store = store;
  }

  /**
   * The memory in `options.path` when it is given, otherwise in `options.store`. Never throws: a
   * file that cannot be used gives memory that is off, and one error line.
   */
  static async open(options: MemoryOptions): Promise<ConversationMemory> {
    const { path } = options;
    if (path === undefined) return new ConversationMemory(options, options.store ?? new MemoryStore());
    if (path === ':memory:') return new ConversationMemory(options, new MemoryStore());
    const store = await openOwnFile(path, options.log ?? silentLogger);
    return new ConversationMemory(options, store);
  }

  /** False when memory is off (its file could not be used at start). */
  get enabled(): boolean {
    return this.#store !== undefined;
  }

  /**
   * The remembered messages of a conversation, oldest first: at most `turns` pairs, and no more
   * than `maxChars` characters in all (the newest kept). Empty when memory fails.
   */
  async history(conversation: string): Promise<ChatMessage[]> {
    if (this.#turns === 0) return [];
    const texts = await this.#attempt('read history', (store) =>
      store.get<string[]>(conversationKey(conversation)),
    ).catch(() => undefined);
    const kept: ChatMessage[] = [];
    let chars = 0;
    const list = texts ?? [];
    for (let index = list.length - 1; index >= 0; index--) {
      const content = list[index]!;
      chars += content.length;
      if (chars > this.#maxChars) break;
      kept.push({ role: index % 2 === 0 ? 'user' : 'assistant', content });
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
    if (!this.#store || this.#turns === 0) return false;
    const previous = this.#saving.get(conversation) ?? Promise.resolve();
    const saving = previous.then(() => this.#save(conversation, question, answer));
    this.#saving.set(conversation, saving);
    try {
      return await saving;
    } finally {
      if (this.#saving.get(conversation) === saving) this.#saving.delete(conversation);
    }
  }

  /** Forgets a conversation. Resolves with how many messages went, or undefined when it failed. */
  async reset(conversation: string): Promise<number | undefined> {
    return this.#attempt('forget a conversation', async (store) => {
      const texts = await store.get<string[]>(conversationKey(conversation));
      await store.delete(conversationKey(conversation));
      return texts?.length ?? 0;
    }).catch(() => undefined);
  }

  /** Records that the bot's message `messageId` in chat `chatKey` answers within `conversation`. */
  async link(chatKey: string, messageId: string, conversation: string): Promise<void> {
    await this.#attempt('link a message', (store) =>
      store.set(messageKey(chatKey, messageId), conversation, this.#keep),
    ).catch(() => {});
  }

  /** The conversation a bot message belongs to, if known. */
  async conversationOf(chatKey: string, messageId: string): Promise<string | undefined> {
    const found = await this.#attempt('look up a message', (store) =>
      store.get<string>(messageKey(chatKey, messageId)),
    ).catch(() => undefined);
    return typeof found === 'string' ? found : undefined;
  }

  /** Closes an own file; the bot's store is the bot's to close. */
  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    if (store && this.path !== undefined) await store.close();
  }

  async #save(conversation: string, question: string, answer: string): Promise<boolean> {
    return this.#attempt('save a turn', async (store) => {
      const lock = await this.#lock(store, conversation);
      try {
        const key = conversationKey(conversation);
        const texts = (await store.get<string[]>(key)) ?? [];
        await store.set(key, [...texts, question, answer].slice(-2 * this.#turns), this.#keep);
        return true;
      } finally {
        await lock.release();
      }
    }).then(
      (saved) => saved ?? false,
      () => false,
    );
  }

  /** Holds the conversation against another process saving a turn of it at the same moment. */
  async #lock(store: Store, conversation: string) {
    for (const delay of [...lockRetryDelaysMs, undefined]) {
      const lock = await store.lock(`lock:${conversation}`, saveLockMs);
      if (lock) return lock;
      if (delay === undefined) break;
      await sleep(this.#clock, delay);
    }
    throw new Error('another process kept the conversation locked');
  }

  /**
   * Runs `work` on the store. Resolves with undefined when memory is off; rejects (after logging)
   * when the work fails.
   */
  async #attempt<T>(what: string, work: (store: Store) => Promise<T>): Promise<T | undefined> {
    await this.#reopenIfDeleted();
    const store = this.#store;
    if (!store) return undefined;
    try {
      return await work(store);
    } catch (error) {
      this.#log.error(`conversation memory: could not ${what}`, {
        ...(this.path !== undefined && { path: this.path }),
        error,
      });
      throw error;
    }
  }

  /** An own file deleted under a running bot would swallow every later write: start a new one. */
  async #reopenIfDeleted(): Promise<void> {
    const { path } = this;
    if (this.#reopening) return this.#reopening;
    if (!this.#store || path === undefined || path === ':memory:' || existsSync(path)) return;
    this.#log.warn('conversation memory: its file was deleted; starting a new one', { path });
    const old = this.#store;
    this.#reopening = (async () => {
      await old.close();
      this.#store = await openOwnFile(path, this.#log);
    })();
    try {
      await this.#reopening;
    } finally {
      this.#reopening = undefined;
    }
  }
}

async function openOwnFile(path: string, log: Logger): Promise<Store | undefined> {
  try {
    return await openSqliteStore(path, { busyTimeoutMs, busyRetryMs });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log.error('conversation memory is off: cannot use its file', { path, reason });
    return undefined;
  }
}
