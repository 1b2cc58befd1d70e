/**
 * The process's one HTTP server, on node:http: listening, routing to its mounts, the answers of
 * its own (400, 404, 405, 413, 500, 503) and a graceful close. Adapters mount their webhooks on it
 * (and the web channel and metrics): each request becomes a web-standard `Request`, its body read
 * as the handler reads it and capped, and the handler's `Response` is written back as it streams,
 * so Server-Sent Events flush chunk by chunk and stop when the client goes away (the bridging is
 * http-bridge.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, sleep, systemClock } from '../clock.ts';
import { ChorusError } from '../errors.ts';
import {
  type HttpMounts,
  type MountOptions,
  type RequestHandler,
  RouteTable,
  type Unmount,
} from '../http-routes.ts';
import { createLogger, type Logger } from '../logger.ts';
import { type CappedBody, cappedBody, requestUrl, writeResponse } from './http-bridge.ts';

export { BodyTooLargeError } from './http-bridge.ts';

/** Options of {@link HttpServer}. */
export interface HttpServerOptions {
  /** The interface to listen on. Default `127.0.0.1`. */
  readonly host?: string;
  /** The port; 0 takes a free one. Default 8080. */
  readonly port?: number;
  /** Largest request body a route takes unless it says otherwise, in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** How long {@link HttpServer.close} lets requests in flight finish. Default 5 s. */
  readonly closeTimeoutMs?: number;
  readonly log?: Logger;
  readonly clock?: Clock;
}

/** The client closed the connection before the response was complete. */
class ClientGoneError extends ChorusError {
  override name = 'ClientGoneError';
  constructor() {
    super('HTTP_CLIENT_GONE', 'the client closed the connection');
  }
}

/** The server closed while the request was in flight. */
class ServerClosingError extends ChorusError {
  override name = 'ServerClosingError';
  constructor() {
    super('HTTP_SERVER_CLOSING', 'the HTTP server closed');
  }
}

interface Exchange {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

const tooLarge = () => plain(413, 'Content Too Large');
const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  new Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers } });

/**
 * One HTTP server for the process. It listens on the first {@link HttpServer.mount} (or on
 * {@link HttpServer.listen}), answers 404 for paths nothing is mounted on, 405 (with `Allow`) for
 * other methods, 413 for bodies over the limit and 500, with nothing of the error, when a handler
 * throws (the error goes to the log).
 *
 * @example
 * const server = new HttpServer({ host: '127.0.0.1', port: 8080, log });
 * const unmount = await server.mount('GET', '/healthz', () => new Response('ok'));
 * // ...
 * await server.close();
 */
export class HttpServer implements HttpMounts {
  readonly #routes = new RouteTable();
  readonly #host: string;
  readonly #port: number;
  readonly #maxBodyBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #server: Server;
  readonly #inFlight = new Set<Exchange>();
  #listening: Promise<URL> | undefined;
  #closing: Promise<void> | undefined;
  #url: URL | undefined;

  constructor(options: HttpServerOptions = {}) {
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 8080;
    this.#maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.#log = options.log ?? createLogger({ level: 'silent' });
    this.#clock = options.clock ?? systemClock;
    for (const [key, value] of [
      ['port', this.#port],
      ['maxBodyBytes', this.#maxBodyBytes],
      ['closeTimeoutMs', this.#closeTimeoutMs],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0 || (key === 'port' && value > 65535))
        throw new TypeError(`${key} must be a non-negative integer${key === 'port' ? ' up to 65535' : ''}`);
    }
    this.#server = createServer((req, res) => void this.#serve(req, res));
  }

  /** Where the server listens (`http://127.0.0.1:8080`), once it does. */
  get url(): URL | undefined {
    return this.#url;
  }

  /** Where the server listens, or will on its first mount, as configured. */
  get address(): { readonly host: string; readonly port: number } {
    return { host: this.#host, port: this.#port };
  }

  /** Whether something is mounted. */
  get mounted(): boolean {
    return this.#routes.size > 0;
  }

  async mount(
    method: string,
    path: string,
    handler: RequestHandler,
    options: MountOptions = {},
  ): Promise<Unmount> {
    if (this.#closing) throw new Error('the HTTP server is closed');
    const unmount = this.#routes.add(method, path, handler, options);
    try {
      await this.listen();
    } catch (error) {
      unmount();
      throw error;
    }
    return unmount;
  }

  /** Starts listening (once; later calls get the same promise) and resolves with the address. */
  listen(): Promise<URL> {
    if (this.#closing) return Promise.reject(new Error('the HTTP server is closed'));
    this.#listening ??= new Promise<URL>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.#listening = undefined;
        reject(
          new ChorusError(
            'HTTP_LISTEN',
            `the HTTP server cannot listen on ${this.#host}:${this.#port}: ${error.code ?? error.message}`,
            { cause: error },
          ),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address() as AddressInfo;
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.#url = new URL(`http://${host}:${address.port}`);
        this.#log.info('http server listening', { address: this.#url.origin });
        resolve(this.#url);
      });
    });
    return this.#listening;
  }

  /**
   * Stops taking connections, lets the requests in flight finish for up to `closeTimeoutMs`
   * (new requests on open connections get 503), then aborts what is left and closes every
   * connection. Resolves once the server is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.#listening) return;
    await this.#listening.catch(() => {});
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#inFlight.size > 0) {
      const stop = new AbortController();
      const finished = Promise.all([...this.#inFlight].map((exchange) => exchange.done));
      await Promise.race([finished, sleep(this.#clock, this.#closeTimeoutMs, stop.signal).catch(() => {})]);
      stop.abort();
      if (this.#inFlight.size > 0) {
        this.#log.warn('http server closing: requests still in flight, aborting them', {
          count: this.#inFlight.size,
          ms: this.#closeTimeoutMs,
        });
        for (const exchange of this.#inFlight) exchange.controller.abort(new ServerClosingError());
      }
    }
    this.#server.closeAllConnections();
    await closed;
    this.#log.debug('http server closed');
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    let finish!: () => void;
    const exchange: Exchange = { controller, done: new Promise((resolve) => (finish = resolve)) };
    this.#inFlight.add(exchange);
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new ClientGoneError());
      this.#inFlight.delete(exchange);
      finish();
    });
    let routePath: string | undefined;
    let body: CappedBody | undefined;
    try {
      if (this.#closing)
        return await this.#write(req, res, plain(503, 'Service Unavailable'), controller.signal);
      const method = req.method ?? 'GET';
      const url = this.#requestUrl(req.url);
      if (!url) return await this.#write(req, res, plain(400, 'Bad Request'), controller.signal);
      const match = this.#routes.match(method, url.pathname);
      if (match.kind === 'not-found')
        return await this.#write(req, res, plain(404, 'Not Found'), controller.signal);
      if (match.kind === 'method-not-allowed') {
        const allow = match.allow.join(', ');
        return await this.#write(req, res, plain(405, 'Method Not Allowed', { allow }), controller.signal);
      }
      const { route } = match;
      routePath = route.path;
      const limit = route.options.maxBodyBytes ?? this.#maxBodyBytes;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limit) return await this.#write(req, res, tooLarge(), controller.signal);
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
        headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      if (method !== 'GET' && method !== 'HEAD') body = cappedBody(req, limit, controller.signal);
      const request = new Request(url, {
        method,
        headers,
        signal: controller.signal,
        ...(body && { body: body.stream, duplex: 'half' }),
      } as RequestInit);
      const answer = Promise.resolve().then(() => route.handler(request));
      const outcome = await Promise.race([
        answer.then((response) => ({ response })),
        ...(body ? [body.overLimit.then(() => ({ response: undefined }))] : []),
      ]);
      if (!outcome.response) {
        // The body went over the limit (the handler's reads fail): answer now, whatever it does.
        void answer.then(
          (late) => late?.body?.cancel().catch(() => {}),
          () => {},
        );
        return await this.#write(req, res, tooLarge(), controller.signal);
      }
      if (!(outcome.response instanceof Response))
        throw new TypeError(`the handler of ${route.method} ${route.path} did not return a Response`);
      await this.#write(req, res, outcome.response, controller.signal);
    } catch (error) {
      if (body?.exceeded && !res.headersSent && !res.destroyed)
        return void (await this.#write(req, res, tooLarge(), controller.signal).catch(() => res.destroy()));
      if (controller.signal.aborted) {
        // The client left, or the server is closing: nobody waits for the rest.
        this.#log.debug('http request aborted', { route: routePath, reason: controller.signal.reason });
        res.destroy();
        return;
      }
      this.#log.error('http request failed', { method: req.method, route: routePath, error });
      if (!res.headersSent && !res.destroyed)
        await this.#write(req, res, plain(500, 'Internal Server Error'), controller.signal).catch(() =>
          res.destroy(),
        );
      else res.destroy();
    }
  }

  /** The request target as a URL on the server's own origin, or undefined when it is not a path. */
  #requestUrl(target: string | undefined): URL | undefined {
    return requestUrl(target, this.#url?.origin ?? `http://${this.#host}`);
  }

  /**
   * Writes a Response. A body left unread would be drained whole before the connection could be
   * used again: the connection closes instead. So also while the server closes.
   */
  #write(req: IncomingMessage, res: ServerResponse, response: Response, signal: AbortSignal): Promise<void> {
    return writeResponse(req, res, response, signal, !req.complete || this.#closing !== undefined);
  }
}
