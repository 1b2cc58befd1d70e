/**
 * The bridge between node:http and the web's `Request` and `Response`: the request target as a
 * URL on the server's origin, the request body as a web stream capped at a limit, and a
 * `Response` written back to node:http as it streams, with backpressure. No routing, no
 * lifecycle: that is the server's (http-server.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ChorusError } from '../errors.ts';

/** A request body went over its route's `maxBodyBytes`: the request was answered 413. */
export class BodyTooLargeError extends ChorusError {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super('HTTP_BODY_TOO_LARGE', `request body over ${limit} bytes`);
  }
}
/**
 * The request target as a URL on `origin`, or undefined when it is not a path on that origin
 * (`//evil.example/x`) nor the absolute form proxies send (`GET http://host/path`).
 */
export function requestUrl(target: string | undefined, origin: string): URL | undefined {
  try {
    if (target?.startsWith('/')) {
      const url = new URL(target, origin);
      // `//evil.example/x` would otherwise leave the server's origin.
      return url.origin === new URL(origin).origin ? url : undefined;
    }
    // The absolute form (`GET http://host/path`), which proxies send.
    const absolute = target ? new URL(target) : undefined;
    return absolute && /^https?:$/.test(absolute.protocol)
      ? new URL(`${absolute.pathname}${absolute.search}`, origin)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes a Response: status and headers, then the body as it streams, with backpressure. With
 * `closeConnection`, the answer closes the connection (`Connection: close`). `signal` aborting
 * cancels the body and rejects.
 */
export async function writeResponse(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
  signal: AbortSignal,
  closeConnection: boolean,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) if (name !== 'set-cookie') headers[name] = value;
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  if (closeConnection) headers.connection = 'close';
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!response.body || req.method === 'HEAD') {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const stop = () => void reader.cancel(signal.reason).catch(() => {});
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    let next = reader.read();
    // Headers go out at once when the body is not ready (a stream of events); with the first
    // chunk when it is (one packet for a short answer).
    const ready = await Promise.race([
      next.then(() => true),
      new Promise<false>((resolve) => setImmediate(resolve, false)),
    ]);
    if (!ready) res.flushHeaders();
    for (;;) {
      const { done, value } = await next;
      if (done) break;
      if (!res.write(value)) await drained(res);
      if (signal.aborted) throw signal.reason;
      next = reader.read();
    }
    await new Promise<void>((resolve) => res.end(resolve));
  } finally {
    signal.removeEventListener('abort', stop);
    reader.releaseLock();
  }
}

/** Resolves once `res` can take more, or it closed. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** A request body being read, up to a limit. */
export interface CappedBody {
  readonly stream: ReadableStream<Uint8Array>;
  /** Settles once more than the limit arrived. */
  readonly overLimit: Promise<void>;
  readonly exceeded: boolean;
}

/**
 * The request body as a web stream that reads from the socket only as the handler reads, and
 * errors (and settles `overLimit`) once more than `limit` bytes arrived, without reading further.
 */
export function cappedBody(req: IncomingMessage, limit: number, signal: AbortSignal): CappedBody {
  let received = 0;
  let open = true;
  let exceeded = false;
  let signalOverLimit!: () => void;
  const overLimit = new Promise<void>((resolve) => (signalOverLimit = resolve));
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stopReading = () => {
    open = false;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    signal.removeEventListener('abort', onAbort);
    req.pause();
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) {
      exceeded = true;
      stopReading();
      controller.error(new BodyTooLargeError(limit));
      signalOverLimit();
      return;
    }
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = () => {
    stopReading();
    controller.close();
  };
  const onError = (error: Error) => {
    stopReading();
    controller.error(error);
  };
  const onAbort = () => {
    stopReading();
    controller.error(signal.reason);
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        req.on('data', onData);
        req.on('end', onEnd);
        req.on('error', onError);
        signal.addEventListener('abort', onAbort, { once: true });
        req.pause();
      },
      pull() {
        if (open) req.resume();
      },
      cancel() {
        if (open) stopReading();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
  return {
    stream,
    overLimit,
    get exceeded() {
      return exceeded;
    },
  };
}
