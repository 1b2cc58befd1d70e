/**
 * How the Telegram adapter reaches the Bot API: the `fetch` grammY is given (its `client.fetch`
 * option), on undici's `request` over one keep-alive pool. grammY still builds every call and
 * reads every answer; this only carries them, through the configured proxy (loopback never, as for
 * every other request of the bot), and reads each answer up to a cap while it streams.
 *
 * undici's `request` takes about 40% less CPU per call than grammY's default (node-fetch on
 * `node:http`): 71-75 µs against 117-142 µs for a sendMessage over loopback, 50 at a time. A
 * Telegram bot makes at least one call per message (`npm run bench -- tg`).
 */
import type { Readable } from 'node:stream';
import { type Dispatcher, EnvHttpProxyAgent, request } from 'undici';
import { proxyRoute } from '../../src/runtime/http.ts';

/** The part of a `fetch` init that grammY passes (JSON text, or a multipart stream for uploads). */
interface BotApiRequest {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Readable;
  readonly signal?: AbortSignal | null;
}

/** The part of a `fetch` response that grammY reads: the JSON body. */
interface BotApiAnswer {
  readonly ok: boolean;
  readonly status: number;
  json(): Promise<unknown>;
}

/** Options of {@link createBotApiTransport}. */
export interface BotApiTransportOptions {
  /** `http://host:port`; unset: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment. */
  readonly proxy?: string | undefined;
  /** The most bytes one answer may have. Default 16 MiB (100 updates of the largest kind fit). */
  readonly maxAnswerBytes?: number;
}

/** A `fetch` for grammY's API client, and the pool it sends through. */
export interface BotApiTransport {
  fetch(url: string, init: BotApiRequest): Promise<BotApiAnswer>;
  /** For requests of the adapter's own (file downloads): the same pool and proxy. */
  readonly dispatcher: Dispatcher;
  /** Closes the pool's connections. */
  close(): Promise<void>;
}

/** The answer's text, refused past `maxBytes` (the rest is not downloaded). */
async function readCapped(answer: Dispatcher.ResponseData, maxBytes: number): Promise<string> {
  const tooLong = (size: string) => {
    // Destroyed, the body reports an abort: that is this error, said here.
    answer.body.on('error', () => {}).destroy();
    return new Error(`the Bot API answer ${size}exceeds the ${maxBytes}-byte cap`);
  };
  const declared = Number(answer.headers['content-length']);
  if (declared > maxBytes) throw tooLong(`of ${declared} bytes `);
  // A declared length is held to by the HTTP parser: the body is read in one go.
  if (Number.isSafeInteger(declared)) return answer.body.text();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of answer.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLong('');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString();
}

/** Creates the transport; one per adapter. */
export function createBotApiTransport(options: BotApiTransportOptions = {}): BotApiTransport {
  const maxAnswerBytes = options.maxAnswerBytes ?? 16 * 1024 * 1024;
  const dispatcher = new EnvHttpProxyAgent({
    ...proxyRoute(options.proxy),
    // grammY ends a call itself (its own timeout, 500 s by default); a long poll waits 30 s.
    // Kept-alive connections to the Bot API, the long poll's included; calls beyond wait their turn.
    // More only costs memory: 64 carry about 640 calls a second at Telegram's 100 ms round trips,
    // beyond what the Bot API lets a bot send (30 messages a second without paid broadcasts).
    connections: 64,
    // A long poll waits 30 s for an answer; a connection silent for twice that is taken as dead
    // (grammY's own limit for a call is 500 s).
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  return {
    dispatcher,
    async fetch(url, init) {
      const answer = await request(url, {
        method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
        dispatcher,
        ...(init.headers && { headers: init.headers }),
        ...(init.body !== undefined && { body: init.body }),
        ...(init.signal && { signal: init.signal }),
      });
      const text = await readCapped(answer, maxAnswerBytes);
      const status = answer.statusCode;
      return {
        ok: status >= 200 && status < 300,
        status,
        json: async () => {
          try {
            return JSON.parse(text);
          } catch {
            // A proxy's HTML error page, say: grammY reports it as a failed request (an HttpError).
            throw new Error(`the Bot API answered HTTP ${status} with no JSON`);
          }
        },
      };
    },
    close: () => dispatcher.close(),
  };
}
