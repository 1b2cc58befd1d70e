/**
 * The Discord adapter, on discord.js. Slash commands (registered from the plugins' commands, only
 * when they changed) are deferred at once and answered with the deferred reply and follow-ups;
 * text commands with a prefix, mentions, replies to the bot, DMs and threads arrive as messages
 * (the Message Content intent must be on). discord.js keeps the gateway (heartbeats, op 7, RESUME)
 * and @discordjs/rest the route buckets and 429s; the adapter maps, and never lets a message ping
 * anyone.
 *
 * This module holds the config and puts the parts together around one REST client, which every
 * shard shares: `gateway.ts` (one discord.js Client per shard this process runs, as its lease in
 * `shards.ts` says), `commands.ts` (slash commands and buttons), `send.ts` (messages out),
 * `normalize.ts` (conversion), `request.ts` (the REST transport and what its failures become).
 */
import { type APIApplication, type APIUser, REST, RESTEvents, Routes } from 'discord.js';
import { fetch } from 'undici';
import { z } from 'zod';
import { type Adapter, type AdapterHost, defineAdapter } from '../../src/adapter.ts';
import { type Clock, systemClock } from '../../src/clock.ts';
import { AdapterError } from '../../src/errors.ts';
import { readBytes } from '../../src/http.ts';
import type { BotIdentity } from '../../src/message.ts';
import { createSlashCommands } from './commands.ts';
import { DiscordGateway } from './gateway.ts';
import { Interactions } from './interactions.ts';
import { channelOf } from './normalize.ts';
import { callDiscord, createDiscordRequest } from './request.ts';
import { createDiscordSender, planDiscordSend } from './send.ts';
import { parseShardChoice } from './shards.ts';

export { seenTtlMs } from './gateway.ts';

const snowflake = z.string().regex(/^\d{17,20}$/, 'a Discord id (17-20 digits)');

const shardIds = z
  .array(z.number().int().min(0))
  .min(1)
  .refine((ids) => new Set(ids).size === ids.length, 'each shard id once');

const shardCountExpected = 'expected auto or a number of shards (1 or more)';

/** The `adapters.discord` config section. */
export const discordConfig = z
  .strictObject({
    token: z
      .string()
      .regex(/^[\w-]{20,}\.[\w-]{4,}\.[\w-]{20,}$/, 'a bot token from the Discord developer portal'),
    /** REST base URL, for REST proxies. Default: Discord's own. */
    api: z.url().optional(),
    /** Prefix of text commands (`!draw`); slash commands always work. */
    prefix: z.string().min(1).max(5).default('!'),
    /** Where slash commands are registered: `all` (global) or a list of guild ids (instant, for development). */
    commandGuilds: z.union([z.literal('all'), z.array(snowflake)]).default('all'),
    allowedGuilds: z.array(snowflake).optional(),
    allowedChannels: z.array(snowflake).optional(),
    allowedUsers: z.array(snowflake).optional(),
    /** Sends and edits per second in one channel, on average. */
    perChannelPerSecond: z.number().positive().default(1),
    /** How many of them may go at once, within the average (Discord's channel bucket: 5 per 5 s). */
    perChannelBurst: z.number().int().positive().default(5),
    /**
     * Which shards this process runs: `all` (default), `auto` (its share of those no other process
     * of the bot runs, taken over when one dies) or a list of shard ids (`0,2` from `${SHARDS}` too).
     */
    shards: z
      .preprocess(
        parseShardChoice,
        z.union([z.literal('auto'), z.literal('all'), shardIds], {
          error: 'expected auto, all, or a list of shard ids such as [0, 1]',
        }),
      )
      .default('all'),
    /** How many shards the bot has in all: `auto` asks Discord (GET /gateway/bot) at start. */
    shardCount: z
      .preprocess(
        (value) => (typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value),
        z.union([z.literal('auto'), z.number().int().positive({ error: shardCountExpected })], {
          error: shardCountExpected,
        }),
      )
      .default('auto'),
  })
  .superRefine((config, ctx) => {
    if (Array.isArray(config.shards) && typeof config.shardCount === 'number') {
      const beyond = config.shards.filter((id) => id >= (config.shardCount as number));
      if (beyond.length)
        ctx.addIssue({
          code: 'custom',
          path: ['shards'],
          message: `shard ids run from 0 to shardCount - 1 (${config.shardCount - 1}); got ${beyond.join(', ')}`,
        });
    }
  });

/** Options of {@link createDiscordAdapter}: the config section plus the instance name. */
export type DiscordAdapterOptions = z.input<typeof discordConfig> & {
  readonly name?: string;
  /** Times the shard leases. Default: the system clock. */
  readonly clock?: Clock;
  /** How long a shard's lease lasts unrenewed: a dead process's shards are taken over after it. Default 10 s. */
  readonly shardLeaseMs?: number;
  /**
   * `http://host:port` for the REST calls and attachment downloads (the bot's `http.proxy`).
   * Unset: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`. The gateway's WebSocket connects directly.
   */
  readonly proxy?: string | undefined;
};

/** Creates a Discord adapter. */
export function createDiscordAdapter(options: DiscordAdapterOptions): Adapter {
  const config = discordConfig.parse(
    Object.fromEntries(
      Object.entries(options).filter(([key]) => !['name', 'proxy', 'clock', 'shardLeaseMs'].includes(key)),
    ),
  );
  const name = options.name ?? 'discord';
  /** What the parts learn at start: the host, the bot itself and its application id. */
  const session: { host: AdapterHost | undefined; self: BotIdentity | undefined; applicationId: string } = {
    host: undefined,
    self: undefined,
    applicationId: '',
  };
  // Every 429 Discord answers, the ones @discordjs/rest waits out and retries on its own too.
  const request = createDiscordRequest({
    proxy: options.proxy,
    onStatus: (status) => {
      if (status === 429) session.host?.rateLimited?.();
    },
  });
  const restOptions = {
    ...(config.api && { api: config.api }),
    makeRequest: request.makeRequest as never,
  };
  /** Every REST call goes through this one client, whichever shard the event came from. */
  const rest = new REST(restOptions).setToken(config.token);
  rest.on(RESTEvents.RateLimited, (info) => {
    session.host?.log.warn('discord rate limited', {
      route: info.route,
      retryAfterMs: info.retryAfter,
      global: info.global,
    });
  });
  // After an interaction's token expires, replies go to the channel.
  const interactions = new Interactions();
  const allowed = (guildId: string | null, channelId: string, userId: string) =>
    (!config.allowedGuilds || (guildId !== null && config.allowedGuilds.includes(guildId))) &&
    (!config.allowedChannels || config.allowedChannels.includes(channelId)) &&
    (!config.allowedUsers || config.allowedUsers.includes(userId));
  const commands = createSlashCommands({
    name,
    rest,
    interactions,
    commandGuilds: config.commandGuilds,
    session,
  });
  const sender = createDiscordSender({ name, rest, interactions, session });
  const gateway = new DiscordGateway({
    name,
    token: config.token,
    shards: config.shards,
    shardCount: config.shardCount,
    shardLeaseMs: options.shardLeaseMs,
    clock: options.clock ?? systemClock,
    rest,
    restOptions,
    session,
    allowed,
    onInteraction: (interaction) => commands.answer(interaction),
  });

  const adapter: Adapter = {
    name,
    platform: 'discord',
    commandPrefixes: [config.prefix, '/'],

    admits(message) {
      const channelId = channelOf(message.chat);
      return allowed(gateway.guildOf(channelId), channelId, message.sender.id);
    },
    limits: {
      rate: {
        perChat: {
          count: config.perChannelBurst,
          periodMs: Math.ceil((config.perChannelBurst * 1000) / config.perChannelPerSecond),
        },
      },
      maxTextLength: 2000,
      maxCaptionLength: 2000,
    },

    async start(h) {
      session.host = h;
      const user = (await callDiscord(name, 'login', () => rest.get(Routes.user()))) as APIUser;
      session.applicationId = (
        (await callDiscord(name, 'login', () => rest.get(Routes.currentApplication()))) as APIApplication
      ).id;
      const self: BotIdentity = {
        id: user.id,
        username: user.username,
        name: user.global_name ?? user.username,
      };
      session.self = self;
      await gateway.start(h);
      return self;
    },

    async stop() {
      await gateway.stop();
      interactions.clear();
      await request.close();
    },

    planSend: planDiscordSend,
    send: sender.send,
    edit: sender.edit,
    sendTyping: sender.sendTyping,

    async fetchImage(image, signal) {
      const url = image.url ?? image.id;
      const response = await fetch(url, { dispatcher: request.dispatcher, ...(signal && { signal }) }).catch(
        (error: unknown) => {
          throw new AdapterError(name, 'discord unreachable (attachment download)', {
            remote: false,
            cause: error,
          });
        },
      );
      if (!response.ok)
        throw new AdapterError(name, `discord refused the attachment download: HTTP ${response.status}`, {
          remote: true,
        });
      // Attachments of up to 25 MiB, what a bot may upload itself; more is not read.
      return readBytes(response as unknown as Response, `${name} attachment`, 25 * 1024 * 1024);
    },

    settled: (message) => commands.settled(message),
    registerCommands: (specs) => commands.register(specs),
  };
  return adapter;
}

/** The `discord` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'discord',
  config: discordConfig,
  create: ({ name, config, proxy }) => createDiscordAdapter({ name, proxy, ...config }),
});
