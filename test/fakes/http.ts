/**
 * A programmable HTTP server on 127.0.0.1 for tests: each route is a handler that may answer
 * slowly, in pieces, or not at all. Closes every connection on `close()`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

export interface FakeServer {
  readonly url: string;
  readonly port: number;
  /** Requests seen, in order. */
  readonly requests: { method: string; path: string; headers: IncomingMessage['headers']; body: Buffer }[];
  /** Requests whose client went away before the answer was complete. */
  readonly aborted: string[];
  route(method: string, path: string, handler: Route): void;
  close(): Promise<void>;
}

/** Starts a fake HTTP server on a free loopback port. */
export async function startFakeServer(): Promise<FakeServer> {
  const routes = new Map<string, Route>();
  const sockets = new Set<Socket>();
  const requests: FakeServer['requests'] = [];
  const aborted: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body });
    res.on('close', () => {
      if (!res.writableFinished) aborted.push(path);
    });
    const handler = routes.get(`${req.method} ${path}`);
    if (!handler) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no route"}');
      return;
    }
    try {
      await handler(req, res, body);
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    aborted,
    route: (method, path, handler) => void routes.set(`${method} ${path}`, handler),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A forward proxy on 127.0.0.1 that sends every request, whatever host it names, to `target`.
 * It records the hosts asked for, so a test can tell that traffic went through it.
 */
export async function startFakeProxy(target: { port: number }): Promise<{
  url: string;
  hosts: string[];
  close(): Promise<void>;
}> {
  const hosts: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    hosts.push(new URL(req.url ?? '/').host);
    const upstream = connect(target.port, '127.0.0.1', () => {
      const path = new URL(req.url ?? '/').pathname;
      upstream.write(`${req.method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    });
    upstream.pipe(res.socket!);
  });
  server.on('connect', (req, socket: Socket, head) => {
    hosts.push(req.url ?? '');
    const upstream = connect(target.port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    sockets.add(socket).add(upstream);
  });
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hosts,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
