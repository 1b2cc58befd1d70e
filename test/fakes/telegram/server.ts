/**
 * A fake Telegram Bot API server on 127.0.0.1 for the real grammY client. It keeps chats,
 * messages, files and an update queue, and behaves like the real service where the adapter
 * depends on it: long polling with offsets and 409 conflicts, `retry_after` 429s when a chat's or
 * the bot's budget is exceeded (1 message a second per chat, 20 a minute per group, 30 a second
 * overall), "message is not modified", HTML entity errors, album sizes, file downloads, webhooks.
 * Every request is recorded for checking against the official spec.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import busboy from 'busboy';

type Json = Record<string, unknown>;

export interface Recorded {
  readonly method: string;
  readonly params: Json;
  readonly at: number;
}

export interface FakeUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
}

export interface FakeChat {
  id: number;
  type: 'private' | 'group' | 'supergroup' | 'channel';
  title?: string;
  first_name?: string;
  is_forum?: true;
}

/** A message the fake holds: sent by the bot or pushed as a user's. */
export interface StoredMessage {
  message_id: number;
  chat: FakeChat;
  from?: FakeUser;
  text?: string;
  caption?: string;
  parse_mode?: string | undefined;
  photo?: { file_id: string; bytes: number }[];
  document?: { file_id: string; bytes: number };
  media_group_id?: string;
  message_thread_id?: number;
  reply_to_message_id?: number;
  reply_markup?: unknown;
  edits: number;
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly parameters?: Json,
  ) {
    super(description);
  }
}

export interface FakeTelegramOptions {
  readonly token?: string;
  /**
   * Budgets enforced with 429s. Telegram's published limits by default: about one message per
   * second in a chat, where "short bursts" may go over it (`perChatBurst` messages in
   * `perChatBurst × perChatMs`; 1 refuses any burst), 20 a minute in a group, 30 a second overall.
   */
  readonly limits?: {
    perChatMs?: number;
    perChatBurst?: number;
    perGroupPerMinute?: number;
    globalPerSecond?: number;
  };
  /** The first update id (Telegram's are large, and start at random after a week without updates). */
  readonly firstUpdateId?: number;
  /** Told of every API call as it arrives (the benchmark times replies with it). */
  readonly onRequest?: (request: Recorded) => void;
}

const allowedTags = new Set([
  'b',
  'strong',
  'i',
  'em',
  'u',
  'ins',
  's',
  'strike',
  'del',
  'a',
  'code',
  'pre',
  'span',
  'tg-spoiler',
  'blockquote',
  'tg-emoji',
]);

/** Checks Telegram HTML like the real parser: known tags, balanced, entities escaped. Returns the visible text. */
export function parseTelegramHtml(html: string): string {
  const stack: string[] = [];
  for (const match of html.matchAll(/<(\/?)([a-z-]+)([^>]*)>|&(#?\w+);|[<>]/g)) {
    if (match[0] === '<' || match[0] === '>')
      throw new ApiError(
        400,
        `Bad Request: can't parse entities: unexpected ${match[0]} at byte offset ${match.index}`,
      );
    if (match[4] !== undefined) {
      if (!['lt', 'gt', 'amp', 'quot'].includes(match[4]) && !match[4].startsWith('#')) {
        throw new ApiError(400, `Bad Request: can't parse entities: unsupported entity &${match[4]};`);
      }
      continue;
    }
    const [, closing, tag] = match;
    if (!allowedTags.has(tag!))
      throw new ApiError(400, `Bad Request: can't parse entities: unsupported start tag "${tag}"`);
    if (closing) {
      if (stack.pop() !== tag)
        throw new ApiError(
          400,
          `Bad Request: can't parse entities: can't find end tag corresponding to start tag "${tag}"`,
        );
    } else stack.push(tag!);
  }
  if (stack.length)
    throw new ApiError(
      400,
      `Bad Request: can't parse entities: can't find end tag corresponding to start tag "${stack.at(-1)}"`,
    );
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

async function readParams(
  req: IncomingMessage,
  url: URL,
): Promise<{ params: Json; files: Map<string, Buffer> }> {
  const files = new Map<string, Buffer>();
  const params: Json = Object.fromEntries(url.searchParams);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    await new Promise<void>((resolve, reject) => {
      const parser = busboy({ headers: req.headers, limits: { fileSize: 60 * 1024 * 1024 } });
      parser.on('field', (name, value) => {
        params[name] = value;
      });
      parser.on('file', (name, stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => files.set(name, Buffer.concat(chunks)));
      });
      parser.on('close', () => resolve());
      parser.on('error', reject);
      req.pipe(parser);
    });
    // Multipart carries objects as JSON text, as the Bot API documents.
    for (const [key, value] of Object.entries(params)) {
      if (typeof value === 'string' && /^[[{]/.test(value)) {
        try {
          params[key] = JSON.parse(value);
        } catch {
          // a plain string that happens to start with a bracket
        }
      }
    }
    return { params, files };
  }
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  if (type.startsWith('application/json') && body) Object.assign(params, JSON.parse(body) as Json);
  else if (type.startsWith('application/x-www-form-urlencoded'))
    Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
  return { params, files };
}

export class FakeTelegram {
  readonly token: string;
  readonly bot: FakeUser = { id: 7_000_001, is_bot: true, first_name: 'Chorus', username: 'chorus_bot' };
  readonly requests: Recorded[] = [];
  readonly chats = new Map<number, FakeChat>();
  readonly messages = new Map<number, StoredMessage[]>();
  readonly drafts: { chat_id: number; draft_id: number; text: string }[] = [];
  readonly files = new Map<string, { path: string; bytes: Buffer }>();
  readonly callbacks = new Map<string, { answered: boolean }>();
  commands: unknown[] = [];
  /** 429s answered, by method. */
  readonly refused: Recorded[] = [];
  webhook: { url: string; secret?: string } | undefined;
  url = '';
  readonly #history = new Map<number, Json>();

  readonly #limits: Required<NonNullable<FakeTelegramOptions['limits']>>;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #queue: Json[] = [];
  #nextUpdateId: number;
  readonly #arrivals = new WeakMap<ServerResponse, number>();
  #held: { promise: Promise<void>; resolve: () => void } | undefined;
  readonly #delays = new Map<string, number>();
  #pollWaiter: { wake: () => void; res: ServerResponse } | undefined;
  readonly #chatStamps = new Map<number, number[]>();
  #globalStamps: number[] = [];
  #failures: { method: string; code: number; description: string; retryAfter?: number; times: number }[] = [];
  #nextFileId = 1;
  readonly #onRequest: ((request: Recorded) => void) | undefined;

  constructor(options: FakeTelegramOptions = {}) {
    this.token = options.token ?? '123456789:AAFakeTokenForChorusTests_abcdefghijk';
    this.#limits = {
      perChatMs: 1000,
      perChatBurst: 5,
      perGroupPerMinute: 20,
      globalPerSecond: 30,
      ...options.limits,
    };
    this.#nextUpdateId = options.firstUpdateId ?? 100;
    this.#onRequest = options.onRequest;
  }

  /** Listens on `port` (default: a free one). */
  async start(port = 0): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.#pollWaiter?.wake();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  /** Makes the next `times` calls of `method` fail with `code` (a 429 carries `retryAfter` seconds). */
  failNext(
    method: string,
    failure: { code: number; description: string; retryAfter?: number },
    times = 1,
  ): void {
    this.#failures.push({ method, ...failure, times });
  }

  /** Makes every call of `method` take `ms` longer, as a slow network or a busy server would. */
  delay(method: string, ms: number): void {
    this.#delays.set(method, ms);
  }

  /**
   * Holds every API call from now until {@link release}, before it is recorded or carried out, as
   * a stalled network would. A call whose client went away meanwhile (a process killed) is dropped
   * on release: the service never saw it.
   */
  hold(): void {
    if (this.#held) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#held = { promise, resolve };
  }

  /** Carries out the calls held since {@link hold}. */
  release(): void {
    this.#held?.resolve();
    this.#held = undefined;
  }

  /** The update sent with id `updateId`, as Telegram would post it to a webhook. */
  update(updateId: number): Json | undefined {
    return this.#history.get(updateId);
  }

  /** The id the last update pushed got. */
  get lastUpdateId(): number {
    return this.#nextUpdateId - 1;
  }

  /** Requests of one method, in order. */
  calls(method: string): Recorded[] {
    return this.requests.filter((r) => r.method === method);
  }

  /** Messages in a chat (the bot's and the users'), in order. */
  chatMessages(chatId: number): StoredMessage[] {
    return this.messages.get(chatId) ?? [];
  }

  /** Updates queued and not yet confirmed by an offset. */
  get pendingUpdates(): number {
    return this.#queue.length;
  }

  // --- Playing the users ---------------------------------------------------------------------

  /** A user writes in a chat. Returns the stored message. */
  userSays(
    chat: FakeChat,
    from: FakeUser,
    text: string,
    extra: { entities?: Json[]; threadId?: number; replyTo?: number; photo?: Buffer; caption?: boolean } = {},
  ): StoredMessage {
    this.chats.set(chat.id, chat);
    const stored = this.#store(chat, {
      from,
      ...(extra.caption || extra.photo ? { caption: text } : { text }),
      ...(extra.threadId !== undefined && { message_thread_id: extra.threadId }),
      ...(extra.replyTo !== undefined && { reply_to_message_id: extra.replyTo }),
    });
    const message: Json = this.#messageJson(stored);
    if (extra.entities) message[extra.photo ? 'caption_entities' : 'entities'] = extra.entities;
    if (extra.photo) {
      const small = this.#addFile(extra.photo.subarray(0, Math.min(100, extra.photo.length)));
      const large = this.#addFile(extra.photo);
      message.photo = [
        {
          file_id: small,
          file_unique_id: `u${small}`,
          width: 90,
          height: 90,
          file_size: Math.min(100, extra.photo.length),
        },
        {
          file_id: large,
          file_unique_id: `u${large}`,
          width: 1280,
          height: 1280,
          file_size: extra.photo.length,
        },
      ];
    }
    if (extra.threadId !== undefined) {
      message.is_topic_message = true;
      // In a forum topic every message replies to the topic's creation, unless it replies to something else.
      if (extra.replyTo === undefined) {
        message.reply_to_message = {
          message_id: extra.threadId,
          date: 1,
          chat,
          forum_topic_created: { name: 'Topic', icon_color: 7322096 },
          is_topic_message: true,
          message_thread_id: extra.threadId,
        };
      }
    }
    this.pushUpdate({ message });
    return stored;
  }

  /** A user presses an inline button under a bot message. Returns the query id. */
  userPresses(chat: FakeChat, from: FakeUser, messageId: number, data: string): string {
    const stored = this.chatMessages(chat.id).find((m) => m.message_id === messageId);
    const id = `cb${this.#nextUpdateId}`;
    this.callbacks.set(id, { answered: false });
    this.pushUpdate({
      callback_query: {
        id,
        from,
        chat_instance: `ci${chat.id}`,
        data,
        message: stored ? this.#messageJson(stored) : { message_id: messageId, date: 1, chat },
      },
    });
    return id;
  }

  /** Queues an update (it gets the next update_id) and wakes a waiting getUpdates or posts to the webhook. */
  pushUpdate(update: Json): number {
    const update_id = this.#nextUpdateId++;
    const full = { update_id, ...update };
    this.#history.set(update_id, full);
    this.#queue.push(full);
    this.#pollWaiter?.wake();
    if (this.webhook) void this.#deliverToWebhook();
    return update_id;
  }

  /** Queues an update again, as Telegram does when a bot crashed before confirming it. */
  redeliver(updateId: number): void {
    const update = this.#history.get(updateId);
    if (!update) throw new Error(`no update ${updateId}`);
    this.#queue.unshift(update);
    this.#pollWaiter?.wake();
  }

  // --- The HTTP side ----------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) {
      const found = [...this.files.values()].find((f) => f.path === file[2]);
      if (file[1] !== this.token || !found) return void res.writeHead(404).end('Not Found');
      return void res
        .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.bytes.length })
        .end(found.bytes);
    }
    const call = /^\/bot([^/]+)\/(\w+)$/.exec(url.pathname);
    const reply = (status: number, body: Json) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (!call) return void reply(404, { ok: false, error_code: 404, description: 'Not Found' });
    if (call[1] !== this.token)
      return void reply(401, { ok: false, error_code: 401, description: 'Unauthorized' });
    if (this.#held) {
      this.#arrivals.set(res, Date.now());
      // The connection closes when the client's process dies: the call is never carried out.
      let gone = false;
      const leave = () => {
        gone = true;
      };
      res.once('close', leave);
      await this.#held.promise;
      res.off('close', leave);
      if (gone || res.destroyed) return;
    }
    const method = call[2]!;
    let recorded: Recorded | undefined;
    try {
      const { params, files } = await readParams(req, url);
      recorded = { method, params, at: this.#arrivals.get(res) ?? Date.now() };
      this.requests.push(recorded);
      this.#onRequest?.(recorded);
      const delay = this.#delays.get(method);
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
      const failure = this.#failures.find((f) => f.method === method && f.times > 0);
      if (failure) {
        failure.times--;
        throw new ApiError(
          failure.code,
          failure.description,
          failure.retryAfter === undefined ? undefined : { retry_after: failure.retryAfter },
        );
      }
      const result = await this.#call(method, params, files, res);
      if (result === undefined) return; // the request went away (a cancelled long poll)
      reply(200, { ok: true, result });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.code === 429 && recorded) this.refused.push(recorded);
      reply(error.code, {
        ok: false,
        error_code: error.code,
        description: error.description,
        ...(error.parameters && { parameters: error.parameters }),
      });
    }
  }

  async #call(method: string, p: Json, files: Map<string, Buffer>, res: ServerResponse): Promise<unknown> {
    switch (method) {
      case 'getMe':
        return {
          ...this.bot,
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
        };
      case 'deleteWebhook':
        if (p.drop_pending_updates === true || p.drop_pending_updates === 'true') this.#queue = [];
        this.webhook = undefined;
        return true;
      case 'setWebhook':
        this.webhook = {
          url: String(p.url),
          ...(p.secret_token !== undefined && { secret: String(p.secret_token) }),
        };
        if (p.drop_pending_updates === true) this.#queue = [];
        void this.#deliverToWebhook();
        return true;
      case 'getUpdates':
        return this.#getUpdates(p, res);
      case 'sendMessage': {
        const chat = this.#chat(p.chat_id);
        const text = this.#text(p.text, p.parse_mode, 4096);
        this.#checkReply(chat, p);
        this.#spend(chat, res);
        return this.#messageJson(
          this.#store(chat, this.#common(p, { text, parse_mode: p.parse_mode as string | undefined })),
        );
      }
      case 'editMessageText': {
        const chat = this.#chat(p.chat_id);
        const message = this.chatMessages(chat.id).find((m) => m.message_id === Number(p.message_id));
        if (!message || message.from?.id !== this.bot.id)
          throw new ApiError(400, 'Bad Request: message to edit not found');
        const text = this.#text(p.text, p.parse_mode, 4096);
        if (
          text === message.text &&
          JSON.stringify(p.reply_markup ?? null) === JSON.stringify(message.reply_markup ?? null)
        ) {
          throw new ApiError(
            400,
            'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
          );
        }
        this.#spend(chat, res);
        message.text = text;
        message.parse_mode = p.parse_mode as string | undefined;
        message.reply_markup = p.reply_markup;
        message.edits++;
        return this.#messageJson(message);
      }
      case 'sendPhoto':
      case 'sendDocument': {
        const chat = this.#chat(p.chat_id);
        const field = method === 'sendPhoto' ? 'photo' : 'document';
        const bytes = this.#upload(
          p[field],
          files,
          method === 'sendPhoto' ? 10 * 1024 * 1024 : 50 * 1024 * 1024,
        );
        const caption = p.caption === undefined ? undefined : this.#text(p.caption, p.parse_mode, 1024);
        this.#checkReply(chat, p);
        this.#spend(chat, res);
        const fileId = this.#addFile(bytes);
        const stored = this.#store(chat, this.#common(p, { ...(caption !== undefined && { caption }) }));
        if (method === 'sendPhoto') stored.photo = [{ file_id: fileId, bytes: bytes.length }];
        else stored.document = { file_id: fileId, bytes: bytes.length };
        return this.#messageJson(stored);
      }
      case 'sendMediaGroup': {
        const chat = this.#chat(p.chat_id);
        const media = p.media as Json[] | undefined;
        if (!Array.isArray(media) || media.length < 2 || media.length > 10) {
          throw new ApiError(400, 'Bad Request: wrong number of messages in the media group: must be 2-10');
        }
        this.#checkReply(chat, p);
        this.#spend(chat, res);
        const group = `mg${this.#nextFileId}`;
        return media.map((item) => {
          if (item.type !== 'photo' && item.type !== 'document')
            throw new ApiError(400, 'Bad Request: unsupported media type');
          const bytes = this.#upload(item.media, files, 10 * 1024 * 1024);
          const caption =
            item.caption === undefined ? undefined : this.#text(item.caption, item.parse_mode, 1024);
          const stored = this.#store(chat, this.#common(p, { ...(caption !== undefined && { caption }) }));
          stored.photo = [{ file_id: this.#addFile(bytes), bytes: bytes.length }];
          stored.media_group_id = group;
          return this.#messageJson(stored);
        });
      }
      case 'sendChatAction':
        this.#chat(p.chat_id);
        if (!['typing', 'upload_photo'].includes(String(p.action)))
          throw new ApiError(400, 'Bad Request: wrong parameter action in request');
        return true;
      case 'sendMessageDraft': {
        const chat = this.#chat(p.chat_id);
        if (chat.type !== 'private')
          throw new ApiError(400, 'Bad Request: drafts can be sent only to private chats');
        if (!Number.isInteger(Number(p.draft_id)) || Number(p.draft_id) === 0)
          throw new ApiError(400, 'Bad Request: invalid draft_id');
        this.drafts.push({
          chat_id: chat.id,
          draft_id: Number(p.draft_id),
          text: this.#text(p.text, p.parse_mode, 4096),
        });
        return true;
      }
      case 'answerCallbackQuery': {
        const query = this.callbacks.get(String(p.callback_query_id));
        if (!query || query.answered) {
          throw new ApiError(
            400,
            'Bad Request: query is too old and response timeout expired or query ID is invalid',
          );
        }
        query.answered = true;
        return true;
      }
      case 'getFile': {
        const file = this.files.get(String(p.file_id));
        if (!file) throw new ApiError(400, 'Bad Request: invalid file_id');
        return {
          file_id: p.file_id,
          file_unique_id: `u${p.file_id}`,
          file_size: file.bytes.length,
          file_path: file.path,
        };
      }
      case 'setMyCommands': {
        const commands = p.commands as { command: string; description: string }[];
        for (const command of commands ?? []) {
          if (
            !/^[a-z0-9_]{1,32}$/.test(command.command) ||
            command.description.length < 1 ||
            command.description.length > 256
          ) {
            throw new ApiError(400, 'Bad Request: BOT_COMMAND_INVALID');
          }
        }
        this.commands = commands;
        return true;
      }
      default:
        throw new ApiError(404, 'Not Found: method not found');
    }
  }

  async #getUpdates(p: Json, res: ServerResponse): Promise<unknown> {
    if (this.webhook)
      throw new ApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
    // A second long poll ends the first, as on the real service.
    if (this.#pollWaiter && this.#pollWaiter.res !== res) {
      const previous = this.#pollWaiter;
      this.#pollWaiter = undefined;
      previous.res.writeHead(409, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          ok: false,
          error_code: 409,
          description:
            'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
        }),
      );
      previous.wake();
    }
    const offset = Number(p.offset ?? 0);
    if (offset > 0) this.#queue = this.#queue.filter((u) => (u.update_id as number) >= offset);
    const limit = Math.min(Number(p.limit ?? 100), 100);
    const timeout = Math.min(Number(p.timeout ?? 0), 50) * 1000;
    const take = () => this.#queue.slice(0, limit);
    if (this.#queue.length || timeout === 0) return take();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeout);
      const done = () => {
        clearTimeout(timer);
        if (this.#pollWaiter?.res === res) this.#pollWaiter = undefined;
        resolve();
      };
      this.#pollWaiter = { wake: done, res };
      res.on('close', done);
    });
    if (res.writableEnded || res.destroyed) return undefined;
    return take();
  }

  async #deliverToWebhook(): Promise<void> {
    const hook = this.webhook;
    if (!hook) return;
    while (this.webhook === hook && this.#queue.length) {
      const update = this.#queue[0]!;
      const status = await new Promise<number>((resolve) => {
        const body = JSON.stringify(update);
        const req = httpRequest(
          hook.url,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              ...(hook.secret && { 'x-telegram-bot-api-secret-token': hook.secret }),
            },
          },
          (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          },
        );
        req.on('error', () => resolve(0));
        req.end(body);
      });
      if (status !== 200) return; // Telegram retries later; so does the next push
      this.#queue.shift();
    }
  }

  // --- Helpers ----------------------------------------------------------------------------------

  #chat(id: unknown): FakeChat {
    const chat = this.chats.get(Number(id));
    if (!chat) throw new ApiError(400, 'Bad Request: chat not found');
    return chat;
  }

  #text(value: unknown, parseMode: unknown, max: number): string {
    const text = String(value ?? '');
    const visible = parseMode === 'HTML' ? parseTelegramHtml(text) : text;
    if (!visible.trim()) throw new ApiError(400, 'Bad Request: message text is empty');
    if (visible.length > max)
      throw new ApiError(
        400,
        max === 4096 ? 'Bad Request: message is too long' : 'Bad Request: message caption is too long',
      );
    return text;
  }

  #checkReply(chat: FakeChat, p: Json): void {
    const reply = p.reply_parameters as
      | { message_id?: number; allow_sending_without_reply?: boolean }
      | undefined;
    if (!reply?.message_id) return;
    const exists = this.chatMessages(chat.id).some((m) => m.message_id === Number(reply.message_id));
    if (!exists && !reply.allow_sending_without_reply)
      throw new ApiError(400, 'Bad Request: message to be replied not found');
  }

  #upload(value: unknown, files: Map<string, Buffer>, max: number): Buffer {
    let bytes: Buffer | undefined;
    if (typeof value === 'string' && value.startsWith('attach://'))
      bytes = files.get(value.slice('attach://'.length));
    else if (typeof value === 'string' && this.files.has(value)) bytes = this.files.get(value)!.bytes;
    else if (typeof value === 'string' && /^https?:\/\//.test(value))
      bytes = Buffer.from(`downloaded:${value}`);
    if (!bytes) throw new ApiError(400, 'Bad Request: there is no file in the request');
    if (bytes.length > max) throw new ApiError(400, 'Bad Request: file is too big');
    return bytes;
  }

  #addFile(bytes: Buffer): string {
    const id = `file${this.#nextFileId++}`;
    this.files.set(id, { path: `photos/${id}.jpg`, bytes });
    return id;
  }

  #common(p: Json, extra: Partial<StoredMessage>): Partial<StoredMessage> {
    const reply = p.reply_parameters as { message_id?: number } | undefined;
    return {
      from: this.bot,
      ...(p.message_thread_id !== undefined && { message_thread_id: Number(p.message_thread_id) }),
      ...(reply?.message_id !== undefined && { reply_to_message_id: Number(reply.message_id) }),
      ...(p.reply_markup !== undefined && { reply_markup: p.reply_markup }),
      ...extra,
    };
  }

  #store(chat: FakeChat, fields: Partial<StoredMessage>): StoredMessage {
    const list = this.messages.get(chat.id) ?? [];
    this.messages.set(chat.id, list);
    const stored: StoredMessage = {
      message_id: (list.at(-1)?.message_id ?? 0) + 1,
      chat,
      edits: 0,
      ...fields,
    };
    list.push(stored);
    return stored;
  }

  #messageJson(m: StoredMessage): Json {
    return {
      message_id: m.message_id,
      date: Math.floor(Date.now() / 1000),
      chat: m.chat,
      ...(m.from && { from: m.from }),
      ...(m.text !== undefined && { text: m.text }),
      ...(m.caption !== undefined && { caption: m.caption }),
      ...(m.photo && {
        photo: m.photo.map((p) => ({
          file_id: p.file_id,
          file_unique_id: `u${p.file_id}`,
          width: 256,
          height: 256,
          file_size: p.bytes,
        })),
      }),
      ...(m.document && {
        document: {
          file_id: m.document.file_id,
          file_unique_id: `u${m.document.file_id}`,
          file_size: m.document.bytes,
        },
      }),
      ...(m.media_group_id && { media_group_id: m.media_group_id }),
      ...(m.message_thread_id !== undefined && {
        message_thread_id: m.message_thread_id,
        is_topic_message: m.chat.is_forum === true,
      }),
      ...(m.reply_markup !== undefined && { reply_markup: m.reply_markup }),
      ...(m.reply_to_message_id !== undefined && {
        reply_to_message: (() => {
          const target = this.chatMessages(m.chat.id).find((x) => x.message_id === m.reply_to_message_id);
          return target
            ? {
                message_id: target.message_id,
                date: 1,
                chat: m.chat,
                ...(target.from && { from: target.from }),
                ...(target.text !== undefined && { text: target.text }),
              }
            : undefined;
        })(),
      }),
    };
  }

  /** Spends one message of the chat's, the group's and the bot's budgets, or answers 429. */
  #spend(chat: FakeChat, res: ServerResponse): void {
    // A call held by `hold()` counts when it arrived, as the service would have counted it.
    const now = this.#arrivals.get(res) ?? Date.now();
    // 10% slack for network jitter: the real service is no stricter than its published limits.
    const burst = this.#limits.perChatBurst;
    const window = this.#limits.perChatMs * burst * 0.9;
    // Calls held by `hold()` are counted when they arrived, after some that arrived later: only
    // what arrived before `now` counts against it.
    const stamps = (this.#chatStamps.get(chat.id) ?? []).filter((t) => t > now - 60_000);
    const earlier = stamps.filter((t) => t <= now);
    const retry = (ms: number) =>
      new ApiError(429, `Too Many Requests: retry after ${Math.ceil(ms / 1000)}`, {
        retry_after: Math.max(1, Math.ceil(ms / 1000)),
      });
    // The oldest of the last `burst` messages must have left the window.
    const oldest = earlier.at(-burst);
    if (oldest !== undefined && now - oldest < window) throw retry(window - (now - oldest));
    if (chat.type !== 'private' && earlier.length >= this.#limits.perGroupPerMinute)
      throw retry(earlier[0]! + 60_000 - now);
    // The same slack overall: 30 a second means 30 in any 0.9 s.
    this.#globalStamps = this.#globalStamps.filter((t) => t > now - 900);
    if (this.#globalStamps.filter((t) => t <= now).length >= this.#limits.globalPerSecond) throw retry(1000);
    stamps.push(now);
    stamps.sort((a, b) => a - b);
    this.#chatStamps.set(chat.id, stamps);
    this.#globalStamps.push(now);
  }
}
