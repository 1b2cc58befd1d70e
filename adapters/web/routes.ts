/**
 * The web adapter's HTTP side: the chat page and its files, and the API (`POST /api/messages`,
 * `POST /api/press`, `GET /api/chat`, `GET /api/chats/<chat>/events`, `GET /api/images/<id>`), as
 * web-standard handlers mounted on an HTTP server. Events go out as Server-Sent Events; a client
 * that goes away is only stopped listening to, never cancels a job.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AdapterHost } from '../../src/adapter.ts';
import type { HttpMounts, RequestHandler, Unmount } from '../../src/http-routes.ts';
import type { WebChatRooms } from './chats.ts';
import type { ImageShelf } from './images.ts';
import {
  bearerToken,
  chatIdPattern,
  messageBody,
  type Parsed,
  parseBody,
  parseCookies,
  pressBody,
  setCookie,
  sseFrame,
  toIncoming,
  visitorEvent,
  type WebEvent,
  webChat,
  webVisitor,
} from './normalize.ts';

/** Largest `POST /api/messages` body. */
export const maxMessageBodyBytes = 64 * 1024;
/** `POST /api/messages` streams one chat may hold open at once. */
export const maxOpenMessagesPerChat = 8;
/** Event streams open at once, over every chat. */
export const maxOpenStreams = 1000;
/** A stream whose client reads slower than this many bytes behind is closed. */
const maxBufferedBytes = 1024 * 1024;
const keepAliveMs = 15_000;
const chatCookie = 'chorus_chat';
const authCookie = 'chorus_auth';
const cookieMaxAgeS = 30 * 24 * 3600;

/** The page's files, served at `/` and `/web/<name>`. */
const pageFiles = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'markdown.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
} as const;

/** The page's own code only, no inline script; images from here (or a plugin's https URL). */
const pagePolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** What the routes work with. */
export interface WebRoutesDeps {
  readonly adapter: string;
  readonly token: string | undefined;
  readonly rooms: WebChatRooms;
  readonly images: ImageShelf;
  readonly host: AdapterHost;
  /** False once the adapter stops taking messages. */
  readonly accepting: () => boolean;
  /** The id of the next visitor message. */
  readonly nextMessageId: () => string;
  readonly now: () => number;
}

/** Mounted routes, and the streams they hold open. */
export interface WebRoutes {
  /** Ends every open stream (its client sees the end) and takes the routes away. */
  close(): void;
}

const json = (status: number, body: object, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
const refuse = (status: number, error: string, headers: Record<string, string> = {}) =>
  json(status, { error }, headers);

/** Mounts the page and the API on `server`. */
export async function mountWebRoutes(server: HttpMounts, deps: WebRoutesDeps): Promise<WebRoutes> {
  const files = new Map(
    Object.entries(pageFiles).map(([name, type]) => [
      name,
      { type, body: readFileSync(new URL(`./page/${name}`, import.meta.url)) },
    ]),
  );
  const streams = new Set<() => void>();
  const tokenKey = deps.token === undefined ? undefined : createHash('sha256').update(deps.token).digest();
  /** What the auth cookie holds: a MAC of the token, never the token. */
  const authValue =
    deps.token === undefined
      ? undefined
      : createHmac('sha256', deps.token).update('chorus web page').digest('base64url');

  const authKey = authValue === undefined ? undefined : createHash('sha256').update(authValue).digest();
  /** Compares digests, so the time taken says nothing of the secret (nor of its length). */
  const sameSecret = (given: string | undefined, key: Buffer | undefined) =>
    given !== undefined &&
    key !== undefined &&
    timingSafeEqual(createHash('sha256').update(given).digest(), key);
  const authorized = (request: Request): boolean => {
    if (deps.token === undefined) return true;
    if (sameSecret(bearerToken(request.headers.get('authorization')), tokenKey)) return true;
    const cookie = parseCookies(request.headers.get('cookie')).get(authCookie);
    return sameSecret(cookie, authKey);
  };
  const unauthorized = () =>
    refuse(401, 'a token is needed: Authorization: Bearer <token>', { 'www-authenticate': 'Bearer' });
  const secure = (request: Request) =>
    new URL(request.url).protocol === 'https:' || request.headers.get('x-forwarded-proto') === 'https';

  /** The chat a request names, or its browser's, or a new one (then set as the browser's). */
  const chatOf = (request: Request, named: string | undefined): { id: string; cookie?: string } => {
    if (named !== undefined) return { id: named };
    const cookie = parseCookies(request.headers.get('cookie')).get(chatCookie);
    if (cookie !== undefined && chatIdPattern.test(cookie)) return { id: cookie };
    const id = randomBytes(16).toString('base64url');
    return { id, cookie: setCookie(chatCookie, id, { maxAgeS: cookieMaxAgeS, secure: secure(request) }) };
  };

  const readJson = async <T>(
    request: Request,
    parse: (text: string) => Parsed<T>,
  ): Promise<Parsed<T> | Response> => {
    const type = request.headers.get('content-type') ?? '';
    // JSON only: a form on another site cannot send it without asking first, which this server never allows.
    if (!/^application\/json\s*(;|$)/i.test(type))
      return refuse(400, 'expected Content-Type: application/json');
    return parse(await request.text());
  };

  /** A Server-Sent Events response; `run` starts pushing and returns what stops it. */
  const eventStream = (
    run: (push: (frame: string) => void, end: () => void) => () => void,
    headers: Record<string, string> = {},
  ): Response => {
    const encoder = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let stop: (() => void) | undefined;
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearInterval(keepAlive);
      streams.delete(end);
      stop?.();
    };
    const end = () => {
      if (closed) return;
      finish();
      controller.close();
    };
    const push = (frame: string) => {
      if (closed) return;
      if ((controller.desiredSize ?? 0) < -maxBufferedBytes) {
        // The client does not read: let it go rather than hold its events in memory.
        finish();
        controller.error(new Error('the client reads too slowly'));
        return;
      }
      controller.enqueue(encoder.encode(frame));
    };
    // `start` runs within the constructor: the controller is there from the next line on.
    const body = new ReadableStream<Uint8Array>(
      {
        start(c) {
          controller = c;
        },
        cancel: finish,
      },
      { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
    );
    streams.add(end);
    const keepAlive = setInterval(() => push(': keep-alive\n\n'), keepAliveMs);
    keepAlive.unref?.();
    stop = run(push, end);
    if (closed) stop();
    return new Response(body, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        ...headers,
      },
    });
  };

  const postMessage: RequestHandler = async (request) => {
    if (!authorized(request)) return unauthorized();
    const parsed = await readJson(request, (text) => parseBody(messageBody, text));
    if (parsed instanceof Response) return parsed;
    if (!parsed.ok) return refuse(400, parsed.error);
    if (!deps.accepting()) return refuse(503, 'the bot is stopping');
    if (streams.size >= maxOpenStreams) return refuse(503, 'too many open streams; try again later');
    const chat = chatOf(request, parsed.value.chat);
    const room = deps.rooms.get(chat.id);
    if (room.openMessages >= maxOpenMessagesPerChat)
      return refuse(429, `at most ${maxOpenMessagesPerChat} messages of one chat are answered at once`);
    const incoming = toIncoming(deps.adapter, deps.nextMessageId(), parsed.value, chat.id, deps.now());
    room.publish(visitorEvent(incoming));
    room.openMessages++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      room.openMessages--;
    };
    const answers = new Set<string>();
    const response = eventStream(
      (push, end) => {
        const stopListening = room.listen((event, seq) => {
          if (event.type === 'message' && event.data.from === 'bot' && event.data.replyTo === incoming.id) {
            answers.add(event.data.id);
            push(sseFrame(event, seq));
          } else if (event.type === 'edit' && answers.has(event.data.id)) push(sseFrame(event, seq));
          else if (event.type === 'typing') push(sseFrame(event, seq));
          else if (event.type === 'done' && event.data.message === incoming.id) {
            push(sseFrame(event, seq));
            end();
          }
        });
        return () => {
          stopListening();
          release();
        };
      },
      {
        'chorus-chat': chat.id,
        'chorus-message': incoming.id,
        ...(chat.cookie !== undefined && { 'set-cookie': chat.cookie }),
      },
    );
    // `done` comes from the adapter's `settled`, once every job the message started has ended,
    // whether the client still listens or not.
    deps.host.receive(incoming).catch((error: unknown) => {
      deps.host.log.error('handling a web message failed', { error });
      room.publish({ type: 'done', data: { message: incoming.id } });
    });
    return response;
  };

  const postPress: RequestHandler = async (request) => {
    if (!authorized(request)) return unauthorized();
    const parsed = await readJson(request, (text) => parseBody(pressBody, text));
    if (parsed instanceof Response) return parsed;
    if (!parsed.ok) return refuse(400, parsed.error);
    const chat = chatOf(request, parsed.value.chat);
    if (chat.cookie !== undefined) return refuse(400, 'chat: required (this browser has no chat yet)');
    const room = deps.rooms.get(chat.id);
    if (!room.hasButton(parsed.value.message, parsed.value.action))
      return refuse(400, 'no such button on that message');
    if (!deps.accepting()) return refuse(503, 'the bot is stopping');
    await deps.host.press({
      id: randomUUID(),
      chat: webChat(deps.adapter, chat.id),
      user: webVisitor(chat.id),
      messageId: parsed.value.message,
      action: parsed.value.action,
    });
    return json(200, { ok: true });
  };

  const getChat: RequestHandler = (request) => {
    if (!authorized(request)) return unauthorized();
    const chat = chatOf(request, undefined);
    return json(200, { chat: chat.id }, chat.cookie === undefined ? {} : { 'set-cookie': chat.cookie });
  };

  const getChatEvents: RequestHandler = (request) => {
    if (!authorized(request)) return unauthorized();
    const match = new URL(request.url).pathname.match(/^\/api\/chats\/([^/]+)\/events$/);
    if (!match || !chatIdPattern.test(match[1]!)) return refuse(404, 'no such route');
    if (streams.size >= maxOpenStreams) return refuse(503, 'too many open streams; try again later');
    const room = deps.rooms.get(match[1]!);
    const last = request.headers.get('last-event-id') ?? new URL(request.url).searchParams.get('after');
    const after = last !== null && /^\d{1,15}$/.test(last) ? Number(last) : undefined;
    return eventStream((push) => {
      for (const { seq, event } of room.since(after)) push(sseFrame(event, seq));
      return room.listen((event: WebEvent, seq) => push(sseFrame(event, seq)));
    });
  };

  const getImage: RequestHandler = (request) => {
    if (!authorized(request)) return unauthorized();
    const id = new URL(request.url).pathname.slice('/api/images/'.length);
    const image = deps.images.get(id);
    if (!image) return refuse(404, 'no such image (or no longer kept)');
    return new Response(image.data, {
      headers: {
        'content-type': image.contentType,
        'content-length': String(image.data.byteLength),
        'cache-control': 'private, max-age=86400, immutable',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
      },
    });
  };

  const pageHeaders = (type: string) => ({
    'content-type': type,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': pagePolicy,
  });

  const getPage: RequestHandler = (request) => {
    const given = new URL(request.url).searchParams.get('token');
    if (deps.token !== undefined && given !== null) {
      if (!sameSecret(given, tokenKey)) return loginPage(401, 'That token is not right.');
      // Once: the token becomes a cookie and leaves the address bar.
      return new Response(null, {
        status: 303,
        headers: {
          location: '/',
          'cache-control': 'no-store',
          'set-cookie': setCookie(authCookie, authValue!, {
            maxAgeS: cookieMaxAgeS,
            secure: secure(request),
          }),
        },
      });
    }
    if (!authorized(request)) return loginPage(401);
    const file = files.get('index.html')!;
    return new Response(file.body, { headers: pageHeaders(file.type) });
  };

  const loginPage = (status: number, note = '') =>
    new Response(
      [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>Chorus</title><link rel="stylesheet" href="/web/style.css"></head>',
        '<body><main class="login"><h1>Chorus</h1>',
        '<form method="get" action="/"><label for="token">This bot needs its token.</label>',
        '<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>',
        '<button type="submit">Open</button></form>',
        note ? `<p class="note" role="alert">${note}</p>` : '',
        '</main></body></html>',
      ].join(''),
      { status, headers: pageHeaders('text/html; charset=utf-8') },
    );

  const getAsset: RequestHandler = (request) => {
    const name = new URL(request.url).pathname.slice('/web/'.length);
    const file = name === 'index.html' ? undefined : files.get(name);
    if (!file) return new Response('Not Found', { status: 404, headers: { 'content-type': 'text/plain' } });
    return new Response(file.body, { headers: pageHeaders(file.type) });
  };

  const unmounts: Unmount[] = [];
  try {
    for (const [method, path, handler, maxBodyBytes] of [
      ['GET', '/', getPage],
      ['GET', '/web/*', getAsset],
      ['GET', '/api/chat', getChat],
      ['POST', '/api/messages', postMessage, maxMessageBodyBytes],
      ['POST', '/api/press', postPress, 4096],
      ['GET', '/api/chats/*', getChatEvents],
      ['GET', '/api/images/*', getImage],
    ] as const) {
      unmounts.push(
        await server.mount(method, path, handler, maxBodyBytes === undefined ? {} : { maxBodyBytes }),
      );
    }
  } catch (error) {
    for (const unmount of unmounts) unmount();
    throw error;
  }

  return {
    close() {
      for (const unmount of unmounts) unmount();
      for (const end of [...streams]) end();
    },
  };
}
