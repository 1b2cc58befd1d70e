/**
 * How discord.js's REST client reaches Discord: through the undici that Chorus itself uses, with a
 * connection pool of the adapter's own.
 *
 * @discordjs/rest bundles an older undici whose `request` takes whatever dispatcher is installed
 * globally; both versions share that global slot, so once Chorus's undici has loaded, requests
 * with files (FormData bodies) fail inside the other one. Handing discord.js this function instead
 * keeps one undici on the path and leaves the global dispatcher alone.
 *
 * And what a REST call's failure becomes: a 429 (after @discordjs/rest's own retries), a refusal
 * by Discord, or a network that failed, kept apart as the core's errors.
 */
import { Agent, fetch } from 'undici';
import { AdapterError, RateLimitError } from '../../src/errors.ts';

/** The request options @discordjs/rest passes to `makeRequest` (a subset of fetch's). */
interface RestRequestInit {
  readonly method?: string | undefined;
  readonly headers?: unknown;
  readonly body?: unknown;
  readonly signal?: AbortSignal | null | undefined;
}

/**
 * A `makeRequest` for discord.js's `rest` option, on its own undici Agent. `onStatus` hears the
 * status of every answer, those @discordjs/rest then retries on its own (a 429) included.
 */
export function createDiscordRequest(onStatus?: (status: number) => void): {
  makeRequest: (url: string, init: RestRequestInit) => ReturnType<typeof fetch>;
  close: () => Promise<void>;
} {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: 15_000 } });
  return {
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
      onStatus?.(response.status);
      return response;
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
