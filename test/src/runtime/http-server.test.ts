import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RouteTable } from '../../../src/http-routes.ts';
import { createLogger } from '../../../src/logger.ts';
import { BodyTooLargeError, HttpServer, type HttpServerOptions } from '../../../src/runtime/http-server.ts';
import { FakeClock } from '../../../src/testing.ts';
import { eventually } from '../../adapters/contract.ts';

const servers: HttpServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

function serve(options: HttpServerOptions = {}) {
  const lines: string[] = [];
  const server = new HttpServer({
    port: 0,
    log: createLogger({ level: 'debug', write: (line) => lines.push(line) }),
    ...options,
  });
  servers.push(server);
  return { server, lines };
}

/** A promise and the function that resolves it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/**
 * POSTs `total` bytes in 64 KiB chunks (chunked, no Content-Length), with backpressure, and
 * counts the bytes the socket took before the server answered and closed.
 */
function postChunked(url: URL, total: number): Promise<{ status: number | undefined; sent: number }> {
  return new Promise((resolve) => {
    let sent = 0;
    let status: number | undefined;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } });
    req.on('response', (res) => {
      status = res.statusCode;
      res.resume();
    });
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      resolve({ status, sent });
    };
    req.on('error', done);
    req.on('close', done);
    const pump = () => {
      while (sent < total && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (sent >= total) req.end();
    };
    pump();
  });
}

describe('RouteTable', () => {
  const ok = () => new Response('ok');

  it('routes by method and exact path, then by the longest /* prefix; HEAD falls back to GET', () => {
    const table = new RouteTable();
    table.add('POST', '/hook', ok);
    table.add('get', '/api/*', ok);
    table.add('GET', '/api/chats/*', ok);
    expect(table.match('POST', '/hook')).toMatchObject({ kind: 'route', route: { path: '/hook' } });
    expect(table.match('POST', '/hook/')).toEqual({ kind: 'not-found' });
    expect(table.match('GET', '/api/x')).toMatchObject({ route: { path: '/api/*', method: 'GET' } });
    expect(table.match('GET', '/api/chats/1')).toMatchObject({ route: { path: '/api/chats/*' } });
    expect(table.match('GET', '/api')).toEqual({ kind: 'not-found' });
    expect(table.match('HEAD', '/api/x')).toMatchObject({ kind: 'route', route: { method: 'GET' } });
    expect(table.match('GET', '/hook')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
    expect(table.match('DELETE', '/api/x')).toEqual({ kind: 'method-not-allowed', allow: ['GET', 'HEAD'] });
  });

  it('refuses duplicates and malformed routes; unmounting is idempotent and only removes its own route', () => {
    const table = new RouteTable();
    const unmount = table.add('POST', '/hook', ok);
    expect(() => table.add('POST', '/hook', ok)).toThrow('POST /hook is already mounted');
    expect(() => table.add('POST', 'hook', ok)).toThrow(TypeError);
    expect(() => table.add('POST', '/a*b', ok)).toThrow(TypeError);
    expect(() => table.add('POST', '/a*', ok)).toThrow(TypeError);
    expect(() => table.add('PO ST', '/x', ok)).toThrow(TypeError);
    expect(() => table.add('POST', '/x', ok, { maxBodyBytes: -1 })).toThrow(TypeError);
    unmount();
    const again = table.add('POST', '/hook', ok);
    unmount();
    expect(table.match('POST', '/hook').kind).toBe('route');
    again();
    expect(table.match('POST', '/hook').kind).toBe('not-found');
    expect(table.size).toBe(0);
  });
});

describe('HttpServer', () => {
  it('listens on the first mount, hands handlers a web Request, and answers 404 and 405', async () => {
    const { server, lines } = serve();
    expect(server.url).toBeUndefined();
    const seen: { method: string; url: string; header: string | null; body: unknown; again: string }[] = [];
    await server.mount('POST', '/hook', async (request) => {
      const body = await request.json();
      const again = await request.text().catch((error: Error) => error.name);
      seen.push({
        method: request.method,
        url: request.url,
        header: request.headers.get('x-secret'),
        body,
        again,
      });
      return Response.json({ ok: true }, { status: 201, headers: { 'x-answer': '42' } });
    });
    const url = server.url!;
    expect(url.hostname).toBe('127.0.0.1');
    expect(lines.join('\n')).toContain(`http server listening address=${url.origin}`);

    const answer = await fetch(new URL('/hook?x=1', url), {
      method: 'POST',
      headers: { 'x-secret': 's3cret', 'content-type': 'application/json' },
      body: JSON.stringify({ update_id: 1 }),
    });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('x-answer')).toBe('42');
    expect(await answer.json()).toEqual({ ok: true });
    expect(seen).toEqual([
      {
        method: 'POST',
        url: `${url.origin}/hook?x=1`,
        header: 's3cret',
        body: { update_id: 1 },
        again: 'TypeError', // a body is read once
      },
    ]);

    const missing = await fetch(new URL('/nothing', url));
    expect(missing.status).toBe(404);
    const wrongMethod = await fetch(new URL('/hook', url));
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('answers HEAD with the GET route and no body; a target off its origin gets 400', async () => {
    const { server } = serve();
    const seen: string[] = [];
    await server.mount('GET', '/page', (request) => {
      seen.push(`${request.method} ${request.url}`);
      return new Response('body');
    });
    const head = await fetch(new URL('/page', server.url), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const raw = (target: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(Number(server.url!.port), '127.0.0.1');
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('close', () => resolve(text.split('\r\n')[0]!));
        socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
    expect(await raw('//evil.example/page')).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw('http://evil.example/page?q=1')).toBe('HTTP/1.1 200 OK');
    expect(seen).toEqual([`HEAD ${server.url!.origin}/page`, `GET ${server.url!.origin}/page?q=1`]);
  });

  it('mounts and unmounts at runtime; many handlers share one port', async () => {
    const { server } = serve();
    const unmountA = await server.mount('POST', '/a', () => new Response('a'));
    const url = server.url!;
    const unmountB = await server.mount(
      'GET',
      '/b/*',
      (request) => new Response(new URL(request.url).pathname),
    );
    expect(server.url).toBe(url);
    expect(await (await fetch(new URL('/a', url), { method: 'POST' })).text()).toBe('a');
    expect(await (await fetch(new URL('/b/c/d', url))).text()).toBe('/b/c/d');
    unmountA();
    expect((await fetch(new URL('/a', url), { method: 'POST' })).status).toBe(404);
    expect((await fetch(new URL('/b/c', url))).status).toBe(200);
    unmountB();
    expect((await fetch(new URL('/b/c', url))).status).toBe(404);
    await expect(server.mount('GET', '/b/*', () => new Response('again'))).resolves.toBeTypeOf('function');
  });

  it('answers 500 without the error when a handler throws, and logs it', async () => {
    const { server, lines } = serve();
    await server.mount('POST', '/boom', () => {
      throw new Error('database password hunter2 leaked');
    });
    await server.mount('GET', '/not-a-response', () => 'text' as unknown as Response);
    const boom = await fetch(new URL('/boom', server.url), { method: 'POST', body: 'x' });
    expect(boom.status).toBe(500);
    const text = await boom.text();
    expect(text).toBe('Internal Server Error');
    expect(lines.join('\n')).toMatch(/http request failed .*route=\/boom.*hunter2/);
    expect((await fetch(new URL('/not-a-response', server.url))).status).toBe(500);
    expect(lines.join('\n')).toContain('did not return a Response');
  });

  it('answers 413 at once for a declared Content-Length over the limit, without calling the handler', async () => {
    const { server } = serve({ maxBodyBytes: 1000 });
    let called = 0;
    await server.mount('POST', '/small', async (request) => {
      called++;
      return new Response(String((await request.arrayBuffer()).byteLength));
    });
    await server.mount('POST', '/large', async (request) => new Response(await request.text()), {
      maxBodyBytes: 5000,
    });
    expect(
      await (await fetch(new URL('/small', server.url), { method: 'POST', body: 'x'.repeat(1000) })).text(),
    ).toBe('1000');
    expect(
      (await fetch(new URL('/small', server.url), { method: 'POST', body: 'x'.repeat(1001) })).status,
    ).toBe(413);
    expect(called).toBe(1);
    expect(
      (await fetch(new URL('/large', server.url), { method: 'POST', body: 'x'.repeat(4000) })).status,
    ).toBe(200);
  });

  it('answers 413 to a chunked body once it passes the limit, without reading the rest', async () => {
    const { server } = serve();
    const errors: string[] = [];
    await server.mount('POST', '/upload', async (request) => {
      try {
        return new Response(String((await request.arrayBuffer()).byteLength));
      } catch (error) {
        errors.push((error as Error).name);
        throw error;
      }
    });
    const total = 256 * 1024 * 1024;
    const { status, sent } = await postChunked(new URL('/upload', server.url), total);
    expect(status).toBe(413);
    // 1 MiB taken, then only what the sockets' buffers held: far from the 256 MiB offered.
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    await eventually(
      () => errors,
      (e) => e.length === 1,
      'the handler sees its read fail',
    );
    expect(errors).toEqual([new BodyTooLargeError(1).name]);
    // The server still serves.
    expect((await fetch(new URL('/upload', server.url), { method: 'POST', body: 'abc' })).status).toBe(200);
  });

  it('streams a response: headers, then each chunk, reach the client before the handler ends the stream', async () => {
    const { server } = serve();
    const first = gate();
    const next = gate();
    await server.mount('GET', '/events', () => {
      const stream = new ReadableStream<string>({
        async start(controller) {
          await first.opened;
          controller.enqueue('data: one\n\n');
          await next.opened;
          controller.enqueue('data: two\n\n');
          controller.close();
        },
      });
      return new Response(stream.pipeThrough(new TextEncoderStream()), {
        headers: { 'content-type': 'text/event-stream' },
      });
    });
    const response = await fetch(new URL('/events', server.url));
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    first.open();
    expect((await reader.read()).value).toBe('data: one\n\n');
    next.open();
    expect((await reader.read()).value).toBe('data: two\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('cancels the response stream and aborts request.signal when the client disconnects', async () => {
    const { server } = serve();
    const cancelled: unknown[] = [];
    let aborted = false;
    let pulls = 0;
    await server.mount('GET', '/events', (request) => {
      request.signal.addEventListener('abort', () => (aborted = true));
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            pulls++;
            controller.enqueue(new TextEncoder().encode(`data: ${pulls}\n\n`));
            await new Promise((resolve) => setTimeout(resolve, 20));
          },
          cancel(reason) {
            cancelled.push(reason);
          },
        }),
      );
    });
    const socket = connect(Number(server.url!.port), '127.0.0.1');
    socket.write(`GET /events HTTP/1.1\r\nHost: x\r\n\r\n`);
    let received = '';
    await new Promise<void>((resolve) =>
      socket.on('data', (chunk) => {
        received += chunk.toString();
        if (received.includes('data: 2')) resolve();
      }),
    );
    socket.destroy();
    await eventually(
      () => cancelled.length,
      (n) => n === 1,
      'the stream cancelled',
    );
    expect((cancelled[0] as Error).name).toBe('ClientGoneError');
    expect(aborted).toBe(true);
    const pullsAtCancel = pulls;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(pulls).toBe(pullsAtCancel);
  });

  it('closes gracefully: no new connections, requests in flight finish, then it resolves', async () => {
    const { server } = serve();
    const release = gate();
    const entered = gate();
    await server.mount('POST', '/slow', async (request) => {
      const body = await request.text();
      entered.open();
      await release.opened;
      return new Response(`done ${body}`);
    });
    const url = server.url!;
    const inFlight = fetch(new URL('/slow', url), { method: 'POST', body: 'work' });
    await entered.opened;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await eventually(
      () =>
        fetch(new URL('/slow', url), { method: 'POST', body: 'late' }).then(
          () => 'served',
          (error: Error) => (error.cause as { code?: string } | undefined)?.code ?? error.message,
        ),
      (outcome) => outcome === 'ECONNREFUSED',
      'new connections refused',
    );
    expect(closed).toBe(false);
    release.open();
    const response = await inFlight;
    expect(response.headers.get('connection')).toBe('close');
    expect(await response.text()).toBe('done work');
    await closing;
    expect(closed).toBe(true);
    await expect(server.mount('GET', '/x', () => new Response())).rejects.toThrow('closed');
  });

  it('aborts what is still in flight once the close timeout passes on its clock', async () => {
    const clock = new FakeClock();
    const { server, lines } = serve({ clock, closeTimeoutMs: 5000 });
    const entered = gate();
    let reason: unknown;
    await server.mount('GET', '/forever', (request) => {
      entered.open();
      return new Promise<Response>((_, reject) =>
        request.signal.addEventListener('abort', () => {
          reason = request.signal.reason;
          reject(request.signal.reason);
        }),
      );
    });
    const hanging = fetch(new URL('/forever', server.url)).catch((error: Error) => error);
    await entered.opened;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await clock.tick(4999);
    expect(closed).toBe(false);
    expect(reason).toBeUndefined();
    await clock.tick(1);
    await closing;
    expect((reason as Error).name).toBe('ServerClosingError');
    expect(await hanging).toBeInstanceOf(Error);
    expect(lines.join('\n')).toMatch(/requests still in flight, aborting them count=1/);
  });

  it('says why it cannot listen, and keeps nothing mounted', async () => {
    const { server: first } = serve();
    await first.mount('GET', '/x', () => new Response());
    const { server } = serve({ port: Number(first.url!.port) });
    await expect(server.mount('GET', '/y', () => new Response())).rejects.toMatchObject({
      code: 'HTTP_LISTEN',
      message: expect.stringContaining('EADDRINUSE'),
    });
    expect(server.mounted).toBe(false);
  });
});
