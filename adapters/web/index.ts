/**
 * The web adapter: a chat page at `/` and an HTTP API for the same plugins. A visitor's message
 * (`POST /api/messages`) is answered as Server-Sent Events: the bot's messages, their edits as
 * answers grow, "typing...", and `done` once every job the message started has ended. Images the
 * bot sends are kept in memory, bounded, and served at `/api/images/<id>`.
 *
 * Where it listens: without `port`, on the process's one HTTP server (`http.server`); with a
 * `port`, on that server when the address is the same, otherwise on a listener of its own at
 * `host:port`. `onPortTaken: free-port` takes a free port when that one is in use (the built-in
 * default config does, so a second `npm start` still opens its page), and says where.
 */
import { z } from 'zod';
import { type Adapter, type AdapterHost, defineAdapter } from '../../src/adapter.ts';
import { ChorusError } from '../../src/errors.ts';
import type { HttpMounts } from '../../src/http-routes.ts';
import type {
  BotIdentity,
  ChatAddress,
  IncomingMessage,
  OutgoingMessage,
  SentMessage,
} from '../../src/message.ts';
import { HttpServer } from '../../src/runtime/http-server.ts';
import { WebChatRooms } from './chats.ts';
import { ImageShelf } from './images.ts';
import { editEvent, messageEvent } from './normalize.ts';
import { mountWebRoutes, type WebRoutes } from './routes.ts';

/** Options of {@link createWebAdapter}. */
export interface WebAdapterOptions {
  /** Instance name. Default `web`. */
  readonly name?: string;
  /** A port of its own (0: a free one). Default: the process's HTTP server. */
  readonly port?: number;
  /** The interface `port` listens on. Default `127.0.0.1`. */
  readonly host?: string;
  /** Required as `Authorization: Bearer <token>` on the API, and once for the page (`/?token=`). */
  readonly token?: string;
  /** When `port` is in use: `fail` (the bot does not start), or `free-port` (take another, and log it). */
  readonly onPortTaken?: 'fail' | 'free-port';
  /** Bytes of images kept for serving, over every chat. Default 64 MiB. */
  readonly maxImageBytes?: number;
  /** Images kept for serving. Default 500. */
  readonly maxImages?: number;
  /** Chats kept in memory (their recent events). Default 1000. */
  readonly maxChats?: number;
  readonly clock?: () => number;
}

/** A web adapter: where its page is, once it has started. */
export interface WebAdapter extends Adapter {
  /** The page's address (`http://127.0.0.1:8787/`), once started. */
  readonly url: URL | undefined;
}

/** Creates a web adapter. */
export function createWebAdapter(options: WebAdapterOptions = {}): WebAdapter {
  const name = options.name ?? 'web';
  const now = options.clock ?? Date.now;
  // At most 300 events and 128 KiB of them per chat: 1000 chats hold at most 128 MiB.
  const rooms = new WebChatRooms({
    maxChats: options.maxChats ?? 1000,
    maxEvents: 300,
    maxBytes: 128 * 1024,
  });
  const images = new ImageShelf({
    maxBytes: options.maxImageBytes ?? 64 * 1024 * 1024,
    maxCount: options.maxImages ?? 500,
  });
  let routes: WebRoutes | undefined;
  let ownServer: HttpServer | undefined;
  let url: URL | undefined;
  let accepting = false;
  let nextIn = 0;
  let nextOut = 0;

  /** The shared server when the config's address is its own (or none is given), else a server of its own. */
  const serverFor = async (host: AdapterHost): Promise<{ server: HttpMounts; shared: boolean }> => {
    const shared = host.httpServer;
    const wanted = { host: options.host ?? '127.0.0.1', port: options.port };
    if (wanted.port === undefined) {
      if (!shared)
        throw new ChorusError(
          'WEB_NO_SERVER',
          `adapters.${name}: no HTTP server to mount on: give it a port`,
        );
      return { server: shared, shared: true };
    }
    if (
      shared?.address &&
      wanted.port !== 0 &&
      shared.address.port === wanted.port &&
      shared.address.host === wanted.host
    )
      return { server: shared, shared: true };
    const server = new HttpServer({ host: wanted.host, port: wanted.port, log: host.log });
    try {
      await server.listen();
      return { server, shared: false };
    } catch (error) {
      await server.close();
      const inUse =
        error instanceof ChorusError &&
        (error.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      if (inUse && options.onPortTaken !== 'free-port')
        throw new ChorusError(
          'WEB_PORT_TAKEN',
          `adapters.${name}.port: ${wanted.host}:${wanted.port} is in use; choose another port, or set onPortTaken: free-port`,
          { cause: error },
        );
      if (!inUse) throw error;
      const fallback = new HttpServer({ host: wanted.host, port: 0, log: host.log });
      const at = await fallback.listen();
      host.log.warn(`port ${wanted.port} is in use, so the web page is on port ${at.port} instead`, {
        url: `${at.origin}/`,
      });
      return { server: fallback, shared: false };
    }
  };

  /** Where each image of a message is served: kept bytes at `/api/images/<id>`, a plugin's http(s) URL as it is. */
  const imageUrls = (message: OutgoingMessage): string[] => {
    const urls: string[] = [];
    for (const image of message.images ?? []) {
      if ('url' in image) {
        if (/^https?:\/\//i.test(image.url)) urls.push(image.url);
        continue;
      }
      const id = images.put(image.data, image.mimeType);
      if (id !== undefined) urls.push(`/api/images/${id}`);
    }
    return urls;
  };

  return {
    name,
    platform: 'web',
    commandPrefixes: ['/'],
    // A browser takes edits fast; the budget keeps a streamed answer to 20 updates a second a chat.
    limits: {
      rate: { perChat: { count: 20, periodMs: 1000 }, global: { count: 1000, periodMs: 1000 } },
      maxTextLength: 32_000,
      maxCaptionLength: 4_000,
    },

    get url() {
      return url;
    },

    async start(host: AdapterHost): Promise<BotIdentity> {
      const { server, shared } = await serverFor(host);
      if (!shared) ownServer = server as HttpServer;
      try {
        routes = await mountWebRoutes(server, {
          adapter: name,
          token: options.token,
          rooms,
          images,
          host,
          accepting: () => accepting,
          nextMessageId: () => `m${++nextIn}`,
          now,
        });
      } catch (error) {
        await ownServer?.close();
        throw error;
      }
      accepting = true;
      url = server.url && new URL('/', server.url);
      host.log.info('web chat page ready', { url: url?.href ?? '(on the HTTP server)' });
      const listening = url?.hostname ?? '';
      if (options.token === undefined && !/^(127\.|\[::1\]$|localhost$)/.test(listening))
        host.log.warn('the web page and API are open to anyone who reaches them: set adapters.web.token', {
          url: url?.href,
        });
      return { id: 'chorus', username: 'chorus', name: 'Chorus' };
    },

    async stopReceiving() {
      accepting = false;
    },

    async stop() {
      accepting = false;
      routes?.close();
      routes = undefined;
      await ownServer?.close();
      ownServer = undefined;
      rooms.clear();
      images.clear();
    },

    async send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
      const id = `b${++nextOut}`;
      rooms.get(chat.id).publish(messageEvent(id, message, imageUrls(message)));
      return { chat, ids: [id] };
    },

    async edit(chat: ChatAddress, messageId: string, message: OutgoingMessage, { final }): Promise<void> {
      rooms.get(chat.id).publish(editEvent(messageId, message, final));
    },

    async sendTyping(chat: ChatAddress): Promise<void> {
      rooms.get(chat.id).publish({ type: 'typing', data: {} });
    },

    settled(message: IncomingMessage): void {
      rooms.get(message.chat.id).publish({ type: 'done', data: { message: message.id } });
    },
  };
}

/** The `adapters.web` config section. */
export const webConfig = z
  .strictObject({
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().min(1).optional(),
    token: z.string().min(8, 'expected a token of at least 8 characters').optional(),
    onPortTaken: z.enum(['fail', 'free-port']).default('fail'),
    maxImageBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    maxImages: z.number().int().positive().default(500),
    maxChats: z.number().int().positive().default(1000),
  })
  .refine((config) => config.host === undefined || config.port !== undefined, {
    path: ['host'],
    message: 'only with a port of its own (without one, the page is on http.server: set http.server.host)',
  });

/** The `web` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'web',
  config: webConfig,
  create: ({ name, config: { port, host, token, ...config } }) =>
    createWebAdapter({
      name,
      ...config,
      ...(port !== undefined && { port }),
      ...(host !== undefined && { host }),
      ...(token !== undefined && { token }),
    }),
});
