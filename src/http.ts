/**
 * HTTP as plugins see it: the `Http` client interface (the runtime's undici client implements it,
 * with proxies, timeouts and the private-network guard) and the readers for its answers: JSON,
 * bounded bytes, Server-Sent Events and NDJSON, each capped while it streams.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { BackendError, ChorusError } from './errors.ts';

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
  /**
   * The URL came from a remote answer, not from the config: it may lead only to `ownOrigin` or to
   * a public address. Redirects are checked the same way whatever this says. Default false.
   */
  readonly untrusted?: boolean;
  /**
   * The origin of the backend behind this request (`http://127.0.0.1:8080`): it may be private.
   * Default: the request URL's own origin, unless `untrusted`.
   */
  readonly ownOrigin?: string | undefined;
  /** Let this request (and its redirects) reach private addresses. Default false. */
  readonly allowPrivateNetwork?: boolean | undefined;
}

/** An HTTP answer: the standard `Response`. */
export type HttpResponse = Response;

/**
 * An HTTP client: what `ctx.http` is. The runtime's `HttpClient` (undici) is the one a bot runs
 * with; a test may pass its own.
 */
export interface Http {
  /** A client with `overrides` applied (a backend's own proxy or timeouts). */
  with(overrides: HttpOptions): Http;
  /**
   * Sends a request and resolves with a 2xx response; anything else throws a `BackendError`
   * (`status` with a short excerpt of the body, `network`, `timeout`, or `blocked`). An aborted
   * `signal` rejects with the signal's reason.
   */
  request(url: string, request: HttpRequest): Promise<HttpResponse>;
  /** Closes the client's connection pools. */
  close(): Promise<void>;
}

/** Maps a fetch failure to what it means: the caller aborted, a timeout, or the network failed. */
export function toBackendError(backend: string, error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof BackendError) return error;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof BackendError) {
    // Refused by the connector, which does not know the backend's name.
    const message = cause.message.replace(/^connect:/, `${backend}:`);
    return new BackendError(backend, cause.kind, message, { cause });
  }
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
 * The client of a bot made without one: every request fails with a `ChorusError` that says what to
 * pass. The runtime always passes a real client.
 */
export const missingHttp: Http = {
  with: () => missingHttp,
  request: async () => {
    throw new ChorusError(
      'NO_HTTP',
      'this bot was made without an HTTP client: pass `http: new HttpClient()` to createBot',
    );
  },
  close: async () => {},
};

/** Bytes that several reads share, such as every image of one draw. */
export class ByteBudget {
  readonly total: number;
  #left: number;

  constructor(total: number) {
    if (!(Number.isInteger(total) && total >= 0))
      throw new TypeError(`total must be an integer >= 0, got ${String(total)}`);
    this.total = total;
    this.#left = total;
  }

  /** Bytes not spent yet. */
  get left(): number {
    return this.#left;
  }

  /** Spends `bytes` if that many are left; otherwise spends nothing and returns false. */
  spend(bytes: number): boolean {
    if (bytes > this.#left) return false;
    this.#left -= bytes;
    return true;
  }
}

/**
 * Reads at most `maxBytes` of a body, spending them from `budget` too when one is given; more is
 * a `BackendError` (`invalid`), and the rest of the body is not downloaded.
 */
export async function readBytes(
  response: HttpResponse,
  backend: string,
  maxBytes: number,
  budget?: ByteBudget,
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const reader = response.body?.getReader();
  // The body is cancelled with the reason, so whoever watches it knows why it was not read.
  const over = (what: string) => {
    const error = new BackendError(backend, 'invalid', `${backend}: ${what}`);
    void reader?.cancel(error).catch(() => {});
    return error;
  };
  if (declared > maxBytes) throw over(`answer of ${declared} bytes exceeds the ${maxBytes}-byte cap`);
  if (budget && declared > budget.left)
    throw over(`answer of ${declared} bytes exceeds the ${budget.left} bytes left of ${budget.total}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const step = await reader?.read();
      if (!step || step.done) break;
      const chunk = step.value;
      size += chunk.byteLength;
      if (size > maxBytes) throw over(`answer exceeds the ${maxBytes}-byte cap`);
      if (budget && !budget.spend(chunk.byteLength))
        throw over(`answers exceed the ${budget.total}-byte budget they share`);
      chunks.push(chunk);
    }
  } catch (error) {
    throw toBackendError(backend, error);
  } finally {
    reader?.releaseLock();
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
 * Reads a JSON body of at most `maxBytes` (spent from `budget` too, when given). An answer that
 * is not JSON (an HTML error page from a proxy, say) is a `BackendError` (`invalid`) that says
 * what came instead.
 */
export async function readJson(
  response: HttpResponse,
  backend: string,
  maxBytes = 8 * 1024 * 1024,
  budget?: ByteBudget,
): Promise<unknown> {
  const bytes = await readBytes(response, backend, maxBytes, budget);
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

/** Longest line (or unfinished event) a stream reader keeps before it gives up: 1 MiB. */
export const maxLineChars = 1024 * 1024;

/**
 * Parses a Server-Sent Events body (eventsource-parser) into events as they arrive. Comment lines
 * are skipped. Ends when the body ends. A line or event longer than `maxChars` is a `BackendError`
 * (`invalid`), raised as soon as the buffer passes it, and the rest is not downloaded.
 */
export async function* readSse(
  body: Body,
  backend: string,
  maxChars = maxLineChars,
): AsyncGenerator<EventSourceMessage> {
  const pending: EventSourceMessage[] = [];
  let failure: BackendError | undefined;
  const parser = createParser({
    onEvent: (event) => pending.push(event),
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded')
        failure = new BackendError(
          backend,
          'invalid',
          `${backend}: a stream event over ${maxChars} characters`,
        );
    },
    maxBufferSize: maxChars,
  });
  for await (const text of decodeText(body, backend)) {
    parser.feed(text);
    yield* pending.splice(0);
    if (failure) throw failure;
  }
  parser.feed('\n\n'); // flush an event the server did not terminate
  yield* pending.splice(0);
  if (failure) throw failure;
}

/**
 * Parses a newline-delimited JSON body into values as lines arrive. A line that is not JSON, or
 * one longer than `maxChars`, is a `BackendError` (`invalid`).
 */
export async function* readNdjson(
  body: Body,
  backend: string,
  maxChars = maxLineChars,
): AsyncGenerator<unknown> {
  let buffer = '';
  const parse = (line: string) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new BackendError(backend, 'invalid', `${backend}: bad NDJSON line: ${line.slice(0, 120)}`);
    }
  };
  const tooLong = () =>
    new BackendError(backend, 'invalid', `${backend}: an NDJSON line over ${maxChars} characters`);
  for await (const text of decodeText(body, backend)) {
    buffer += text;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      if (newline > maxChars) throw tooLong();
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield parse(line);
      newline = buffer.indexOf('\n');
    }
    if (buffer.length > maxChars) throw tooLong();
  }
  if (buffer.trim()) yield parse(buffer.trim());
}
