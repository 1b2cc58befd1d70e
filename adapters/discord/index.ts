/**
 * The Discord adapter, on discord.js. Slash commands (registered from the plugins' commands, only
 * when they changed) are deferred at once and answered with the deferred reply and follow-ups;
 * text commands with a prefix, mentions, replies to the bot, DMs and threads arrive as messages
 * (the Message Content intent must be on). discord.js keeps the gateway (heartbeats, op 7, RESUME)
 * and @discordjs/rest the route buckets and 429s; this module maps, and never lets a message ping
 * anyone: every send and edit carries `allowed_mentions` with nothing allowed.
 */
import { Client, Events, GatewayIntentBits, Partials, RESTEvents, Routes } from 'discord.js';
import { fetch } from 'undici';
import { z } from 'zod';
import { type Adapter, type AdapterHost, defineAdapter } from '../../src/adapter.ts';
import type { CommandSpec } from '../../src/commands.ts';
import { AdapterError, RateLimitError } from '../../src/errors.ts';
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

const snowflake = z.string().regex(/^\d{17,20}$/, 'a Discord id (17-20 digits)');

/** The `adapters.discord` config section. */
export const discordConfig = z.strictObject({
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
});

/** Options of {@link createDiscordAdapter}: the config section plus the instance name. */
export type DiscordAdapterOptions = z.input<typeof discordConfig> & { readonly name?: string };

const fileLimit = 10 * 1024 * 1024;
const noPings = { parse: [], replied_user: false };
/** How long an event id is remembered: replays after a RESUME come within minutes. */
export const seenTtlMs = 10 * 60 * 1000;

/** Creates a Discord adapter. */
export function createDiscordAdapter(options: DiscordAdapterOptions): Adapter {
  const config = discordConfig.parse(
    Object.fromEntries(Object.entries(options).filter(([key]) => key !== 'name')),
  );
  const name = options.name ?? 'discord';
  const request = createDiscordRequest();
  const client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.DirectMessages,
      GatewayIntentBits.MessageContent,
    ],
    partials: [Partials.Channel],
    rest: {
      ...(config.api && { api: config.api }),
      makeRequest: request.makeRequest as never,
    },
    allowedMentions: { parse: [], repliedUser: false },
  });
  let host: AdapterHost | undefined;
  let self: BotIdentity | undefined;
  // After an interaction's token expires, replies go to the channel.
  const interactions = new Interactions();
  /**
   * True the first time an event id is seen: a replay after RESUME is not handled twice. The id is
   * claimed in the adapter's store (set-if-absent, for `seenTtlMs`), which holds across restarts
   * and processes. A store that fails lets the event through: an answer twice beats none.
   */
  const firstTime = async (id: string) => {
    if (!host) return false;
    try {
      return (await host.store.lock(`seen:${id}`, seenTtlMs)) !== undefined;
    } catch (error) {
      host.log.warn('could not record a seen event id', { id, error });
      return true;
    }
  };
  const allowed = (guildId: string | null, channelId: string, userId: string) =>
    (!config.allowedGuilds || (guildId !== null && config.allowedGuilds.includes(guildId))) &&
    (!config.allowedChannels || config.allowedChannels.includes(channelId)) &&
    (!config.allowedUsers || config.allowedUsers.includes(userId));

  client.on(Events.MessageCreate, async (message) => {
    // The allow-lists are the router's to apply (`admits`).
    const me = self;
    if (!me || message.author.id === me.id) return;
    if (!(await firstTime(message.id))) return;
    host
      ?.receive(normalizeMessage(name, message, me))
      .catch((error: unknown) => host?.log.error('handling a message failed', { error }));
  });
  client.on(Events.InteractionCreate, async (interaction) => {
    if (!allowed(interaction.guildId, interaction.channelId ?? '', interaction.user.id)) return;
    if (!(await firstTime(interaction.id))) return;
    if (interaction.isChatInputCommand()) {
      // Defer within Discord's 3 seconds; the job answers through the deferred reply and follow-ups.
      const deferred = client.rest
        .post(Routes.interactionCallback(interaction.id, interaction.token), {
          body: { type: 5 },
          auth: false,
        })
        .then(() => {});
      interactions.add(interaction.id, interaction.token, deferred);
      deferred
        .then(() => host?.receive(normalizeCommand(name, interaction)))
        .catch((error: unknown) =>
          host?.log.error('handling a slash command failed', { command: interaction.commandName, error }),
        );
    } else if (interaction.isButton()) {
      const press = normalizePress(name, interaction);
      client.rest
        .post(Routes.interactionCallback(interaction.id, interaction.token), {
          body: { type: 6 },
          auth: false,
        })
        .catch((error: unknown) => host?.log.debug('acknowledging a button failed', { error }));
      if (press)
        host?.press(press).catch((error: unknown) => host?.log.error('handling a button failed', { error }));
    }
  });
  // Every 429, the ones @discordjs/rest retries itself too.
  client.rest.on(RESTEvents.Response, (_request, response) => {
    if (response.status === 429) host?.rateLimited();
  });
  client.rest.on(RESTEvents.RateLimited, (info) => {
    host?.log.warn('discord rate limited', {
      route: info.route,
      retryAfterMs: info.retryAfter,
      global: info.global,
    });
  });
  client.on(Events.Error, (error) => host?.log.error('discord client error', { error }));
  client.on(Events.ShardResume, (shard, replayed) =>
    host?.log.info('discord session resumed', { shard, replayed }),
  );

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

  const adapter: Adapter = {
    name,
    platform: 'discord',
    commandPrefixes: [config.prefix, '/'],

    admits(message) {
      const channelId = channelOf(message.chat);
      const channel = client.channels.cache.get(channelId);
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
      const ready = new Promise<void>((resolve, reject) => {
        client.once(Events.ClientReady, () => resolve());
        client.once(Events.Error, reject);
      });
      await call('login', () => client.login(config.token));
      await ready;
      const user = client.user!;
      self = { id: user.id, username: user.username, name: user.globalName ?? user.username };
      return self;
    },

    async stop() {
      await client.destroy();
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
        const route = pending.originalUsed
          ? Routes.webhook(client.application!.id, pending.token)
          : Routes.webhookMessage(client.application!.id, pending.token, '@original');
        sent = (await call('an interaction reply', () =>
          pending.originalUsed
            ? client.rest.post(route, { body, files, auth: false })
            : client.rest.patch(route, { body, files, auth: false }),
        )) as { id: string };
        pending.originalUsed = true;
        pending.messages.add(sent.id);
      } else {
        const reference =
          answers.message !== undefined
            ? { message_reference: { message_id: answers.message, fail_if_not_exists: false } }
            : {};
        sent = (await call('sendMessage', () =>
          client.rest.post(Routes.channelMessages(channelOf(chat)), {
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
          client.rest.patch(
            Routes.webhookMessage(client.application!.id, pending.token, original ? '@original' : messageId),
            { body, auth: false },
          ),
        );
        return;
      }
      await call('editMessage', () =>
        client.rest.patch(Routes.channelMessage(channelOf(chat), messageId), { body }),
      );
    },

    async sendTyping(chat) {
      await call('typing', () => client.rest.post(Routes.channelTyping(channelOf(chat))));
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
      return new Uint8Array(await response.arrayBuffer());
    },

    async registerCommands(commands: readonly CommandSpec[]) {
      const wanted = commands.map(applicationCommand);
      const appId = client.application!.id;
      const routes =
        config.commandGuilds === 'all'
          ? [Routes.applicationCommands(appId)]
          : config.commandGuilds.map((guild) => Routes.applicationGuildCommands(appId, guild));
      for (const route of routes) {
        const existing = (await call('listCommands', () => client.rest.get(route))) as unknown[];
        if (sameCommands(existing, wanted)) continue;
        await call('registerCommands', () => client.rest.put(route, { body: wanted }));
        host?.log.info('registered slash commands', { count: wanted.length, route });
      }
    },
  };
  return adapter;
}

/** The `discord` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'discord',
  config: discordConfig,
  create: ({ name, config }) => createDiscordAdapter({ name, ...config }),
});
