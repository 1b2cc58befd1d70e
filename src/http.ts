/**
 * HTTP for plugins and backends, through undici: a proxy from the config or from
 * `HTTPS_PROXY`/`HTTP_PROXY` (loopback is never proxied), connect / first-byte / idle timeouts,
 * the caller's AbortSignal all the way down, and readers for JSON, bounded bytes, Server-Sent
 * Events and NDJSON streams. Failures become `BackendError`s that say whether the network failed,
 * the remote refused, or the answer was unusable.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { type Dispatcher, EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import { BackendError } from './errors.ts';

/** Options of an HTTP client. */
export interface HttpOptions {
  /** `http://host:port` proxy for every request but loopback. Default: `HTTPS_PROXY` / `HTTP_PROXY`. */
  readonly proxy?: string | undefined;
  /** Time to establish a connection. Default 10 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** Time from sending the request to the response headers. Default 60 s. */
  readonly firstByteTimeoutMs?: number | undefined;
  /** Longest silence while reading a body. Default 60 s. */
  readonly idleTimeoutMs?: number | undefined;
}

/** One request. `backend` names the service in errors and logs. */
export interface HttpRequest {
  readonly backend: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  readonly signal?: AbortSignal | undefined;
}

/** The response type undici returns (the standard `Response` shape). */
export type HttpResponse = Awaited<ReturnType<typeof undiciFetch>>;

const loopback = 'localhost,127.0.0.1,::1,[::1]';

/**
 * An HTTP client with its own connection pool. Make one per set of options and reuse it;
 * `with()` derives a client with some options changed (a backend's own proxy or timeouts).
 */
export class HttpClient {
  readonly options: HttpOptions;
  readonly #dispatcher: Dispatcher;
  readonly #derived = new Map<string, HttpClient>();

  constructor(options: HttpOptions = {}) {
    this.options = options;
    const proxy = options.proxy;
    this.#dispatcher = new EnvHttpProxyAgent({
      ...(proxy ? { httpProxy: proxy, httpsProxy: proxy } : {}),
      noProxy: proxy
        ? loopback
        : [process.env.NO_PROXY ?? process.env.no_proxy, loopback].filter(Boolean).join(','),
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
      headersTimeout: options.firstByteTimeoutMs ?? 60_000,
      bodyTimeout: options.idleTimeoutMs ?? 60_000,
    });
  }

  /** A client with `overrides` applied; the same overrides give the same client. */
  with(overrides: HttpOptions): HttpClient {
    const merged = { ...this.options, ...definedOnly(overrides) };
    const key = JSON.stringify(merged);
    let client = this.#derived.get(key);
    if (!client) {
      client = new HttpClient(merged);
      this.#derived.set(key, client);
    }
    return client;
  }

  /**
   * Sends a request. Resolves with a response whose status is 2xx; anything else throws a
   * `BackendError` (`status` with a short excerpt of the body, `network`, or `timeout`). An aborted
   * `signal` rejects with the signal's reason.
   */
  async request(url: string, request: HttpRequest): Promise<HttpResponse> {
    let response: HttpResponse;
    try {
      response = await undiciFetch(url, {
        method: request.method ?? (request.body === undefined ? 'GET' : 'POST'),
        dispatcher: this.#dispatcher,
        ...(request.headers && { headers: request.headers }),
        ...(request.body !== undefined && { body: request.body }),
        ...(request.signal && { signal: request.signal }),
      });
    } catch (error) {
      throw toBackendError(request.backend, error, request.signal);
    }
    if (!response.ok) {
      const excerpt = await response.text().then(
        (text) => text.replace(/\s+/g, ' ').slice(0, 200),
        () => '',
      );
      throw new BackendError(
        request.backend,
        'status',
        `${request.backend} answered HTTP ${response.status}: ${excerpt}`,
        {
          status: response.status,
        },
      );
    }
    return response;
  }

  /** Closes the connection pools of this client and every client derived from it. */
  async close(): Promise<void> {
    await Promise.all([
      this.#dispatcher.close(),
      ...[...this.#derived.values()].map((client) => client.close()),
    ]);
  }
}

function definedOnly(options: HttpOptions): HttpOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** Maps a fetch failure to what it means: the caller aborted, a timeout, or the network failed. */
export function toBackendError(backend: string, error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof BackendError) return error;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT')
    return new BackendError(backend, 'timeout', `${backend}: connect timed out`, { cause });
  if (code === 'UND_ERR_HEADERS_TIMEOUT')
    return new BackendError(backend, 'timeout', `${backend}: no response in time`, { cause });
  if (code === 'UND_ERR_BODY_TIMEOUT')
    return new BackendError(backend, 'timeout', `${backend}: went silent mid-answer`, { cause });
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new BackendError(backend, 'network', `${backend}: network error (${detail})`, { cause });
}

/**
 * Reads at most `maxBytes` of a body; more is a `BackendError` (`invalid`), and the rest of the
 * body is not downloaded.
 */
export async function readBytes(
  response: HttpResponse,
  backend: string,
  maxBytes: number,
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw new BackendError(
      backend,
      'invalid',
      `${backend}: answer of ${declared} bytes exceeds the ${maxBytes}-byte cap`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        await response.body?.cancel().catch(() => {});
        throw new BackendError(backend, 'invalid', `${backend}: answer exceeds the ${maxBytes}-byte cap`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw toBackendError(backend, error);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Reads a JSON body. An answer that is not JSON (an HTML error page from a proxy, say) is a
 * `BackendError` (`invalid`) that says what came instead.
 */
export async function readJson(
  response: HttpResponse,
  backend: string,
  maxBytes = 8 * 1024 * 1024,
): Promise<unknown> {
  const bytes = await readBytes(response, backend, maxBytes);
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const type = response.headers.get('content-type') ?? 'no content type';
    const what = /<html|<!doctype/i.test(text.slice(0, 500)) ? 'HTML' : type;
    throw new BackendError(
      backend,
      'invalid',
      `${backend}: expected JSON, got ${what}: ${text.replace(/\s+/g, ' ').slice(0, 120)}`,
    );
  }
}

/** A response or its body. */
export type Body = HttpResponse | AsyncIterable<Uint8Array>;

function chunksOf(body: Body): AsyncIterable<Uint8Array> {
  if (Symbol.asyncIterator in body) return body;
  return (body.body as AsyncIterable<Uint8Array> | null) ?? (async function* () {})();
}

/** Decodes a byte stream to text pieces, keeping multi-byte characters split across chunks whole. */
async function* decodeText(body: Body, backend: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of chunksOf(body)) {
      const text = decoder.decode(chunk, { stream: true });
      if (text) yield text;
    }
  } catch (error) {
    throw toBackendError(backend, error);
  }
  const tail = decoder.decode();
  if (tail) yield tail;
}

/**
 * Parses a Server-Sent Events body (eventsource-parser) into events as they arrive. Comment lines
 * are skipped. Ends when the body ends.
 */
export async function* readSse(body: Body, backend: string): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event) });
  for await (const text of decodeText(body, backend)) {
    parser.feed(text);
    yield* pending.splice(0);
  }
  parser.feed('\n\n'); // flush an event the server did not terminate
  yield* pending.splice(0);
}

/**
 * Parses a newline-delimited JSON body into values as lines arrive. A line that is not JSON is a
 * `BackendError` (`invalid`).
 */
export async function* readNdjson(body: Body, backend: string): AsyncGenerator<unknown> {
  let buffer = '';
  const parse = (line: string) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new BackendError(backend, 'invalid', `${backend}: bad NDJSON line: ${line.slice(0, 120)}`);
    }
  };
  for await (const text of decodeText(body, backend)) {
    buffer += text;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield parse(line);
      newline = buffer.indexOf('\n');
    }
  }
  if (buffer.trim()) yield parse(buffer.trim());
}
