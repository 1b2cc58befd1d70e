/**
 * How discord.js's REST client reaches Discord: through the undici that Chorus itself uses, with a
 * connection pool of the adapter's own, through the bot's proxy (`http.proxy`, else `HTTPS_PROXY`
 * / `HTTP_PROXY`; loopback never), each answer read whole up to a cap (`readBytes`), as
 * @discordjs/rest reads it anyway.
 *
 * @discordjs/rest bundles an older undici whose `request` takes whatever dispatcher is installed
 * globally; both versions share that global slot, so once Chorus's undici has loaded, requests
 * with files (FormData bodies) fail inside the other one. Handing discord.js this function instead
 * keeps one undici on the path and leaves the global dispatcher alone.
 *
 * The gateway's WebSocket is not on this path: discord.js opens it with the `ws` package and no
 * way to pass a proxy, so it connects directly.
 *
 * And what a REST call's failure becomes: a 429 (after @discordjs/rest's own retries), a refusal
 * by Discord, or a network that failed, kept apart as the core's errors.
 */
import { type Dispatcher, EnvHttpProxyAgent, fetch } from 'undici';
import { AdapterError, BackendError, RateLimitError } from '../../src/errors.ts';
import { type HttpResponse, readBytes } from '../../src/http.ts';
import { proxyRoute } from '../../src/runtime/http.ts';

/** The request options @discordjs/rest passes to `makeRequest` (a subset of fetch's). */
interface RestRequestInit {
  readonly method?: string | undefined;
  readonly headers?: unknown;
  readonly body?: unknown;
  readonly signal?: AbortSignal | null | undefined;
}

/** Options of {@link createDiscordRequest}. */
export interface DiscordRequestOptions {
  /** `http://host:port`; unset: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment. */
  readonly proxy?: string | undefined;
  /** The most bytes one REST answer may have. Default 8 MiB (the largest list Discord answers is far under). */
  readonly maxAnswerBytes?: number;
  /** Hears the status of every answer, those @discordjs/rest then retries on its own (a 429) included. */
  readonly onStatus?: (status: number) => void;
}

/** Statuses whose answers have no body (a `Response` with one cannot be made). */
const bodiless = new Set([101, 204, 205, 304]);

/** A `makeRequest` for discord.js's `rest` option, and the pool it sends through. */
export interface DiscordRequest {
  makeRequest(url: string, init: RestRequestInit): Promise<Response>;
  /** For requests of the adapter's own (attachment downloads): the same pool and proxy. */
  readonly dispatcher: Dispatcher;
  /** Closes the pool's connections. */
  close(): Promise<void>;
}

/** Creates the REST transport; one per adapter. */
export function createDiscordRequest(options: DiscordRequestOptions = {}): DiscordRequest {
  const maxAnswerBytes = options.maxAnswerBytes ?? 8 * 1024 * 1024;
  const dispatcher = new EnvHttpProxyAgent({
    ...proxyRoute(options.proxy),
    keepAliveTimeout: 30_000,
    connect: { timeout: 15_000 },
    // @discordjs/rest ends a call itself after 15 s; a download is given as long per silence.
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  return {
    dispatcher,
    async makeRequest(url, init) {
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries((init.headers ?? {}) as Record<string, unknown>)) {
        if (value !== undefined) headers[key.toLowerCase()] = String(value);
      }
      let body = init.body as string | Uint8Array | undefined;
      if (init.body instanceof FormData) {
        // A multipart body (attachments), encoded by the platform's own Response, which knows its
        // own FormData; undici sends the bytes with their boundary.
        const encoded = new Response(init.body);
        headers['content-type'] = encoded.headers.get('content-type') ?? 'multipart/form-data';
        body = new Uint8Array(await encoded.arrayBuffer());
      }
      const response = await fetch(url, {
        method: init.method ?? 'GET',
        headers,
        ...(body !== undefined && body !== null && { body }),
        ...(init.signal && { signal: init.signal }),
        dispatcher,
      });
      options.onStatus?.(response.status);
      if (bodiless.has(response.status)) return response as unknown as Response;
      // Counted as it streams, decoded: a compressed answer is held to the cap too.
      const bytes = await readBytes(response as unknown as HttpResponse, 'discord', maxAnswerBytes);
      return new Response(bytes, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers as unknown as Headers,
      });
    },
    close: () => dispatcher.close(),
  };
}

/**
 * Runs `request`, a REST call of adapter `name` doing `what`, and maps its failure: a 429 (after
 * @discordjs/rest's own retries) to a `RateLimitError`, an answer with another status to an
 * `AdapterError` the remote refused, anything else to one where the network failed.
 */
export async function callDiscord<T>(name: string, what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    const status = (error as { status?: number }).status;
    // An answer over the cap: Discord answered, with too much.
    if (error instanceof BackendError && error.kind === 'invalid')
      throw new AdapterError(name, `${error.message} (${what})`, { remote: true, cause: error });
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
}
