/**
 * The Discord adapter, on discord.js. Slash commands (registered from the plugins' commands, only
 * when they changed) are deferred at once and answered with the deferred reply and follow-ups;
 * text commands with a prefix, mentions, replies to the bot, DMs and threads arrive as messages
 * (the Message Content intent must be on). discord.js keeps the gateway (heartbeats, op 7, RESUME)
 * and @discordjs/rest the route buckets and 429s; this module maps, and never lets a message ping
 * anyone: every send and edit carries `allowed_mentions` with nothing allowed.
 *
 * Sharding: each shard this process runs is a discord.js Client of its own (`shards: [id]`), so
 * shards come and go one at a time as their leases do (see `shards.ts`); all of them share one
 * REST client, and every IDENTIFY waits its turn in the store, across processes.
 */
import {
  type APIApplication,
  type APIUser,
  Client,
  type ClientOptions,
  Events,
  GatewayCloseCodes,
  GatewayIntentBits,
  Partials,
  REST,
  RESTEvents,
  type RESTGetAPIGatewayBotResult,
  Routes,
} from 'discord.js';
import { fetch } from 'undici';
import { z } from 'zod';
import { type Adapter, type AdapterHost, defineAdapter } from '../../src/adapter.ts';
import { type Clock, systemClock } from '../../src/clock.ts';
import type { CommandSpec } from '../../src/commands.ts';
import { AdapterError, RateLimitError } from '../../src/errors.ts';
import { readBytes } from '../../src/http.ts';
import type {
  BotIdentity,
  ChatAddress,
  OutgoingImage,
  OutgoingMessage,
  SentMessage,
} from '../../src/message.ts';
import { Interactions } from './interactions.ts';
import {
  applicationCommand,
  channelOf,
  components,
  normalizeCommand,
  normalizeMessage,
  normalizePress,
  readHandle,
  sameCommands,
} from './normalize.ts';
import { createDiscordRequest } from './request.ts';
import { botIdOfToken, parseShardChoice, ShardLeases, storeIdentifyThrottler } from './shards.ts';

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
};

const fileLimit = 10 * 1024 * 1024;
const noPings = { parse: [], replied_user: false };
/** How long an event id is remembered: replays after a RESUME come within minutes. */
export const seenTtlMs = 10 * 60 * 1000;

/** Creates a Discord adapter. */
export function createDiscordAdapter(options: DiscordAdapterOptions): Adapter {
  const config = discordConfig.parse(
    Object.fromEntries(
      Object.entries(options).filter(([key]) => !['name', 'clock', 'shardLeaseMs'].includes(key)),
    ),
  );
  const name = options.name ?? 'discord';
  const clock = options.clock ?? systemClock;
  // Every 429 Discord answers, the ones @discordjs/rest waits out and retries on its own too.
  const request = createDiscordRequest((status) => {
    if (status === 429) host?.rateLimited?.();
  });
  const restOptions = {
    ...(config.api && { api: config.api }),
    makeRequest: request.makeRequest as never,
  };
  /** Every REST call goes through this one client, whichever shard the event came from. */
  const rest = new REST(restOptions).setToken(config.token);
  const clientOptions: ClientOptions = {
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.DirectMessages,
      GatewayIntentBits.MessageContent,
    ],
    partials: [Partials.Channel],
    rest: restOptions,
    allowedMentions: { parse: [], repliedUser: false },
  };
  /** The gateway connections of this process: one Client per shard it runs. */
  const clients = new Map<number, Client>();
  let leases: ShardLeases | undefined;
  let applicationId = '';
  let host: AdapterHost | undefined;
  let self: BotIdentity | undefined;
  // After an interaction's token expires, replies go to the channel.
  const interactions = new Interactions();
  /**
   * True the first time an event id is seen: a replay after RESUME is not handled twice. The id is
   * claimed in the adapter's store (set-if-absent, for `seenTtlMs`), which holds across restarts
   * and processes. A store that fails lets the event through: an answer twice beats none. The
   * claim is the bot's own: another bot on the same store sees the same message ids.
   */
  const firstTime = async (id: string) => {
    if (!host || !self) return false;
    try {
      return (await host.store.lock(`seen:${self.id}:${id}`, seenTtlMs)) !== undefined;
    } catch (error) {
      host.log.warn('could not record a seen event id', { id, error });
      return true;
    }
  };
  const allowed = (guildId: string | null, channelId: string, userId: string) =>
    (!config.allowedGuilds || (guildId !== null && config.allowedGuilds.includes(guildId))) &&
    (!config.allowedChannels || config.allowedChannels.includes(channelId)) &&
    (!config.allowedUsers || config.allowedUsers.includes(userId));

  /** What every shard's Client does with its events. */
  const wire = (client: Client, shard: number) => {
    client.on(Events.MessageCreate, async (message) => {
      // The allow-lists are the router's to apply (`admits`).
      const me = self;
      if (!me || message.author.id === me.id) return;
      if (!(await firstTime(message.id))) return;
      host?.log.debug('discord message', { id: message.id, shard });
      host
        ?.receive(normalizeMessage(name, message, me))
        .catch((error: unknown) => host?.log.error('handling a message failed', { error }));
    });
    client.on(Events.InteractionCreate, async (interaction) => {
      if (!allowed(interaction.guildId, interaction.channelId ?? '', interaction.user.id)) return;
      if (!(await firstTime(interaction.id))) return;
      host?.log.debug('discord interaction', { id: interaction.id, shard });
      if (interaction.isChatInputCommand()) {
        // Defer within Discord's 3 seconds; the job answers through the deferred reply and follow-ups.
        const deferred = rest
          .post(Routes.interactionCallback(interaction.id, interaction.token), {
            body: { type: 5 },
            auth: false,
          })
          .then(() => {});
        interactions.add(interaction.id, interaction.token, deferred);
        deferred
          // Its replies go through the interaction's token, which only this process holds.
          .then(() => host?.receive(normalizeCommand(name, interaction), { local: true }))
          .catch((error: unknown) =>
            host?.log.error('handling a slash command failed', { command: interaction.commandName, error }),
          );
      } else if (interaction.isButton()) {
        const press = normalizePress(name, interaction);
        rest
          .post(Routes.interactionCallback(interaction.id, interaction.token), {
            body: { type: 6 },
            auth: false,
          })
          .catch((error: unknown) => host?.log.debug('acknowledging a button failed', { error }));
        if (press)
          host
            ?.press(press)
            .catch((error: unknown) => host?.log.error('handling a button failed', { error }));
      }
    });
    client.on(Events.Error, (error) => host?.log.error('discord client error', { error }));
    client.on(Events.ShardResume, (shard, replayed) =>
      host?.log.info('discord session resumed', { shard, replayed }),
    );
    // The adapter is connected while none of its shards is reconnecting.
    client.on(Events.ShardReconnecting, () => reconnecting(shard, true));
    client.on(Events.ShardResume, () => reconnecting(shard, false));
    client.on(Events.ShardReady, () => reconnecting(shard, false));
  };
  const away = new Set<number>();
  const reconnecting = (shard: number, gone: boolean) => {
    const before = away.size;
    if (gone) away.add(shard);
    else away.delete(shard);
    if ((before === 0) !== (away.size === 0)) host?.connection?.(away.size === 0);
  };
  rest.on(RESTEvents.RateLimited, (info) => {
    host?.log.warn('discord rate limited', {
      route: info.route,
      retryAfterMs: info.retryAfter,
      global: info.global,
    });
  });

  /** Maps REST failures: 429 (after @discordjs/rest's own retries) and refusals vs network failures. */
  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await request();
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 429) {
        const retry = Number((error as { rawError?: { retry_after?: number } }).rawError?.retry_after ?? 1);
        throw new RateLimitError(retry * 1000, `discord: rate limited (${what})`, { cause: error });
      }
      if (typeof status === 'number') {
        throw new AdapterError(name, `discord refused ${what}: ${(error as Error).message}`, {
          remote: true,
          cause: error,
        });
      }
      throw new AdapterError(name, `discord unreachable (${what})`, { remote: false, cause: error });
    }
  };

  const payload = (message: OutgoingMessage, files: readonly { name: string }[] = []) => ({
    content: message.text ?? '',
    allowed_mentions: noPings,
    ...(message.buttons && { components: components(message.buttons) }),
    ...(files.length && { attachments: files.map((file, id) => ({ id: String(id), filename: file.name })) }),
  });
  const filesOf = (images: readonly OutgoingImage[] = []) =>
    images.flatMap((image, index) =>
      'url' in image
        ? []
        : [
            {
              name: image.filename ?? `image-${index + 1}.${image.mimeType?.split('/')[1] ?? 'png'}`,
              data: Buffer.from(image.data),
              ...(image.mimeType && { contentType: image.mimeType }),
            },
          ],
    );

  /** Connects one shard; resolves once it is READY with its guilds, rejects when Discord closes it. */
  const openShard = async (
    id: number,
    count: number,
    buildIdentifyThrottler: NonNullable<NonNullable<ClientOptions['ws']>['buildIdentifyThrottler']>,
  ) => {
    const client = new Client({
      ...clientOptions,
      shards: [id],
      shardCount: count,
      ws: { buildIdentifyThrottler },
    });
    wire(client, id);
    clients.set(id, client);
    const closed = (code: number) =>
      `discord closed shard ${id} of ${count} (${code} ${GatewayCloseCodes[code] ?? 'close'})${
        code === GatewayCloseCodes.ShardingRequired
          ? ': too many guilds per shard; raise shardCount or set it to auto'
          : ''
      }`;
    try {
      await new Promise<void>((resolve, reject) => {
        client.once(Events.ClientReady, () => resolve());
        client.once(Events.ShardDisconnect, (event) =>
          reject(new AdapterError(name, closed(event.code), { remote: true })),
        );
        client.once(Events.Error, reject);
        call('login', () => client.login(config.token)).catch(reject);
      });
    } catch (error) {
      clients.delete(id);
      await client.destroy();
      throw error;
    }
    client.on(Events.ShardDisconnect, (event) => {
      host?.log.error(closed(event.code), { shard: id });
      void leases?.giveBack(id);
    });
    host?.log.info('discord shard ready', { shard: id, shards: count, guilds: client.guilds.cache.size });
  };

  const adapter: Adapter = {
    name,
    platform: 'discord',
    commandPrefixes: [config.prefix, '/'],

    admits(message) {
      const channelId = channelOf(message.chat);
      const channel = [...clients.values()]
        .map((client) => client.channels.cache.get(channelId))
        .find((found) => found !== undefined);
      const guildId = channel && 'guildId' in channel ? channel.guildId : null;
      return allowed(guildId, channelId, message.sender.id);
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
      host = h;
      const user = (await call('login', () => rest.get(Routes.user()))) as APIUser;
      applicationId = ((await call('login', () => rest.get(Routes.currentApplication()))) as APIApplication)
        .id;
      self = { id: user.id, username: user.username, name: user.global_name ?? user.username };
      const gateway = (await call('gateway', () =>
        rest.get(Routes.gatewayBot()),
      )) as RESTGetAPIGatewayBotResult;
      const count = config.shardCount === 'auto' ? gateway.shards : config.shardCount;
      const prefix = `shards:${botIdOfToken(config.token)}:${count}:`;
      const throttler = storeIdentifyThrottler({
        store: h.store,
        prefix,
        maxConcurrency: gateway.session_start_limit.max_concurrency,
        clock,
      });
      if (Array.isArray(config.shards) && config.shards.some((id) => id >= count))
        throw new AdapterError(
          name,
          `adapters.${name}.shards: shard ids run from 0 to ${count - 1} (${count} shards); got ${config.shards.join(', ')}`,
          { remote: false },
        );
      leases = new ShardLeases({
        store: h.store,
        prefix,
        count,
        choice: config.shards,
        clock,
        log: h.log,
        ...(options.shardLeaseMs !== undefined && { leaseMs: options.shardLeaseMs }),
        open: (id) => openShard(id, count, () => throttler),
        close: async (id) => {
          const client = clients.get(id);
          clients.delete(id);
          await client?.destroy();
          h.log.info('discord shard closed', { shard: id, shards: count });
        },
      });
      await leases.start();
      h.log.info('discord shards', {
        running: leases.held.join(',') || 'none',
        shards: count,
        mode: modeOf(config.shards),
      });
      return self;
    },

    async stop() {
      await leases?.stop();
      for (const client of clients.values()) await client.destroy();
      clients.clear();
      interactions.clear();
      await request.close();
    },

    /** Ten files per message; a picture over 10 MiB becomes a note; long captions are the core's to split. */
    planSend(message) {
      const images = message.images ?? [];
      if (images.length === 0) return [message];
      const fitting = images.filter((image) => 'url' in image || image.data.length <= fileLimit);
      const tooBig = images.length - fitting.length;
      const base = { ...(message.replyTo !== undefined && { replyTo: message.replyTo }) };
      const parts: OutgoingMessage[] = [];
      for (let i = 0; i < fitting.length; i += 10) parts.push({ ...base, images: fitting.slice(i, i + 10) });
      if (parts[0])
        parts[0] = {
          ...parts[0],
          ...(message.text && { text: message.text }),
          ...(message.buttons && { buttons: message.buttons }),
        };
      if (tooBig > 0)
        parts.push({ ...base, text: `(${tooBig} image(s) over Discord's 10 MiB limit were left out)` });
      return parts;
    },

    /** Sends one piece of `planSend` (the outbox plans once). */
    async send(chat, part) {
      const files = filesOf(part.images);
      const urls = (part.images ?? []).filter((image) => 'url' in image).map((image) => image.url);
      const body = payload(
        urls.length ? { ...part, text: [part.text, ...urls].filter(Boolean).join('\n') } : part,
        files,
      );
      const answers = readHandle(part.replyTo);
      // An expired interaction's replies go to its channel as plain messages.
      const pending =
        answers.interaction === undefined ? undefined : interactions.replyingTo(answers.interaction);
      let sent: { id: string };
      if (pending) {
        await pending.deferred;
        // Claimed before the call, so `settled` never removes a reply on its way.
        const followUp = pending.originalUsed;
        pending.originalUsed = true;
        const route = followUp
          ? Routes.webhook(applicationId, pending.token)
          : Routes.webhookMessage(applicationId, pending.token, '@original');
        try {
          sent = (await call('an interaction reply', () =>
            followUp
              ? rest.post(route, { body, files, auth: false })
              : rest.patch(route, { body, files, auth: false }),
          )) as { id: string };
        } catch (error) {
          if (!followUp) pending.originalUsed = false;
          throw error;
        }
        pending.messages.add(sent.id);
      } else {
        const reference =
          answers.message !== undefined
            ? { message_reference: { message_id: answers.message, fail_if_not_exists: false } }
            : {};
        sent = (await call('sendMessage', () =>
          rest.post(Routes.channelMessages(channelOf(chat)), {
            body: { ...body, ...reference },
            files,
          }),
        )) as { id: string };
      }
      return { chat, ids: [sent.id] } satisfies SentMessage;
    },

    async edit(chat: ChatAddress, messageId: string, message: OutgoingMessage) {
      const body = {
        content: message.text ?? '',
        allowed_mentions: noPings,
        ...(message.buttons && { components: components(message.buttons) }),
      };
      const pending = interactions.holding(messageId);
      if (pending) {
        const original = [...pending.messages][0] === messageId;
        await call('an interaction edit', () =>
          rest.patch(
            Routes.webhookMessage(applicationId, pending.token, original ? '@original' : messageId),
            { body, auth: false },
          ),
        );
        return;
      }
      await call('editMessage', () =>
        rest.patch(Routes.channelMessage(channelOf(chat), messageId), { body }),
      );
    },

    async sendTyping(chat) {
      await call('typing', () => rest.post(Routes.channelTyping(channelOf(chat))));
    },

    async fetchImage(image, signal) {
      const url = image.url ?? image.id;
      const response = await fetch(url, signal ? { signal } : {}).catch((error: unknown) => {
        throw new AdapterError(name, 'discord unreachable (attachment download)', {
          remote: false,
          cause: error,
        });
      });
      if (!response.ok)
        throw new AdapterError(name, `discord refused the attachment download: HTTP ${response.status}`, {
          remote: true,
        });
      // Attachments of up to 25 MiB, what a bot may upload itself; more is not read.
      return readBytes(response as unknown as Response, `${name} attachment`, 25 * 1024 * 1024);
    },

    settled(message) {
      // A slash command that got no reply would show "thinking..." for 15 minutes: take it away.
      const { interaction } = readHandle(message.replyHandle);
      const pending = interaction === undefined ? undefined : interactions.replyingTo(interaction);
      if (!pending || pending.originalUsed) return;
      void pending.deferred
        .then(() => {
          if (pending.originalUsed) return;
          pending.originalUsed = true;
          return rest.delete(Routes.webhookMessage(applicationId, pending.token, '@original'), {
            auth: false,
          });
        })
        .catch((error: unknown) => host?.log.debug('removing an unanswered "thinking..." failed', { error }));
    },

    async registerCommands(commands: readonly CommandSpec[]) {
      const wanted = commands.map(applicationCommand);
      const appId = applicationId;
      const routes =
        config.commandGuilds === 'all'
          ? [Routes.applicationCommands(appId)]
          : config.commandGuilds.map((guild) => Routes.applicationGuildCommands(appId, guild));
      for (const route of routes) {
        const existing = (await call('listCommands', () => rest.get(route))) as unknown[];
        if (sameCommands(existing, wanted)) continue;
        await call('registerCommands', () => rest.put(route, { body: wanted }));
        host?.log.info('registered slash commands', { count: wanted.length, route });
      }
    },
  };
  return adapter;
}

const modeOf = (shards: 'auto' | 'all' | readonly number[]) => (Array.isArray(shards) ? 'list' : shards);

/** The `discord` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'discord',
  config: discordConfig,
  create: ({ name, config }) => createDiscordAdapter({ name, ...config }),
});
