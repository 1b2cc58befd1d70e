/**
 * The bot's HTTP client, through undici: a proxy from the config or from
 * `HTTPS_PROXY`/`HTTP_PROXY` (loopback is never proxied), connect / first-byte / idle timeouts,
 * the caller's AbortSignal all the way down (the readers for its answers are in the core's
 * `http.ts`). Failures become `BackendError`s that say whether the network failed,
 * the remote refused, or the answer was unusable.
 *
 * Every read is capped while it streams: an error body is read for a short excerpt and dropped,
 * lines of a stream and whole answers have a size limit. Redirects are followed here, hop by hop:
 * a hop to another origin drops the request's headers, and a hop (or an untrusted URL) that leads
 * to a non-public address is refused unless the request allows the private network.
 */
import { type Dispatcher, EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import { BackendError } from '../errors.ts';
import { type Http, type HttpOptions, type HttpRequest, type HttpResponse, toBackendError } from '../http.ts';
import { assertPublicHost, httpUrl, publicOnlyConnector } from './net-guard.ts';

const loopback = 'localhost,127.0.0.1,::1,[::1]';

/**
 * Where requests go, for undici's `EnvHttpProxyAgent`: through `proxy` when one is given
 * (`http.proxy`), otherwise as `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` say; loopback never
 * through a proxy.
 */
export function proxyRoute(proxy: string | undefined): {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy: string;
} {
  if (proxy) return { httpProxy: proxy, httpsProxy: proxy, noProxy: loopback };
  return { noProxy: [process.env.NO_PROXY ?? process.env.no_proxy, loopback].filter(Boolean).join(',') };
}

/** Redirects followed per request. */
export const maxRedirects = 5;

/** Bytes of an error answer read for the excerpt in the log; the rest is never downloaded. */
export const errorExcerptBytes = 4096;

/** Headers that may follow a redirect to another origin; every other header is dropped. */
const portableHeaders = new Set(['user-agent', 'accept', 'accept-language', 'content-type']);

/**
 * An HTTP client with its own connection pool. Make one per set of options and reuse it;
 * `with()` derives a client with some options changed (a backend's own proxy or timeouts).
 */
export class HttpClient implements Http {
  readonly options: HttpOptions;
  readonly #dispatcher: Dispatcher;
  readonly #publicOnly: Dispatcher;
  readonly #derived = new Map<string, HttpClient>();

  constructor(options: HttpOptions = {}) {
    this.options = options;
    const proxy = options.proxy;
    const proxyOptions = {
      ...proxyRoute(proxy),
      headersTimeout: options.firstByteTimeoutMs ?? 60_000,
      bodyTimeout: options.idleTimeoutMs ?? 60_000,
    };
    const connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.#dispatcher = new EnvHttpProxyAgent({ ...proxyOptions, connect: { timeout: connectTimeout } });
    // For untrusted hops: every direct connection is checked where it landed. The proxy itself
    // (configured, so trusted) is exempt; through it, the name was checked before the request.
    const { HTTPS_PROXY, https_proxy, HTTP_PROXY, http_proxy } = process.env;
    const proxies = [proxy, HTTPS_PROXY, https_proxy, HTTP_PROXY, http_proxy].flatMap((value) =>
      value && URL.canParse(value) ? [new URL(value).hostname] : [],
    );
    this.#publicOnly = new EnvHttpProxyAgent({
      ...proxyOptions,
      connect: publicOnlyConnector({ timeout: connectTimeout, exempt: proxies }),
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
   * Sends a request, following up to {@link maxRedirects} redirects. Resolves with a response
   * whose status is 2xx; anything else throws a `BackendError` (`status` with a short excerpt of
   * the body, `network`, `timeout`, or `blocked` for a URL that leads somewhere refused). An
   * aborted `signal` rejects with the signal's reason.
   */
  async request(url: string, request: HttpRequest): Promise<HttpResponse> {
    const { backend, signal } = request;
    let target = httpUrl(url, backend);
    const ownOrigin = request.ownOrigin ?? (request.untrusted ? undefined : target.origin);
    let method = request.method ?? (request.body === undefined ? 'GET' : 'POST');
    let body = request.body;
    let headers = { ...request.headers };
    let checked = request.untrusted === true;
    for (let hop = 0; ; hop++) {
      const guarded = checked && target.origin !== ownOrigin && request.allowPrivateNetwork !== true;
      let response: HttpResponse;
      try {
        if (guarded) await assertPublicHost(target, backend);
        response = await undiciFetch(target, {
          method,
          redirect: 'manual',
          dispatcher: guarded ? this.#publicOnly : this.#dispatcher,
          headers,
          ...(body !== undefined && { body }),
          ...(signal && { signal }),
        });
      } catch (error) {
        throw toBackendError(backend, error, signal);
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel().catch(() => {});
        if (hop >= maxRedirects)
          throw new BackendError(backend, 'invalid', `${backend}: more than ${maxRedirects} redirects`);
        const next = httpUrl(new URL(location, target), backend);
        if (next.origin !== target.origin) headers = portable(headers);
        if (
          response.status === 303 ||
          ((response.status === 301 || response.status === 302) && method === 'POST')
        ) {
          method = 'GET';
          body = undefined;
          delete headers['content-type'];
        }
        target = next;
        checked = true;
        continue;
      }
      if (!response.ok) {
        const excerpt = await readExcerpt(response, errorExcerptBytes);
        throw new BackendError(backend, 'status', `${backend} answered HTTP ${response.status}: ${excerpt}`, {
          status: response.status,
        });
      }
      return response;
    }
  }

  /** Closes the connection pools of this client and every client derived from it. */
  async close(): Promise<void> {
    await Promise.all([
      this.#dispatcher.close(),
      this.#publicOnly.close(),
      ...[...this.#derived.values()].map((client) => client.close()),
    ]);
  }
}

function portable(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => portableHeaders.has(name.toLowerCase())),
  );
}

/** At most `maxBytes` of a body as one line of text; then the body is cancelled, not downloaded. */
async function readExcerpt(response: HttpResponse, maxBytes: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const step = await reader.read();
      if (step.done) break;
      chunks.push(step.value);
      size += step.value.byteLength;
    }
  } catch {
    // A body that fails mid-way still gives what came before.
  } finally {
    await reader.cancel().catch(() => {});
  }
  const text = new TextDecoder().decode(Buffer.concat(chunks).subarray(0, maxBytes));
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function definedOnly(options: HttpOptions): HttpOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}
