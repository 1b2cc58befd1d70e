/**
 * The gateway side of the Discord adapter: each shard this process runs is a discord.js Client of
 * its own (`shards: [id]`), so shards come and go one at a time as their leases do (`shards.ts`);
 * every IDENTIFY waits its turn in the store, across processes. Each Client hands its messages
 * and interactions to the host once (a replay after RESUME is recognised in the store), and the
 * adapter counts as connected while none of its shards is reconnecting. discord.js keeps the
 * gateway itself (heartbeats, op 7, RESUME).
 */
import {
  Client,
  type ClientOptions,
  Events,
  GatewayCloseCodes,
  GatewayIntentBits,
  type Interaction,
  Partials,
  type REST,
  type RESTGetAPIGatewayBotResult,
  Routes,
} from 'discord.js';
import type { AdapterHost } from '../../src/adapter.ts';
import type { Clock } from '../../src/clock.ts';
import { AdapterError } from '../../src/errors.ts';
import type { BotIdentity } from '../../src/message.ts';
import { normalizeMessage } from './normalize.ts';
import { callDiscord } from './request.ts';
import { botIdOfToken, type ShardChoice, ShardLeases, storeIdentifyThrottler } from './shards.ts';

/** How long an event id is remembered: replays after a RESUME come within minutes. */
export const seenTtlMs = 10 * 60 * 1000;

type IdentifyThrottlerBuilder = NonNullable<NonNullable<ClientOptions['ws']>['buildIdentifyThrottler']>;

/** Options of {@link DiscordGateway}. */
export interface DiscordGatewayOptions {
  /** The adapter's name, on its messages and errors. */
  readonly name: string;
  readonly token: string;
  /** Which shards this process runs, and how many the bot has (`auto`: as Discord advises). */
  readonly shards: ShardChoice;
  readonly shardCount: 'auto' | number;
  /** How long a shard's lease lasts unrenewed. Default: `ShardLeases`'s. */
  readonly shardLeaseMs?: number | undefined;
  readonly clock: Clock;
  /** The adapter's one REST client; each Client gets the same options for its own. */
  readonly rest: REST;
  readonly restOptions: NonNullable<ClientOptions['rest']>;
  /** The host and the bot itself, known once the adapter has started. */
  readonly session: { readonly host: AdapterHost | undefined; readonly self: BotIdentity | undefined };
  /** Whether the allow-lists admit a guild, channel and user. */
  readonly allowed: (guildId: string | null, channelId: string, userId: string) => boolean;
  /** Takes an interaction that was allowed and not seen before (`commands.ts`). */
  readonly onInteraction: (interaction: Interaction) => void;
}

/** The gateway intents Chorus asks for: guilds, their messages and DMs, with message content. */
export const gatewayIntents = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.DirectMessages,
  GatewayIntentBits.MessageContent,
];

/** The discord.js Clients of this process, one per shard it holds the lease of. */
export class DiscordGateway {
  readonly #options: DiscordGatewayOptions;
  readonly #clientOptions: ClientOptions;
  readonly #clients = new Map<number, Client>();
  /** Shards reconnecting now. */
  readonly #away = new Set<number>();
  #leases: ShardLeases | undefined;

  constructor(options: DiscordGatewayOptions) {
    this.#options = options;
    this.#clientOptions = {
      intents: gatewayIntents,
      partials: [Partials.Channel],
      rest: options.restOptions,
      allowedMentions: { parse: [], repliedUser: false },
    };
  }

  /** The guild of a channel any shard has seen; `null` for a DM or a channel none has. */
  guildOf(channelId: string): string | null {
    const channel = [...this.#clients.values()]
      .map((client) => client.channels.cache.get(channelId))
      .find((found) => found !== undefined);
    return channel && 'guildId' in channel ? channel.guildId : null;
  }

  /**
   * Asks Discord how many shards there are and how many may IDENTIFY at once, takes the leases of
   * the shards this process runs, and resolves once they are ready.
   */
  async start(host: AdapterHost): Promise<void> {
    const { name, token, shards, clock } = this.#options;
    const gateway = (await callDiscord(name, 'gateway', () =>
      this.#options.rest.get(Routes.gatewayBot()),
    )) as RESTGetAPIGatewayBotResult;
    const count = this.#options.shardCount === 'auto' ? gateway.shards : this.#options.shardCount;
    const prefix = `shards:${botIdOfToken(token)}:${count}:`;
    const throttler = storeIdentifyThrottler({
      store: host.store,
      prefix,
      maxConcurrency: gateway.session_start_limit.max_concurrency,
      clock,
    });
    if (Array.isArray(shards) && shards.some((id) => id >= count))
      throw new AdapterError(
        name,
        `adapters.${name}.shards: shard ids run from 0 to ${count - 1} (${count} shards); got ${shards.join(', ')}`,
        { remote: false },
      );
    const leases = new ShardLeases({
      store: host.store,
      prefix,
      count,
      choice: shards,
      clock,
      log: host.log,
      ...(this.#options.shardLeaseMs !== undefined && { leaseMs: this.#options.shardLeaseMs }),
      open: (id) => this.#openShard(id, count, () => throttler),
      close: async (id) => {
        const client = this.#clients.get(id);
        this.#clients.delete(id);
        await client?.destroy();
        host.log.info('discord shard closed', { shard: id, shards: count });
      },
    });
    this.#leases = leases;
    await leases.start();
    host.log.info('discord shards', {
      running: leases.held.join(',') || 'none',
      shards: count,
      mode: Array.isArray(shards) ? 'list' : shards,
    });
  }

  /** Gives the leases back and closes every Client. */
  async stop(): Promise<void> {
    await this.#leases?.stop();
    for (const client of this.#clients.values()) await client.destroy();
    this.#clients.clear();
  }

  /** Connects one shard; resolves once it is READY with its guilds, rejects when Discord closes it. */
  async #openShard(
    id: number,
    count: number,
    buildIdentifyThrottler: IdentifyThrottlerBuilder,
  ): Promise<void> {
    const { name, session } = this.#options;
    const client = new Client({
      ...this.#clientOptions,
      shards: [id],
      shardCount: count,
      ws: { buildIdentifyThrottler },
    });
    this.#wire(client, id);
    this.#clients.set(id, client);
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
        callDiscord(name, 'login', () => client.login(this.#options.token)).catch(reject);
      });
    } catch (error) {
      this.#clients.delete(id);
      await client.destroy();
      throw error;
    }
    client.on(Events.ShardDisconnect, (event) => {
      session.host?.log.error(closed(event.code), { shard: id });
      void this.#leases?.giveBack(id);
    });
    session.host?.log.info('discord shard ready', {
      shard: id,
      shards: count,
      guilds: client.guilds.cache.size,
    });
  }

  /** What every shard's Client does with its events. */
  #wire(client: Client, shard: number): void {
    const { name, session, allowed, onInteraction } = this.#options;
    client.on(Events.MessageCreate, async (message) => {
      // The allow-lists are the router's to apply (`admits`).
      const me = session.self;
      if (!me || message.author.id === me.id) return;
      if (!(await this.#firstTime(message.id))) return;
      session.host?.log.debug('discord message', { id: message.id, shard });
      session.host
        ?.receive(normalizeMessage(name, message, me))
        .catch((error: unknown) => session.host?.log.error('handling a message failed', { error }));
    });
    client.on(Events.InteractionCreate, async (interaction) => {
      if (!allowed(interaction.guildId, interaction.channelId ?? '', interaction.user.id)) return;
      if (!(await this.#firstTime(interaction.id))) return;
      session.host?.log.debug('discord interaction', { id: interaction.id, shard });
      onInteraction(interaction);
    });
    client.on(Events.Error, (error) => session.host?.log.error('discord client error', { error }));
    client.on(Events.ShardResume, (shard, replayed) =>
      session.host?.log.info('discord session resumed', { shard, replayed }),
    );
    // The adapter is connected while none of its shards is reconnecting.
    client.on(Events.ShardReconnecting, () => this.#reconnecting(shard, true));
    client.on(Events.ShardResume, () => this.#reconnecting(shard, false));
    client.on(Events.ShardReady, () => this.#reconnecting(shard, false));
  }

  #reconnecting(shard: number, gone: boolean): void {
    const before = this.#away.size;
    if (gone) this.#away.add(shard);
    else this.#away.delete(shard);
    if ((before === 0) !== (this.#away.size === 0))
      this.#options.session.host?.connection?.(this.#away.size === 0);
  }

  /**
   * True the first time an event id is seen: a replay after RESUME is not handled twice. The id is
   * claimed in the adapter's store (set-if-absent, for `seenTtlMs`), which holds across restarts
   * and processes. A store that fails lets the event through: an answer twice beats none. The
   * claim is the bot's own: another bot on the same store sees the same message ids.
   */
  async #firstTime(id: string): Promise<boolean> {
    const { host, self } = this.#options.session;
    if (!host || !self) return false;
    try {
      return (await host.store.lock(`seen:${self.id}:${id}`, seenTtlMs)) !== undefined;
    } catch (error) {
      host.log.warn('could not record a seen event id', { id, error });
      return true;
    }
  }
}
