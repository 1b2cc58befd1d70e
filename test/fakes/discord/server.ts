/**
 * A fake Discord for the real discord.js client, on 127.0.0.1: REST v10 under `/api` and a
 * gateway on the same port. The gateway speaks HELLO, heartbeat ACK, IDENTIFY → READY (with
 * `application`) → GUILD_CREATE for every READY guild, MESSAGE_CREATE honouring the Message
 * Content intent, INTERACTION_CREATE, op 7 RECONNECT and RESUME with replay. It shards as Discord
 * does: IDENTIFY's `shard: [id, count]` picks the guilds with `(guild_id >> 22) % count == id`
 * (their GUILD_CREATE and events), DMs go to shard 0, an invalid shard closes with 4010 and a
 * shard that would hold more than `maxGuildsPerShard` guilds with 4011 (sharding required). REST keeps channels,
 * messages, interactions and application commands, sends `X-RateLimit-*` headers, answers 429s
 * with `Retry-After` (and the body's `retry_after`), takes multipart uploads with `payload_json`,
 * and records every request for checking against the OpenAPI spec.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import busboy from 'busboy';
import { type WebSocket, WebSocketServer } from 'ws';

type Json = Record<string, unknown>;

export interface DiscordRecorded {
  readonly method: string;
  /** Path after `/api/v10`, query string removed. */
  readonly path: string;
  readonly query: string;
  readonly body: unknown;
  readonly files: readonly { name: string; filename: string; size: number }[];
  readonly contentType: string;
  readonly at: number;
}

export interface FakeDiscordUser {
  id: string;
  username: string;
  global_name: string | null;
  bot?: boolean;
}

export interface FakeChannel {
  id: string;
  type: number; // 0 text, 1 DM, 11 public thread
  guild_id?: string;
  parent_id?: string;
  name?: string;
  recipients?: FakeDiscordUser[];
}

export interface StoredDiscordMessage {
  id: string;
  channel_id: string;
  author: FakeDiscordUser;
  content: string;
  attachments: { id: string; filename: string; size: number }[];
  components: unknown[];
  allowed_mentions?: unknown;
  message_reference?: { message_id: string };
  interaction_token?: string;
  edits: number;
}

/** A guild of the fake, with one text channel. */
export interface FakeGuild {
  readonly id: string;
  readonly name: string;
  readonly general: FakeChannel;
}

/** The shard that gets a guild's events: `(guild_id >> 22) % count`, Discord's formula. */
export const shardOf = (guildId: string, count: number): number =>
  Number((BigInt(guildId) >> 22n) % BigInt(count));

interface GatewaySession {
  readonly id: string;
  seq: number;
  readonly log: Json[];
  readonly intents: number;
  readonly shard: readonly [number, number];
  socket: WebSocket | undefined;
}

const intents = { guilds: 1, guildMessages: 1 << 9, directMessages: 1 << 12, messageContent: 1 << 15 };
let nextSnowflake = 1_300_000_000_000_000_000n;
const snowflake = () => String(nextSnowflake++);

class RestError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class FakeDiscord {
  readonly token = 'MTAwMDAwMDAwMDAwMDAwMDA5MDA.FakeDc.chorus-fake-discord-token-abcdefgh';
  readonly application = { id: '900000000000000900', flags: 0 };
  readonly bot: FakeDiscordUser = {
    id: '900000000000000900',
    username: 'chorus',
    global_name: 'Chorus',
    bot: true,
  };
  readonly guild: FakeGuild;
  readonly general: FakeChannel = {
    id: '100000000000000101',
    type: 0,
    guild_id: '100000000000000100',
    name: 'general',
  };
  readonly thread: FakeChannel = {
    id: '100000000000000102',
    type: 11,
    guild_id: '100000000000000100',
    parent_id: this.general.id,
    name: 'a thread',
  };
  /** Every guild the bot is in: `guild` first, then those of `addGuild`. */
  readonly guilds: FakeGuild[] = [];
  readonly requests: DiscordRecorded[] = [];
  readonly messages = new Map<string, StoredDiscordMessage[]>();
  readonly channels = new Map<string, FakeChannel>([
    [this.general.id, this.general],
    [this.thread.id, this.thread],
  ]);
  readonly interactions = new Map<
    string,
    { token: string; acked: boolean; createdAt: number; channelId: string; original?: string }
  >();
  commands: { global: Json[]; guild: Map<string, Json[]> } = { global: [], guild: new Map() };
  /** 429s answered. */
  readonly refused: DiscordRecorded[] = [];
  identifies = 0;
  resumes = 0;
  heartbeats = 0;
  /** The intents of the last IDENTIFY. */
  intents = 0;
  /** The `shard` of every accepted IDENTIFY, in order (`[0, 1]` when it carried none). */
  readonly identified: (readonly [number, number])[] = [];
  /** The close codes the gateway sent, in order. */
  readonly closeCodes: number[] = [];
  /** Discord's is 41,250 ms; tests that want to see heartbeats shorten it. */
  readonly heartbeatIntervalMs: number;
  /** What GET /gateway/bot recommends. */
  recommendedShards: number;
  /** `session_start_limit.max_concurrency` of GET /gateway/bot. */
  readonly maxConcurrency: number;
  /** More guilds than this on one shard closes its IDENTIFY with 4011 (Discord's is 2,500). */
  readonly maxGuildsPerShard: number;

  constructor(
    options: {
      heartbeatIntervalMs?: number;
      shards?: number;
      maxConcurrency?: number;
      maxGuildsPerShard?: number;
    } = {},
  ) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250;
    this.recommendedShards = options.shards ?? 1;
    this.maxConcurrency = options.maxConcurrency ?? 1;
    this.maxGuildsPerShard = options.maxGuildsPerShard ?? 2500;
    this.guild = { id: '100000000000000100', name: 'Chorus Friends', general: this.general };
    this.guilds.push(this.guild);
  }
  url = '';

  #server: Server | undefined;
  #wss: WebSocketServer | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Map<string, GatewaySession>();
  #failures: { match: RegExp; retryAfter: number; times: number }[] = [];
  readonly #buckets = new Map<string, number[]>();

  async start(): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#wss = new WebSocketServer({ server: this.#server });
    this.#wss.on('connection', (ws) => this.#onGateway(ws));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const client of this.#wss?.clients ?? []) client.terminate();
    this.#wss?.close();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  /** Makes the next `times` REST calls whose "METHOD path" matches answer 429 with `Retry-After`. */
  rateLimitNext(match: RegExp, retryAfterSeconds: number, times = 1): void {
    this.#failures.push({ match, retryAfter: retryAfterSeconds, times });
  }

  channelMessages(channelId: string): StoredDiscordMessage[] {
    return this.messages.get(channelId) ?? [];
  }

  calls(method: string, path: RegExp): DiscordRecorded[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  /**
   * Adds a guild with a `general` channel. The k-th added guild's id is `(2^40 + k) << 22`, so it
   * lands on shard `(2^40 + k) % count`: with two shards, guilds alternate.
   */
  addGuild(name: string): FakeGuild {
    const id = String(((1n << 40n) + BigInt(this.guilds.length - 1)) << 22n);
    const general: FakeChannel = { id: snowflake(), type: 0, guild_id: id, name: 'general' };
    this.channels.set(general.id, general);
    const guild = { id, name, general };
    this.guilds.push(guild);
    return guild;
  }

  /** The shards of the gateway's connected sessions, as `[id, count]`. */
  connectedShards(): (readonly [number, number])[] {
    return [...this.#sessions.values()].filter((s) => s.socket?.readyState === 1).map((s) => s.shard);
  }

  // --- Playing the users ---------------------------------------------------------------------

  /** Opens a DM channel between `user` and the bot. */
  dm(user: FakeDiscordUser): FakeChannel {
    const channel = { id: `20${user.id.slice(2)}`, type: 1, recipients: [user] };
    this.channels.set(channel.id, channel);
    return channel;
  }

  /** A user posts a message. Content is withheld without the Message Content intent, as Discord does. */
  userSays(
    channel: FakeChannel,
    author: FakeDiscordUser,
    content: string,
    extra: {
      mentionsBot?: boolean;
      replyTo?: string;
      attachment?: { filename: string; size: number; contentType: string };
    } = {},
  ): StoredDiscordMessage {
    const stored: StoredDiscordMessage = {
      id: snowflake(),
      channel_id: channel.id,
      author,
      content,
      attachments: [],
      components: [],
      edits: 0,
      ...(extra.replyTo && { message_reference: { message_id: extra.replyTo } }),
    };
    this.#store(stored);
    const mentioned = extra.mentionsBot === true;
    const visible = (session: GatewaySession) =>
      session.intents & intents.messageContent || channel.type === 1 || mentioned ? content : '';
    const referenced = extra.replyTo
      ? this.channelMessages(channel.id).find((m) => m.id === extra.replyTo)
      : undefined;
    this.#dispatch(channel.guild_id, 'MESSAGE_CREATE', (session) => ({
      ...this.#messageJson(stored),
      // The gateway adds the channel's type, which clients need for DM channels they have not cached.
      channel_type: channel.type,
      content: visible(session),
      mentions: mentioned ? [this.#userJson(this.bot)] : [],
      attachments: extra.attachment
        ? [
            {
              id: snowflake(),
              filename: extra.attachment.filename,
              size: extra.attachment.size,
              url: `${this.url}/attachments/${extra.attachment.filename}`,
              proxy_url: `${this.url}/attachments/${extra.attachment.filename}`,
              content_type: extra.attachment.contentType,
              width: 512,
              height: 512,
            },
          ]
        : [],
      type: referenced ? 19 : 0,
      ...(referenced && {
        referenced_message: this.#messageJson(referenced),
        message_reference: { message_id: referenced.id, channel_id: channel.id, guild_id: channel.guild_id },
      }),
      ...(channel.guild_id && { guild_id: channel.guild_id, member: this.#member(author) }),
    }));
    return stored;
  }

  /** A user runs a slash command. Returns the interaction id. */
  userRunsCommand(
    channel: FakeChannel,
    user: FakeDiscordUser,
    name: string,
    options: Record<string, string> = {},
  ): string {
    return this.#interaction(channel, user, 2, {
      data: {
        id: snowflake(),
        name,
        type: 1,
        options: Object.entries(options).map(([key, value]) => ({ name: key, type: 3, value })),
      },
    });
  }

  /** A user presses a button under a bot message. Returns the interaction id. */
  userPresses(channel: FakeChannel, user: FakeDiscordUser, messageId: string, customId: string): string {
    const message = this.channelMessages(channel.id).find((m) => m.id === messageId);
    return this.#interaction(channel, user, 3, {
      data: { custom_id: customId, component_type: 2 },
      ...(message && { message: this.#messageJson(message) }),
    });
  }

  /** Dispatches an INTERACTION_CREATE of `type` and remembers its token for the callback. */
  #interaction(channel: FakeChannel, user: FakeDiscordUser, type: number, fields: Json): string {
    const id = snowflake();
    const token = `itoken-${id}`;
    this.interactions.set(id, { token, acked: false, createdAt: Date.now(), channelId: channel.id });
    this.#dispatch(channel.guild_id, 'INTERACTION_CREATE', () => ({
      id,
      application_id: this.application.id,
      type,
      token,
      version: 1,
      ...fields,
      channel_id: channel.id,
      channel: this.#channelJson(channel),
      locale: 'en-US',
      app_permissions: '2248473465835073',
      entitlements: [],
      authorizing_integration_owners: channel.guild_id ? { '0': channel.guild_id } : {},
      context: channel.guild_id ? 0 : 1,
      ...(channel.guild_id
        ? { guild_id: channel.guild_id, guild_locale: 'en-US', member: this.#member(user) }
        : { user: this.#userJson(user) }),
    }));
    return id;
  }

  /** Tells every connected client (or the one of `shard`) to reconnect (op 7); it should come back with RESUME. */
  askToReconnect(shard?: number): void {
    for (const session of this.#sessions.values())
      if (shard === undefined || session.shard[0] === shard)
        session.socket?.send(JSON.stringify({ op: 7, d: null, s: null, t: null }));
  }

  // --- Gateway ----------------------------------------------------------------------------------

  #onGateway(ws: WebSocket): void {
    ws.send(
      JSON.stringify({ op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs }, s: null, t: null }),
    );
    const close = (code: number, reason: string) => {
      this.closeCodes.push(code);
      ws.close(code, reason);
    };
    ws.on('message', (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: Json };
      switch (payload.op) {
        case 1:
          this.heartbeats++;
          ws.send(JSON.stringify({ op: 11, d: null, s: null, t: null }));
          break;
        case 2: {
          if (payload.d.token !== this.token) return close(4004, 'Authentication failed.');
          const shard = payload.d.shard ?? [0, 1];
          if (
            !Array.isArray(shard) ||
            shard.length !== 2 ||
            !shard.every(Number.isInteger) ||
            shard[1] < 1 ||
            shard[0] < 0 ||
            shard[0] >= shard[1]
          )
            return close(4010, 'Invalid shard.');
          const [shardId, shardCount] = shard as [number, number];
          const guilds = this.guilds.filter((g) => shardOf(g.id, shardCount) === shardId);
          if (guilds.length > this.maxGuildsPerShard) return close(4011, 'Sharding required.');
          this.identifies++;
          this.identified.push([shardId, shardCount]);
          this.intents = Number(payload.d.intents);
          const session: GatewaySession = {
            id: `session-${this.identifies}`,
            seq: 0,
            log: [],
            intents: Number(payload.d.intents),
            shard: [shardId, shardCount],
            socket: ws,
          };
          this.#sessions.set(session.id, session);
          this.#send(session, 'READY', {
            v: 10,
            user: this.#userJson(this.bot),
            guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
            session_id: session.id,
            resume_gateway_url: this.url.replace('http', 'ws'),
            shard: [shardId, shardCount],
            application: this.application,
          });
          for (const guild of guilds) this.#send(session, 'GUILD_CREATE', this.#guildJson(guild));
          break;
        }
        case 6: {
          const session = this.#sessions.get(String(payload.d.session_id));
          if (!session || payload.d.token !== this.token) {
            ws.send(JSON.stringify({ op: 9, d: false, s: null, t: null }));
            return;
          }
          this.resumes++;
          session.socket = ws;
          for (const event of session.log.filter((e) => (e.s as number) > Number(payload.d.seq)))
            ws.send(JSON.stringify(event));
          this.#send(session, 'RESUMED', {});
          break;
        }
      }
    });
    ws.on('close', () => {
      for (const session of this.#sessions.values()) if (session.socket === ws) session.socket = undefined;
    });
  }

  /**
   * Dispatches an event of `guildId` (none: a DM) to every session of its shard, building the
   * payload for each (content depends on a session's intents). A session whose client is away
   * keeps it for the replay of its next RESUME.
   */
  #dispatch(guildId: string | undefined, t: string, d: (session: GatewaySession) => Json): void {
    for (const session of this.#sessions.values()) {
      const [id, count] = session.shard;
      if (guildId === undefined ? id === 0 : shardOf(guildId, count) === id)
        this.#send(session, t, d(session));
    }
  }

  #send(session: GatewaySession, t: string, d: Json): void {
    const event = { op: 0, t, s: ++session.seq, d };
    session.log.push(event);
    if (session.socket?.readyState === 1) session.socket.send(JSON.stringify(event));
  }

  // --- REST -------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (status === 204) return void res.writeHead(204, headers).end();
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (!url.pathname.startsWith('/api/v10/')) return json(404, { message: '404: Not Found', code: 0 });
    // Clients encode '@' in '@original' as %40; Discord reads the decoded path.
    const path = decodeURIComponent(url.pathname.slice('/api/v10'.length));
    const { body, files, contentType } = await this.#readBody(req);
    const recorded: DiscordRecorded = {
      method: req.method ?? 'GET',
      path,
      query: url.search,
      body,
      files,
      contentType,
      at: Date.now(),
    };
    this.requests.push(recorded);
    const webhookCall = path.startsWith('/webhooks/') || path.startsWith('/interactions/');
    if (!webhookCall && req.headers.authorization !== `Bot ${this.token}`)
      return json(401, { message: '401: Unauthorized', code: 0 });

    const route = `${recorded.method} ${path}`;
    const bucket = `${recorded.method} ${path.replace(/\/messages\/\d+$/, '/messages/:id')}`;
    const failure = this.#failures.find((f) => f.times > 0 && f.match.test(route));
    if (failure) {
      failure.times--;
      this.refused.push(recorded);
      return json(
        429,
        { message: 'You are being rate limited.', retry_after: failure.retryAfter, global: false },
        {
          'retry-after': String(failure.retryAfter),
          'x-ratelimit-scope': 'user',
          'x-ratelimit-bucket': 'fake',
          'x-ratelimit-limit': '5',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset-after': String(failure.retryAfter),
        },
      );
    }
    // Five requests per five seconds per route and channel, as Discord's message buckets allow.
    const now = Date.now();
    const stamps = (this.#buckets.get(bucket) ?? []).filter((t) => t > now - 5000);
    if (stamps.length >= 5 && !webhookCall && recorded.method !== 'GET') {
      const retry = (stamps[0]! + 5000 - now) / 1000;
      this.refused.push(recorded);
      return json(
        429,
        { message: 'You are being rate limited.', retry_after: retry, global: false },
        {
          'retry-after': String(Math.ceil(retry)),
          'x-ratelimit-scope': 'user',
          'x-ratelimit-limit': '5',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset-after': retry.toFixed(3),
          'x-ratelimit-bucket': bucket,
        },
      );
    }
    stamps.push(now);
    this.#buckets.set(bucket, stamps);
    const headers = {
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': String(Math.max(0, 5 - stamps.length)),
      'x-ratelimit-reset': String((stamps[0]! + 5000) / 1000),
      'x-ratelimit-reset-after': ((stamps[0]! + 5000 - now) / 1000).toFixed(3),
      'x-ratelimit-bucket': Buffer.from(bucket).toString('hex').slice(0, 16),
    };
    try {
      const [status, result] = this.#route(recorded);
      json(status, result, headers);
    } catch (error) {
      if (!(error instanceof RestError)) throw error;
      json(error.status, { message: error.message, code: error.code }, headers);
    }
  }

  #route(r: DiscordRecorded): [number, unknown] {
    const body = (r.body ?? {}) as Json;
    if (r.method === 'GET' && r.path === '/gateway/bot') {
      return [
        200,
        {
          url: this.url.replace('http', 'ws'),
          shards: this.recommendedShards,
          session_start_limit: {
            total: 1000,
            remaining: 999,
            reset_after: 86_400_000,
            max_concurrency: this.maxConcurrency,
          },
        },
      ];
    }
    if (r.method === 'GET' && r.path === '/users/@me') return [200, this.#userJson(this.bot)];
    if (r.method === 'GET' && r.path === '/applications/@me')
      return [200, { ...this.application, name: this.bot.username, bot: this.#userJson(this.bot) }];
    const m1 = /^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(r.path);
    if (m1) {
      const m = m1;
      const list = m[2] ? (this.commands.guild.get(m[2]) ?? []) : this.commands.global;
      if (r.method === 'GET') return [200, list];
      if (r.method === 'PUT') {
        const created = (r.body as Json[]).map((command) => {
          if (
            !/^[-_\p{L}\p{N}]{1,32}$/u.test(String(command.name)) ||
            String(command.description ?? '').length > 100
          ) {
            throw new RestError(400, 50035, 'Invalid Form Body');
          }
          return {
            id: snowflake(),
            application_id: this.application.id,
            version: snowflake(),
            type: 1,
            ...command,
          };
        });
        if (m[2]) this.commands.guild.set(m[2], created);
        else this.commands.global = created;
        return [200, created];
      }
    }
    const m2 = /^\/channels\/(\d+)\/typing$/.exec(r.path);
    if (m2 && r.method === 'POST') {
      const m = m2;
      this.#channel(m[1]!);
      return [204, null];
    }
    const m3 = /^\/channels\/(\d+)\/messages$/.exec(r.path);
    if (m3 && r.method === 'POST') {
      const m = m3;
      const channel = this.#channel(m[1]!);
      return [200, this.#messageJson(this.#create(channel.id, body, r.files))];
    }
    const m4 = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(r.path);
    if (m4 && r.method === 'PATCH') {
      const m = m4;
      const message = this.channelMessages(m[1]!).find((x) => x.id === m![2]);
      if (!message) throw new RestError(404, 10008, 'Unknown Message');
      if (message.author.id !== this.bot.id)
        throw new RestError(403, 50005, 'Cannot edit a message authored by another user');
      return [200, this.#messageJson(this.#edit(message, body))];
    }
    const m5 = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(r.path);
    if (m5 && r.method === 'POST') {
      const m = m5;
      const interaction = this.interactions.get(m[1]!);
      if (!interaction || interaction.token !== m[2] || Date.now() - interaction.createdAt > 3000) {
        throw new RestError(404, 10062, 'Unknown interaction');
      }
      if (interaction.acked) throw new RestError(400, 40060, 'Interaction has already been acknowledged.');
      interaction.acked = true;
      if (body.type === 5) {
        // "Chorus is thinking...": the original response, edited later through the webhook.
        const original = this.#create(interaction.channelId, { content: '' }, []);
        original.interaction_token = interaction.token;
        interaction.original = original.id;
      }
      return [
        r.query.includes('with_response=true') ? 200 : 204,
        r.query.includes('with_response=true') ? { interaction: { id: m[1], type: 2 } } : null,
      ];
    }
    const m6 = /^\/webhooks\/(\d+)\/([^/]+)(?:\/messages\/(@original|\d+))?$/.exec(r.path);
    if (m6) {
      const m = m6;
      const interaction = [...this.interactions.values()].find((i) => i.token === m![2]);
      if (m[1] !== this.application.id || !interaction || !interaction.acked)
        throw new RestError(404, 10015, 'Unknown Webhook');
      if (r.method === 'POST' && !m[3]) {
        const created = this.#create(interaction.channelId, body, r.files);
        created.interaction_token = interaction.token;
        return [200, this.#messageJson(created)];
      }
      if (r.method === 'DELETE' && m[3]) {
        const id = m[3] === '@original' ? interaction.original : m[3];
        const list = this.channelMessages(interaction.channelId);
        const index = list.findIndex((x) => x.id === id && x.interaction_token === interaction.token);
        if (index < 0) throw new RestError(404, 10008, 'Unknown Message');
        list.splice(index, 1);
        return [204, null];
      }
      if (r.method === 'PATCH' && m[3]) {
        const id = m[3] === '@original' ? interaction.original : m[3];
        const message = this.channelMessages(interaction.channelId).find((x) => x.id === id);
        if (!message || message.interaction_token !== interaction.token)
          throw new RestError(404, 10008, 'Unknown Message');
        return [200, this.#messageJson(this.#edit(message, body, r.files))];
      }
    }
    throw new RestError(404, 0, '404: Not Found');
  }

  #create(channelId: string, body: Json, files: DiscordRecorded['files']): StoredDiscordMessage {
    const content = String(body.content ?? '');
    if (content.length > 2000)
      throw new RestError(400, 50035, 'Invalid Form Body: content: Must be 2000 or fewer in length.');
    if (files.length > 10)
      throw new RestError(400, 50035, 'Invalid Form Body: files: Must be 10 or fewer in length.');
    if (files.some((f) => f.size > 10 * 1024 * 1024))
      throw new RestError(413, 40005, 'Request entity too large');
    const reference = body.message_reference as
      | { message_id?: string; fail_if_not_exists?: boolean }
      | undefined;
    if (
      reference?.message_id &&
      reference.fail_if_not_exists !== false &&
      !this.channelMessages(channelId).some((x) => x.id === reference.message_id)
    ) {
      throw new RestError(400, 50035, 'Invalid Form Body: message_reference: Unknown message');
    }
    const stored: StoredDiscordMessage = {
      id: snowflake(),
      channel_id: channelId,
      author: this.bot,
      content,
      attachments: files.map((f) => ({ id: snowflake(), filename: f.filename, size: f.size })),
      components: (body.components as unknown[]) ?? [],
      edits: 0,
      ...(body.allowed_mentions !== undefined && { allowed_mentions: body.allowed_mentions }),
      ...(reference?.message_id && { message_reference: { message_id: reference.message_id } }),
    };
    return this.#store(stored);
  }

  #edit(
    message: StoredDiscordMessage,
    body: Json,
    files: DiscordRecorded['files'] = [],
  ): StoredDiscordMessage {
    if (body.content !== undefined) {
      const content = String(body.content ?? '');
      if (content.length > 2000)
        throw new RestError(400, 50035, 'Invalid Form Body: content: Must be 2000 or fewer in length.');
      message.content = content;
    }
    if (body.components !== undefined) message.components = body.components as unknown[];
    if (body.allowed_mentions !== undefined) message.allowed_mentions = body.allowed_mentions;
    if (files.length)
      message.attachments.push(
        ...files.map((f) => ({ id: snowflake(), filename: f.filename, size: f.size })),
      );
    message.edits++;
    return message;
  }

  #store(message: StoredDiscordMessage): StoredDiscordMessage {
    const list = this.messages.get(message.channel_id) ?? [];
    list.push(message);
    this.messages.set(message.channel_id, list);
    return message;
  }

  #channel(id: string): FakeChannel {
    const channel = this.channels.get(id);
    if (!channel) throw new RestError(404, 10003, 'Unknown Channel');
    return channel;
  }

  async #readBody(
    req: IncomingMessage,
  ): Promise<{ body: unknown; files: DiscordRecorded['files']; contentType: string }> {
    const contentType = req.headers['content-type'] ?? '';
    if (contentType.startsWith('multipart/form-data')) {
      let body: unknown;
      const files: { name: string; filename: string; size: number }[] = [];
      await new Promise<void>((resolve, reject) => {
        const parser = busboy({ headers: req.headers, limits: { fileSize: 30 * 1024 * 1024 } });
        parser.on('field', (name, value) => {
          if (name === 'payload_json') body = JSON.parse(value);
        });
        parser.on('file', (name, stream, info) => {
          let size = 0;
          stream.on('data', (chunk: Buffer) => {
            size += chunk.length;
          });
          stream.on('end', () => files.push({ name, filename: info.filename ?? name, size }));
        });
        parser.on('close', () => resolve());
        parser.on('error', reject);
        req.pipe(parser);
      });
      return { body, files, contentType: 'multipart/form-data' };
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return {
      body: text ? (JSON.parse(text) as unknown) : undefined,
      files: [],
      contentType: contentType.split(';')[0] ?? '',
    };
  }

  // --- Shapes -----------------------------------------------------------------------------------

  #userJson(user: FakeDiscordUser): Json {
    return {
      id: user.id,
      username: user.username,
      global_name: user.global_name,
      discriminator: '0',
      avatar: null,
      ...(user.bot && { bot: true }),
    };
  }

  #member(user: FakeDiscordUser): Json {
    return {
      user: this.#userJson(user),
      roles: [],
      joined_at: '2026-01-01T00:00:00.000Z',
      deaf: false,
      mute: false,
      flags: 0,
      permissions: '2248473465835073',
    };
  }

  #channelJson(channel: FakeChannel): Json {
    return {
      id: channel.id,
      type: channel.type,
      ...(channel.guild_id && { guild_id: channel.guild_id }),
      ...(channel.name && { name: channel.name }),
      ...(channel.parent_id && { parent_id: channel.parent_id }),
      ...(channel.type === 11 && {
        thread_metadata: {
          archived: false,
          auto_archive_duration: 1440,
          archive_timestamp: '2026-01-01T00:00:00.000Z',
          locked: false,
        },
        owner_id: this.bot.id,
      }),
      ...(channel.recipients && { recipients: channel.recipients.map((u) => this.#userJson(u)) }),
    };
  }

  #guildJson(guild: FakeGuild): Json {
    const first = guild.id === this.guild.id;
    return {
      id: guild.id,
      name: guild.name,
      icon: null,
      owner_id: '1',
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      features: [],
      mfa_level: 0,
      premium_tier: 0,
      preferred_locale: 'en-US',
      nsfw_level: 0,
      roles: [
        {
          id: guild.id,
          name: '@everyone',
          permissions: '2248473465835073',
          position: 0,
          color: 0,
          hoist: false,
          managed: false,
          mentionable: false,
          flags: 0,
        },
      ],
      emojis: [],
      stickers: [],
      joined_at: '2026-01-01T00:00:00.000Z',
      large: false,
      unavailable: false,
      member_count: 3,
      members: [this.#member(this.bot)],
      channels: [this.#channelJson(guild.general)],
      threads: first ? [this.#channelJson(this.thread)] : [],
      voice_states: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  #messageJson(m: StoredDiscordMessage): Json {
    const channel = this.channels.get(m.channel_id);
    return {
      id: m.id,
      channel_id: m.channel_id,
      ...(channel?.guild_id && { guild_id: channel.guild_id }),
      author: this.#userJson(m.author),
      content: m.content,
      timestamp: new Date().toISOString(),
      edited_timestamp: m.edits ? new Date().toISOString() : null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: m.attachments.map((a) => ({
        ...a,
        url: `${this.url}/attachments/${a.filename}`,
        proxy_url: `${this.url}/attachments/${a.filename}`,
      })),
      embeds: [],
      pinned: false,
      type: 0,
      flags: 0,
      components: m.components,
      ...(m.message_reference && {
        message_reference: { message_id: m.message_reference.message_id, channel_id: m.channel_id },
      }),
    };
  }
}
