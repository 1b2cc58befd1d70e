/** The `adapters.telegram` config section. */
import { z } from 'zod';

const id = z.union([z.string(), z.number()]).transform(String);

/** A key that moved to the process's HTTP server: set, it is a config error that says where to. */
const movedToServer = (key: 'host' | 'port') =>
  z
    .unknown()
    .refine(() => false, {
      message: `moved: webhooks mount on the process's one HTTP server; set http.server.${key} at the top level`,
    })
    .optional();

/** The `adapters.telegram` config section. */
export const telegramConfig = z
  .strictObject({
    token: z.string().regex(/^\d+:[\w-]{20,}$/, 'a bot token like 123456789:AAH... (from @BotFather)'),
    /** A self-hosted Bot API server. */
    apiRoot: z.url().default('https://api.telegram.org'),
    mode: z.enum(['polling', 'webhook']).default('polling'),
    webhook: z
      .strictObject({
        /** The public URL Telegram posts to. */
        url: z.url(),
        /** The path on the process's HTTP server (`http.server`) that Telegram's posts reach. */
        path: z
          .string()
          .regex(/^\/[^\s?#*]*$/, 'a path like /telegram')
          .default('/telegram'),
        host: movedToServer('host'),
        port: movedToServer('port'),
        secretToken: z
          .string()
          .regex(/^[\w-]{1,256}$/, '1-256 of A-Z, a-z, 0-9, _ and -')
          .optional(),
      })
      .optional(),
    /** Only these chats (ids) are served, when set. */
    allowedChats: z.array(id).optional(),
    /** Only these users (ids) are served, when set. */
    allowedUsers: z.array(id).optional(),
    rateLimits: z
      .strictObject({
        /** Sends and edits per second in one chat, on average. */
        perChatPerSecond: z.number().positive().default(1),
        /** How many of them may go at once ("short bursts" in Telegram's words), within the average. */
        perChatBurst: z.number().int().positive().default(5),
        perGroupPerMinute: z.number().int().positive().default(20),
        globalPerSecond: z.number().int().positive().default(30),
      })
      .default({ perChatPerSecond: 1, perChatBurst: 5, perGroupPerMinute: 20, globalPerSecond: 30 }),
    /** How often a request refused with 429 is retried inside grammY before the outbox takes over. */
    maxRetries: z.number().int().nonnegative().default(3),
    /** No longer used (handled update ids are kept in the bot's state store); accepted, with a warning. */
    stateDir: z.string().optional(),
  })
  .refine((c) => c.mode !== 'webhook' || c.webhook, {
    message: 'mode webhook needs a webhook: { url, path } section',
    path: ['webhook'],
  });

/** A validated `adapters.telegram` section. */
export type TelegramConfig = z.output<typeof telegramConfig>;

/** Options of {@link createTelegramAdapter}: the config section plus the instance name. */
export type TelegramAdapterOptions = z.input<typeof telegramConfig> & {
  readonly name?: string;
  /** Proxy for the Bot API calls (`http.proxy`); unset: `HTTPS_PROXY` / `HTTP_PROXY` from the environment. */
  readonly proxy?: string | undefined;
};
