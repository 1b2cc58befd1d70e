/**
 * Image backends: each turns a prompt into images (bytes), or fails with a `BackendError` that says
 * how. URLs in answers are downloaded at once (they expire), a few at a time, at most `maxImages`
 * of them, each under `maxImageBytes` and all under the draw's byte budget, with a check that the
 * bytes really are an image. A URL in an answer is untrusted: it may lead to the backend's own
 * origin or to a public address, never elsewhere on the private network unless the backend
 * allows it.
 */
import {
  BackendError,
  ByteBudget,
  createLimiter,
  type Http,
  readBytes,
  readJson,
  wellFormed,
} from 'chorus-bot';
import type { BackendConfig } from './config.ts';

/** One generated image. */
export interface Image {
  readonly data: Uint8Array;
  readonly mimeType: string;
}

/** A configured backend. */
export interface ImageBackend {
  readonly name: string;
  readonly timeoutMs: number;
  readonly concurrency: number;
  /** Draws; `budget` holds the bytes the whole draw may still download. */
  generate(prompt: string, signal: AbortSignal, budget?: ByteBudget): Promise<Image[]>;
}

/** The image type of `bytes` by signature, or undefined for anything else (HTML, JSON, text). */
export function sniffImage(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46 && bytes[3] === 0x38) return 'image/gif';
  if (bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) return 'image/webp';
  return undefined;
}

/** Checks that `bytes` are an image, naming what came instead. */
export function asImage(backend: string, bytes: Uint8Array, contentType: string | null): Image {
  const mimeType = sniffImage(bytes);
  if (mimeType) return { data: bytes, mimeType };
  const head = new TextDecoder().decode(bytes.subarray(0, 200));
  const what = /<html|<!doctype/i.test(head) ? 'HTML' : (contentType ?? 'unknown data');
  throw new BackendError(backend, 'invalid', `${backend}: answered ${what}, not an image`);
}

/** Values at `path` in `value`: `data[].url` walks every item of `data`. */
export function pick(value: unknown, path: string): unknown[] {
  let current: unknown[] = [value];
  for (const segment of path.split('.').filter(Boolean)) {
    const many = segment.endsWith('[]');
    const key = many ? segment.slice(0, -2) : segment;
    current = current.flatMap((item) => {
      const next =
        key === ''
          ? item
          : item && typeof item === 'object'
            ? (item as Record<string, unknown>)[key]
            : undefined;
      if (!many) return next === undefined ? [] : [next];
      return Array.isArray(next) ? next : [];
    });
  }
  return current;
}

/** `{prompt}` in a URL template, URL-encoded. */
export function fillUrl(template: string, prompt: string): string {
  return template.replaceAll('{prompt}', encodeURIComponent(wellFormed(prompt)));
}

/** `{prompt}` in every string of a JSON body. */
export function fillBody(body: unknown, prompt: string): unknown {
  if (typeof body === 'string') return body.replaceAll('{prompt}', prompt);
  if (Array.isArray(body)) return body.map((item) => fillBody(item, prompt));
  if (body && typeof body === 'object') {
    return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, fillBody(v, prompt)]));
  }
  return body;
}

interface Deps {
  readonly http: Http;
  readonly maxImageBytes: number;
  /** Images taken from one answer. Default 10. */
  readonly maxImages?: number;
  /** Base URL of the built-in demo server, when a demo backend is configured. */
  readonly demoUrl?: string | undefined;
}

/** Builds a backend from its config. */
export function createImageBackend(config: BackendConfig, deps: Deps): ImageBackend {
  const http = deps.http.with({ proxy: config.proxy });
  const { name } = config;
  const headers: Record<string, string> = {
    'user-agent': 'chorus-draw',
    ...(config.apiKey && { authorization: `Bearer ${config.apiKey}` }),
    ...config.headers,
  };

  const maxImages = deps.maxImages ?? 10;
  const ownOrigin =
    config.type === 'openai-images'
      ? new URL(config.baseUrl).origin
      : config.type === 'demo'
        ? deps.demoUrl && new URL(deps.demoUrl).origin
        : new URL(fillUrl(config.url, '')).origin;
  const tooBig = () =>
    new BackendError(name, 'invalid', `${name}: image over the ${deps.maxImageBytes}-byte cap`);

  // Base64 images came inside the answer, whose bytes the budget has already paid for.
  const decoded = (base64: string, type: string | null): Image => {
    // Check the size the text stands for before decoding any of it.
    if (Math.floor((base64.length * 3) / 4) > deps.maxImageBytes + 2) throw tooBig();
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.length > deps.maxImageBytes) throw tooBig();
    return asImage(name, new Uint8Array(bytes), type);
  };

  const download = async (url: string, signal: AbortSignal, budget: ByteBudget): Promise<Image> => {
    if (url.startsWith('data:')) {
      const match = /^data:([^;,]+)?(;base64)?,/.exec(url.slice(0, 200));
      if (!match?.[2]) throw new BackendError(name, 'invalid', `${name}: a data: URL that is not base64`);
      return decoded(url.slice(match[0].length), match[1] ?? null);
    }
    const response = await http.request(url, {
      backend: name,
      signal,
      headers: { 'user-agent': headers['user-agent']! },
      untrusted: true,
      ownOrigin,
      allowPrivateNetwork: config.allowPrivateNetwork,
    });
    return asImage(
      name,
      await readBytes(response, name, deps.maxImageBytes, budget),
      response.headers.get('content-type'),
    );
  };

  /**
   * The first `maxImages` of `found`, downloaded (or decoded) four at a time. The first failure
   * fails them all and aborts the downloads still running or waiting.
   */
  const collect = async <T>(
    found: readonly T[],
    signal: AbortSignal,
    get: (item: T, signal: AbortSignal) => Promise<Image | undefined> | Image | undefined,
  ): Promise<(Image | undefined)[]> => {
    const controller = new AbortController();
    const stop = () => controller.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const downloads = createLimiter(4);
    try {
      return await Promise.all(
        found
          .slice(0, maxImages)
          .map((item) => downloads.run(async (s) => get(item, s), { signal: controller.signal })),
      );
    } finally {
      controller.abort();
      signal.removeEventListener('abort', stop);
    }
  };

  // A JSON answer may carry every image in base64: it spends from the draw's budget too.
  const requestJson = async (url: string, body: unknown, signal: AbortSignal, budget: ByteBudget) => {
    const response = await http.request(url, {
      backend: name,
      signal,
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      allowPrivateNetwork: config.allowPrivateNetwork,
    });
    return readJson(response, name, budget.left, budget);
  };

  const fromOpenAiAnswer = async (
    answer: unknown,
    signal: AbortSignal,
    budget: ByteBudget,
  ): Promise<Image[]> => {
    const items = pick(answer, 'data[]') as { url?: unknown; b64_json?: unknown }[];
    const images = await collect(
      items.filter((item) => typeof item?.b64_json === 'string' || typeof item?.url === 'string'),
      signal,
      (item, s) => {
        if (typeof item.b64_json === 'string') return decoded(item.b64_json, null);
        return download(item.url as string, s, budget);
      },
    );
    const found = images.filter((image): image is Image => image !== undefined);
    if (found.length === 0) throw new BackendError(name, 'invalid', `${name}: the answer held no images`);
    return found;
  };

  const defaultBudget = () => new ByteBudget(maxImages * deps.maxImageBytes);
  const base = { name, timeoutMs: config.timeoutMs, concurrency: config.concurrency };
  switch (config.type) {
    case 'openai-images':
      return {
        ...base,
        async generate(prompt, signal, budget = defaultBudget()) {
          const body = { model: config.model, prompt, size: config.size, n: config.n };
          return fromOpenAiAnswer(
            await requestJson(
              `${config.baseUrl.replace(/\/$/, '')}/images/generations`,
              body,
              signal,
              budget,
            ),
            signal,
            budget,
          );
        },
      };
    case 'demo':
      return {
        ...base,
        async generate(prompt, signal, budget = defaultBudget()) {
          if (!deps.demoUrl)
            throw new BackendError(name, 'network', `${name}: the demo server is not running`);
          const body = {
            model: name,
            prompt,
            n: config.n,
            latency_ms: config.latencyMs,
            fail_rate: config.failRate,
          };
          return fromOpenAiAnswer(
            await requestJson(`${deps.demoUrl}/v1/images/generations`, body, signal, budget),
            signal,
            budget,
          );
        },
      };
    case 'http-json':
      return {
        ...base,
        async generate(prompt, signal, budget = defaultBudget()) {
          const body = config.method === 'POST' ? fillBody(config.body ?? { prompt }, prompt) : undefined;
          const answer = await requestJson(fillUrl(config.url, prompt), body, signal, budget);
          const urls = pick(answer, config.imagePath).filter((url): url is string => typeof url === 'string');
          if (urls.length === 0) {
            throw new BackendError(
              name,
              'invalid',
              `${name}: no image URLs at ${config.imagePath} in the answer`,
            );
          }
          return collect(urls, signal, (url, s) => download(url, s, budget)) as Promise<Image[]>;
        },
      };
    case 'http-image':
      return {
        ...base,
        async generate(prompt, signal, budget = defaultBudget()) {
          const body =
            config.method === 'POST'
              ? JSON.stringify(fillBody(config.body ?? { prompt }, prompt))
              : undefined;
          const response = await http.request(fillUrl(config.url, prompt), {
            backend: name,
            signal,
            method: config.method,
            headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
            ...(body !== undefined && { body }),
            allowPrivateNetwork: config.allowPrivateNetwork,
          });
          return [
            asImage(
              name,
              await readBytes(response, name, deps.maxImageBytes, budget),
              response.headers.get('content-type'),
            ),
          ];
        },
      };
  }
}
