/** The `plugins.ask` config section. */
import { httpUrl, uniqueNames } from 'chorus-bot';
import { z } from 'zod';

const common = {
  /** Labels the answer when several models answer side by side. */
  name: z.string().regex(/^[\w.-]{1,32}$/, 'letters, digits, _ . - (at most 32)'),
  model: z.string().min(1),
  apiKey: z.string().optional(),
  /** A system prompt put before the conversation. */
  system: z.string().optional(),
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().positive().optional(),
  /** Questions this backend answers at once, shared by all users. */
  concurrency: z.number().int().positive().default(5),
  proxy: httpUrl.optional(),
  /** Let redirects lead to private addresses other than the backend's own origin. */
  allowPrivateNetwork: z.boolean().default(false),
  headers: z.record(z.string(), z.string()).default({}),
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /** From sending the question to the first piece of the answer. */
  firstTokenTimeoutMs: z.number().int().positive().default(60_000),
  /** Longest gap between two pieces. */
  idleTimeoutMs: z.number().int().positive().default(30_000),
  /** The whole answer. */
  totalTimeoutMs: z.number().int().positive().default(300_000),
  enabled: z.boolean().default(true),
};

/** One chat backend. */
export const askBackendConfig = z.discriminatedUnion('type', [
  z.strictObject({
    ...common,
    type: z.literal('openai'),
    baseUrl: httpUrl.default('https://api.openai.com/v1'),
  }),
  z.strictObject({
    ...common,
    type: z.literal('ollama'),
    baseUrl: httpUrl.default('http://127.0.0.1:11434'),
  }),
  z.strictObject({
    ...common,
    type: z.literal('demo'),
    model: z.string().default('chorus-demo'),
    /** How fast the demo answer streams. */
    tokensPerSecond: z.number().positive().default(30),
  }),
]);

/** A validated chat backend. */
export type AskBackendConfig = z.output<typeof askBackendConfig>;

/** The `plugins.ask` section. */
export const askConfig = z.strictObject({
  backends: z.array(askBackendConfig).min(1, 'at least one backend').superRefine(uniqueNames),
  /** Send every question to every backend (as `/ask@all` does). */
  fanout: z.boolean().default(false),
  /** What starts a question besides `/ask`. */
  triggers: z
    .strictObject({
      mention: z.boolean().default(true),
      replyToBot: z.boolean().default(true),
      privateChat: z.boolean().default(true),
    })
    .default({ mention: true, replyToBot: true, privateChat: true }),
  memory: z
    .strictObject({
      /** Question-and-answer pairs remembered per conversation. */
      turns: z.number().int().nonnegative().default(20),
      /**
       * A SQLite file of the memory's own; `:memory:` keeps nothing across restarts. Unset (the
       * default): conversations are kept in the bot's state store (`state.path`).
       */
      path: z.string().min(1).optional(),
      /** Characters of history sent with a question; older turns are left out. */
      maxChars: z.number().int().nonnegative().default(40_000),
      /** Days a conversation is kept after its last turn (and a reply to the bot still finds it). */
      keepDays: z.number().positive().default(30),
    })
    .default({ turns: 20, maxChars: 40_000, keepDays: 30 }),
  /** Characters of one model's answer; the rest is not read, and the answer says it was cut. */
  maxAnswerChars: z.number().int().positive().default(20_000),
  /**
   * Optional: at least this many ms between two edits of a growing answer, a number or one per
   * kind of chat. By default edits follow the adapter's rate budget (the outbox coalesces them).
   */
  editIntervalMs: z
    .union([
      z.number().int().nonnegative(),
      z.strictObject({
        private: z.number().int().nonnegative().optional(),
        group: z.number().int().nonnegative().optional(),
      }),
    ])
    .optional(),
  /** Show the growing answer as a draft where the platform has drafts (Telegram private chats). */
  drafts: z.boolean().default(true),
  /** Questions one user may have answered at once; more wait their turn. */
  maxPerUser: z.number().int().positive().default(1),
  /** Questions one user may have waiting; more are refused. */
  maxQueuedPerUser: z.number().int().nonnegative().default(3),
});

/** A validated `plugins.ask` section. */
export type AskConfig = z.output<typeof askConfig>;
