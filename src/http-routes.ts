/**
 * What may be mounted on the process's HTTP server, and the table that finds a request's handler:
 * web-standard `Request` in, `Response` out, routed by method and exact path (or a `/*` prefix).
 * No I/O here; `http-server.ts` serves the table on node:http.
 */

/** Handles one request. `request.signal` aborts when the client goes away or the server closes. */
export type RequestHandler = (request: Request) => Response | Promise<Response>;

/** How one route treats its requests. */
export interface MountOptions {
  /** Largest request body taken, in bytes; a larger one is answered 413 unread. Default: the server's. */
  readonly maxBodyBytes?: number;
}

/** Takes the route away again; calling it twice is harmless. */
export type Unmount = () => void;

/** Where handlers mount: the process's one HTTP server, as adapters and plugins see it. */
export interface HttpMounts {
  /**
   * Serves `method` requests for `path` with `handler`, and resolves once the server listens (it
   * starts listening on the first mount), with the function that takes the route away. `path` is
   * exact (`/telegram`), or ends in `/*` for everything under it (`/api/*` serves `/api/chats/1`).
   * Mounting a method and path that is already mounted throws.
   *
   * @example
   * const unmount = await host.httpServer.mount('POST', '/hooks/matrix', async (request) => {
   *   await take(await request.json());
   *   return new Response(null, { status: 204 });
   * });
   */
  mount(method: string, path: string, handler: RequestHandler, options?: MountOptions): Promise<Unmount>;
  /**
   * Where the server listens, or will on its first mount, as configured (port 0: a free one), so
   * an adapter given an address of its own can tell whether it is this server's.
   */
  readonly address?: { readonly host: string; readonly port: number };
  /** Where the server listens (`http://127.0.0.1:8080`), once it does. */
  readonly url?: URL | undefined;
}

/** A mounted route. */
export interface Route {
  readonly method: string;
  readonly path: string;
  readonly handler: RequestHandler;
  readonly options: MountOptions;
}

/** What {@link RouteTable.match} found. */
export type RouteMatch =
  | { readonly kind: 'route'; readonly route: Route }
  /** The path is mounted, for other methods only: a 405 listing them. */
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'not-found' };

const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Routes by method and path. An exact path wins over a prefix; of two prefixes, the longer wins. A
 * `HEAD` request with no `HEAD` route is served by the `GET` route (the server sends no body).
 */
export class RouteTable {
  readonly #exact = new Map<string, Map<string, Route>>();
  /** Prefix routes by prefix (`/api/`), longest first. */
  #prefixes: { prefix: string; methods: Map<string, Route> }[] = [];

  /** Adds a route; throws `TypeError` on a malformed method or path and `Error` on a duplicate. */
  add(method: string, path: string, handler: RequestHandler, options: MountOptions = {}): Unmount {
    if (!token.test(method)) throw new TypeError(`not an HTTP method: ${JSON.stringify(method)}`);
    if (!path.startsWith('/') || /[\s?#]/.test(path) || path.slice(0, -1).includes('*'))
      throw new TypeError(`not a path to mount on: ${JSON.stringify(path)} (expected /exact or /prefix/*)`);
    if (
      options.maxBodyBytes !== undefined &&
      (!Number.isSafeInteger(options.maxBodyBytes) || options.maxBodyBytes < 0)
    )
      throw new TypeError('maxBodyBytes must be a non-negative integer');
    const upper = method.toUpperCase();
    const prefix = path.endsWith('/*') ? path.slice(0, -1) : undefined;
    let methods: Map<string, Route>;
    if (prefix === undefined) {
      if (path.endsWith('*')) throw new TypeError(`a prefix route ends in /*: ${JSON.stringify(path)}`);
      methods = this.#exact.get(path) ?? new Map();
      this.#exact.set(path, methods);
    } else {
      let entry = this.#prefixes.find((p) => p.prefix === prefix);
      if (!entry) {
        entry = { prefix, methods: new Map() };
        this.#prefixes = [...this.#prefixes, entry].sort((a, b) => b.prefix.length - a.prefix.length);
      }
      methods = entry.methods;
    }
    if (methods.has(upper)) throw new Error(`${upper} ${path} is already mounted`);
    const route: Route = { method: upper, path, handler, options };
    methods.set(upper, route);
    return () => {
      if (methods.get(upper) !== route) return;
      methods.delete(upper);
      if (methods.size > 0) return;
      if (prefix === undefined) this.#exact.delete(path);
      else this.#prefixes = this.#prefixes.filter((p) => p.methods !== methods);
    };
  }

  /** How many routes are mounted. */
  get size(): number {
    let size = 0;
    for (const methods of this.#exact.values()) size += methods.size;
    for (const { methods } of this.#prefixes) size += methods.size;
    return size;
  }

  /** Finds the route for a request's method and path (the URL's pathname, as sent). */
  match(method: string, pathname: string): RouteMatch {
    const methods =
      this.#exact.get(pathname) ?? this.#prefixes.find((p) => pathname.startsWith(p.prefix))?.methods;
    if (!methods) return { kind: 'not-found' };
    const route = methods.get(method) ?? (method === 'HEAD' ? methods.get('GET') : undefined);
    if (route) return { kind: 'route', route };
    const allow = [...methods.keys()];
    if (methods.has('GET') && !methods.has('HEAD')) allow.push('HEAD');
    return { kind: 'method-not-allowed', allow };
  }
}
