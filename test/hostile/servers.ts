/**
 * A hostile backend and an internal service, both on 127.0.0.1. The hostile one answers with
 * endless bodies, huge error bodies, streams without a newline, redirect chains, floods of URLs
 * and echoes of the request's headers; it counts the bytes it managed to send before the reader
 * hung up. The internal service stands for anything on the private network: it only counts the
 * requests that reached it.
 */
import type { ServerResponse } from 'node:http';
import { drained } from '../../src/runtime/http-bridge.ts';
import { type FakeServer, startFakeServer } from '../fakes/http.ts';
import { labelledPng } from '../fakes/images.ts';

export interface Hostile {
  readonly server: FakeServer;
  readonly url: string;
  /** Bytes each endless route wrote before the client went away, by path. */
  readonly sent: Map<string, number>;
  close(): Promise<void>;
}

export interface Internal {
  readonly server: FakeServer;
  readonly url: string;
  /** Requests that reached the internal service. */
  hits(): number;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * Writes `chunk` again and again, honouring back-pressure, until the client goes away or `limit`
 * bytes went out; `record` hears of every chunk the socket accepted.
 */
export async function writeEndless(
  res: ServerResponse,
  chunk: Buffer,
  record: (bytes: number) => void,
  limit = 2048 * MiB,
): Promise<void> {
  let sent = 0;
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  while (!closed && sent < limit) {
    const more = res.write(chunk);
    sent += chunk.length;
    record(chunk.length);
    if (!more) {
      await drained(res);
    }
  }
  res.end();
}

/** The internal service: every request is counted; it answers a small valid image. */
export async function startInternal(): Promise<Internal> {
  const server = await startFakeServer();
  const image = labelledPng('internal');
  for (const path of ['/admin/delete-everything', '/secret.png', '/latest/meta-data'])
    server.route(
      'GET',
      path,
      (_, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(image),
    );
  return { server, url: server.url, hits: () => server.requests.length, close: () => server.close() };
}

/** The hostile backend. Routes are added by each test with `server.route`. */
export async function startHostile(): Promise<Hostile> {
  const server = await startFakeServer();
  const sent = new Map<string, number>();
  return { server, url: server.url, sent, close: () => server.close() };
}

/** Routes of the hostile backend that several tests use. */
export function hostileRoutes(hostile: Hostile, internal: Internal): void {
  const { server, sent } = hostile;
  const record = (path: string) => (bytes: number) => void sent.set(path, (sent.get(path) ?? 0) + bytes);
  const json = (res: ServerResponse, value: unknown, status = 200) =>
    void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));

  // An error whose body never ends.
  server.route('POST', '/huge-error/images/generations', (_, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    return writeEndless(res, Buffer.alloc(64 * 1024, 'x'), record('/huge-error'));
  });
  // An "image" whose body never ends (no content-length).
  server.route('GET', '/endless.png', (_, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.write(labelledPng('start'));
    return writeEndless(res, Buffer.alloc(64 * 1024, 7), record('/endless.png'));
  });
  server.route(
    'GET',
    '/own.png',
    (_, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(labelledPng('own')),
  );
  // Three hops, the last into the internal service.
  server.route('GET', '/hop1', (_, res) => void res.writeHead(302, { location: '/hop2' }).end());
  server.route(
    'GET',
    '/hop2',
    (_, res) => void res.writeHead(307, { location: `${hostile.url}/hop3` }).end(),
  );
  server.route(
    'GET',
    '/hop3',
    (_, res) => void res.writeHead(301, { location: `${internal.url}/admin/delete-everything` }).end(),
  );
  // Answers pointing at the image URLs a test names in the prompt: `/urls/images/generations`.
  server.route('POST', '/urls/images/generations', (_, res, body) => {
    const { prompt } = JSON.parse(body.toString()) as { prompt: string };
    json(res, { data: prompt.split(' ').map((url) => ({ url })) });
  });
  // A flood: 2,000 URLs of one small image on the backend's own origin.
  let flood = 0;
  server.route('GET', '/flood.png', (_, res) => {
    flood++;
    res.writeHead(200, { 'content-type': 'image/png' }).end(labelledPng(`flood${flood}`));
  });
  server.route('POST', '/flood/images/generations', (_, res) =>
    json(res, { data: Array.from({ length: 2000 }, (_, i) => ({ url: `${hostile.url}/flood.png?${i}` })) }),
  );
  // 150 URLs of a 19 MiB image each.
  server.route('POST', '/big/images/generations', (_, res) =>
    json(res, { data: Array.from({ length: 150 }, (_, i) => ({ url: `${hostile.url}/big.png?${i}` })) }),
  );
  server.route('GET', '/big.png', (_, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.write(labelledPng('big'));
    return writeEndless(res, Buffer.alloc(MiB, 1), record('/big.png'), 19 * MiB);
  });
  // Echoes the request's headers back in an error.
  server.route('POST', '/echo/images/generations', (req, res) =>
    json(res, { error: { message: `bad key: ${JSON.stringify(req.headers)}` } }, 401),
  );
}
