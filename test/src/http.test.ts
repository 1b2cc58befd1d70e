import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError, CancelledError } from '../../src/errors.ts';
import { readBytes, readJson, readNdjson, readSse } from '../../src/http.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { type FakeServer, startFakeProxy, startFakeServer } from '../fakes/http.ts';

let server: FakeServer;
let http: HttpClient;
beforeEach(async () => {
  server = await startFakeServer();
  http = new HttpClient({ firstByteTimeoutMs: 2000, idleTimeoutMs: 2000 });
});
afterEach(async () => {
  await http.close();
  await server.close();
});

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function failure(promise: Promise<unknown>): Promise<BackendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

/** Writes `bytes` in pieces cut at the given offsets, with a pause between them. */
async function writeInPieces(res: import('node:http').ServerResponse, bytes: Buffer, cuts: number[]) {
  let last = 0;
  for (const cut of [...cuts, bytes.length]) {
    res.write(bytes.subarray(last, cut));
    last = cut;
    await wait(2);
  }
  res.end();
}

describe('HttpClient', () => {
  it('reads JSON, and says "HTML" when a proxy error page comes instead', async () => {
    server.route(
      'GET',
      '/ok',
      (_, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}'),
    );
    server.route(
      'GET',
      '/html',
      (_, res) =>
        void res
          .writeHead(200, { 'content-type': 'text/html' })
          .end('<!DOCTYPE html><html><body>Bad gateway</body></html>'),
    );
    expect(await readJson(await http.request(`${server.url}/ok`, { backend: 'demo' }), 'demo')).toEqual({
      a: 1,
    });
    const error = await failure(
      http.request(`${server.url}/html`, { backend: 'flux' }).then((r) => readJson(r, 'flux')),
    );
    expect(error.kind).toBe('invalid');
    expect(error.message).toMatch(/^flux: expected JSON, got HTML/);
  });

  it('keeps "the remote refused" apart from "the network failed"', async () => {
    server.route('POST', '/fail', (_, res) => void res.writeHead(503).end('overloaded, try later'));
    const refused = await failure(http.request(`${server.url}/fail`, { backend: 'flux', body: '{}' }));
    expect([refused.kind, refused.status, refused.message]).toEqual([
      'status',
      503,
      'flux answered HTTP 503: overloaded, try later',
    ]);
    const closedPort = server.port;
    await server.close();
    const network = await failure(http.request(`http://127.0.0.1:${closedPort}/`, { backend: 'flux' }));
    expect(network.kind).toBe('network');
    server = await startFakeServer();
  });

  it('times out a server that never sends headers, and one that goes silent mid-body', async () => {
    const quick = new HttpClient({ firstByteTimeoutMs: 100, idleTimeoutMs: 100 });
    server.route('GET', '/hang', () => {});
    server.route('GET', '/stall', (_, res) => {
      res.writeHead(200);
      res.write('part');
    });
    const noHeaders = await failure(quick.request(`${server.url}/hang`, { backend: 'slow' }));
    expect([noHeaders.kind, noHeaders.message]).toEqual(['timeout', 'slow: no response in time']);
    const response = await quick.request(`${server.url}/stall`, { backend: 'slow' });
    const silent = await failure(readBytes(response, 'slow', 1000));
    expect([silent.kind, silent.message]).toEqual(['timeout', 'slow: went silent mid-answer']);
    await quick.close();
  });

  it('aborts the request on the wire when the signal fires', async () => {
    server.route('GET', '/slow', () => {});
    const controller = new AbortController();
    const request = http.request(`${server.url}/slow`, { backend: 'x', signal: controller.signal });
    await wait(50);
    controller.abort(new CancelledError('user cancel'));
    await expect(request).rejects.toThrow('user cancel');
    await wait(50);
    expect(server.aborted).toEqual(['/slow']);
  });

  it('caps downloads, declared or not', async () => {
    server.route(
      'GET',
      '/big',
      (_, res) => void res.writeHead(200, { 'content-length': '5000' }).end(Buffer.alloc(5000)),
    );
    server.route('GET', '/chunked', async (_, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000));
      res.end();
    });
    expect(
      (
        await failure(
          http.request(`${server.url}/big`, { backend: 'img' }).then((r) => readBytes(r, 'img', 1000)),
        )
      ).message,
    ).toBe('img: answer of 5000 bytes exceeds the 1000-byte cap');
    expect(
      (
        await failure(
          http.request(`${server.url}/chunked`, { backend: 'img' }).then((r) => readBytes(r, 'img', 4000)),
        )
      ).kind,
    ).toBe('invalid');
  });

  it('goes through the configured proxy, but never for loopback', async () => {
    server.route('GET', '/via', (_, res) => void res.writeHead(200).end('proxied'));
    const proxy = await startFakeProxy(server);
    const proxied = http.with({ proxy: proxy.url });
    const response = await proxied.request('http://images.chorus.test/via', { backend: 'remote' });
    expect(await response.text()).toBe('proxied');
    expect(proxy.hosts).toEqual(['images.chorus.test:80']);
    await proxied.request(`${server.url}/via`, { backend: 'local' }).then((r) => r.text());
    expect(proxy.hosts).toHaveLength(1);
    expect(http.with({ proxy: proxy.url })).toBe(proxied);
    await proxy.close();
  });
});

describe('stream parsers', () => {
  const sse = Buffer.from(
    ': keep-alive\n\ndata: {"t":"Hé"}\n\nevent: done\ndata: {"t":"😀 end"}\n\ndata: [DONE]\n\n',
    'utf8',
  );

  it('parses Server-Sent Events cut at every possible byte boundary, multi-byte characters included', async () => {
    server.route('GET', '/sse', async (req, res) => {
      const cut = Number(new URL(req.url!, 'http://x').searchParams.get('cut'));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      await writeInPieces(res, sse, [cut]);
    });
    for (let cut = 1; cut < sse.length; cut += 3) {
      const response = await http.request(`${server.url}/sse?cut=${cut}`, { backend: 'llm' });
      const events = [];
      for await (const event of readSse(response.body!, 'llm'))
        events.push([event.event ?? 'message', event.data]);
      expect(events).toEqual([
        ['message', '{"t":"Hé"}'],
        ['done', '{"t":"😀 end"}'],
        ['message', '[DONE]'],
      ]);
    }
  });

  it('parses NDJSON cut anywhere, and names a bad line', async () => {
    const lines = Buffer.from(
      '{"message":{"content":"你"}}\n{"message":{"content":"好"}}\n{"done":true}',
      'utf8',
    );
    server.route('GET', '/nd', async (_, res) => {
      res.writeHead(200);
      await writeInPieces(res, lines, [5, 22, 23, 24, 40]);
    });
    server.route('GET', '/bad', (_, res) => void res.writeHead(200).end('{"ok":1}\n<html>oops</html>\n'));
    const values = [];
    for await (const value of readNdjson(
      (await http.request(`${server.url}/nd`, { backend: 'ollama' })).body!,
      'ollama',
    )) {
      values.push(value);
    }
    expect(values).toEqual([{ message: { content: '你' } }, { message: { content: '好' } }, { done: true }]);
    const bad = readNdjson((await http.request(`${server.url}/bad`, { backend: 'ollama' })).body!, 'ollama');
    expect(await bad.next()).toEqual({ done: false, value: { ok: 1 } });
    await expect(bad.next()).rejects.toThrow('ollama: bad NDJSON line: <html>oops</html>');
  });

  it('reports a stream cut mid-way as a network error', async () => {
    server.route('GET', '/cut', (_, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"t":"a"}\n\n');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const events: string[] = [];
    const error = await failure(
      (async () => {
        for await (const event of readSse(
          (await http.request(`${server.url}/cut`, { backend: 'llm' })).body!,
          'llm',
        )) {
          events.push(event.data);
        }
      })(),
    );
    expect(events).toEqual(['{"t":"a"}']);
    expect(error.kind).toBe('network');
  });
});
