import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Adapter, AdapterHost } from '../../src/adapter.ts';
import { watchHttp } from '../../src/backend-calls.ts';
import { createBot } from '../../src/bot.ts';
import { systemClock } from '../../src/clock.ts';
import { CancelledError } from '../../src/errors.ts';
import { readBytes, readSse } from '../../src/http.ts';
import { createLogger } from '../../src/logger.ts';
import type { ChatAddress, IncomingMessage } from '../../src/message.ts';
import { HistogramCell, Metrics } from '../../src/metrics.ts';
import { Outbox } from '../../src/outbox.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { createRegistry } from '../../src/runtime/observability.ts';
import { FakeClock, MockAdapter } from '../../src/testing.ts';

const chat = (id: string): ChatAddress => ({ adapter: 'mock', platform: 'mock', id, kind: 'private' });

function recordingLog(level: 'debug' | 'info' = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level, format: 'json', write: (line) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('HistogramCell', () => {
  it('puts a value in the first bucket whose bound it does not exceed, and above every bound in the last', () => {
    const cell = new HistogramCell([0.1, 1, 10]);
    for (const value of [0, 0.1, 0.1000001, 1, 5, 10, 11, 1000]) cell.observe(value);
    expect(cell.counts).toEqual([2, 2, 2, 2]);
    expect(cell.count).toBe(8);
    expect(cell.sum).toBeCloseTo(1027.2000001);
  });
});

describe('Metrics', () => {
  it('keeps the backend names of a plugin bounded: past the limit they count as other', () => {
    const metrics = new Metrics();
    for (let i = 0; i < 100; i++) metrics.backend('p', `https://example.org/user/${i}`).observe('ok', 0.1);
    const names = [...metrics.backends.get('p')!.keys()];
    expect(names).toHaveLength(65);
    expect(names.at(-1)).toBe('other');
    expect(metrics.backend('p', 'other').durations.get('ok')?.count).toBe(36);
    // A name counted before the limit keeps its own cell.
    expect(metrics.backend('p', 'https://example.org/user/3').durations.get('ok')?.count).toBe(1);
  });
});

describe('Outbox metrics', () => {
  it('counts each operation by kind once it went out, and how long it waited, on the fake clock', async () => {
    const clock = new FakeClock(0);
    const adapter = new MockAdapter({
      clock,
      drafts: true,
      limits: { rate: { perChat: { count: 1, periodMs: 1000 } } },
    });
    const metrics = new Metrics();
    const { log, lines } = recordingLog();
    const outbox = new Outbox(adapter, { clock, log, metrics: metrics.adapter('mock') });
    const sends = [0, 1, 2].map((i) => outbox.send(chat('a'), { text: `m${i}` }));
    const album = outbox.send(chat('b'), {
      images: [{ data: new Uint8Array([1]), mimeType: 'image/png' }],
    });
    await clock.tick(5000);
    const [first] = await Promise.all(sends);
    await album;
    await Promise.all([
      outbox.edit(chat('a'), first!.ids[0]!, { text: 'edited' }, { final: true }),
      clock.tick(2000),
    ]);
    await Promise.all([outbox.draft(chat('c'), 7, 'dra'), clock.tick(1000)]);
    await Promise.all([outbox.typing(chat('d')), clock.tick(1000)]);

    const cell = metrics.adapter('mock');
    expect([cell.send, cell.album, cell.edit, cell.draft, cell.typing]).toEqual([3, 1, 1, 1, 1]);
    // The three sends of chat a waited 0, 1 and 2 s for the chat's budget; the rest went at once.
    expect(cell.outboxWait.count).toBe(7);
    expect(cell.outboxWait.sum).toBe(3);
    // Waits over a second are logged at debug level, once each.
    const waits = lines.filter((l) => l.msg === 'outbox wait');
    expect(waits.map((l) => [l.kind, l.ms])).toEqual([['send', 2000]]);
  });

  it('reads no clock and counts nothing when nobody measures', async () => {
    const clock = new FakeClock(0);
    let reads = 0;
    const counting = {
      ...clock,
      now: () => {
        reads++;
        return clock.now();
      },
      setTimeout: clock.setTimeout.bind(clock),
      clearTimeout: clock.clearTimeout.bind(clock),
    };
    const adapter = new MockAdapter({ clock });
    const outbox = new Outbox(adapter, {
      clock: counting,
      log: createLogger({ level: 'info', write: () => {} }),
    });
    const before = reads;
    await Promise.all([outbox.send(chat('a'), { text: 'x' }), clock.tick(10)]);
    // The drain loop reads the clock for the budget; queueing and sending read it no more.
    const perSend = reads - before;
    const withMetrics = new Outbox(adapter, {
      clock: counting,
      log: createLogger({ level: 'info', write: () => {} }),
      metrics: new Metrics().adapter('mock'),
    });
    const again = reads;
    await Promise.all([withMetrics.send(chat('b'), { text: 'x' }), clock.tick(10)]);
    expect(reads - again).toBe(perSend + 2);
  });
});

/** An adapter whose start waits until the test lets it connect. */
function slowAdapter(): { adapter: Adapter; connect: () => void; host: () => AdapterHost } {
  let connect!: () => void;
  const connected = new Promise<void>((resolve) => (connect = resolve));
  const mock = new MockAdapter();
  let host: AdapterHost | undefined;
  const adapter: Adapter = {
    name: mock.name,
    platform: mock.platform,
    limits: mock.limits,
    commandPrefixes: mock.commandPrefixes,
    start: async (h) => {
      host = h;
      await connected;
      return mock.self;
    },
    stop: () => mock.stop(),
    send: (c, m) => mock.send(c, m),
    edit: (c, id, m, o) => mock.edit(c, id, m, o),
  };
  return { adapter, connect, host: () => host! };
}

const incoming = (text: string, id: string): IncomingMessage => ({
  id,
  chat: chat('c1'),
  sender: { id: 'u1', name: 'Ann' },
  text,
  mentionsBot: false,
  images: [],
  date: 0,
});

describe('Bot metrics and readiness', () => {
  it('counts received messages and jobs by plugin, command and outcome, with their durations', async () => {
    const clock = new FakeClock(0);
    const metrics = new Metrics();
    const { adapter, connect, host } = slowAdapter();
    const plugin = definePlugin({
      name: 'p',
      setup(ctx) {
        ctx.command({ name: 'ok', description: 'ok' }, async (c) => {
          await new Promise<void>((resolve) => c.clock.setTimeout(resolve, 1500));
          await c.reply('done');
        });
        ctx.command({ name: 'boom', description: 'boom' }, () => {
          throw new Error('broken');
        });
        ctx.command({ name: 'stop', description: 'stop' }, () => {
          throw new CancelledError();
        });
      },
    });
    const bot = createBot({
      adapters: [adapter],
      plugins: [{ plugin }],
      clock,
      metrics,
      log: createLogger({ level: 'silent' }),
    });
    expect(bot.readiness()).toEqual({ ready: false, state: 'new', waiting: ['adapter:mock', 'plugin:p'] });
    const starting = bot.start();
    await clock.tick(0);
    expect(bot.readiness()).toEqual({ ready: false, state: 'starting', waiting: ['adapter:mock'] });
    expect(bot.adapterStates().get('mock')).toBe('starting');
    // A report before start resolved changes nothing: start owns the state until then.
    host().connection?.(false);
    expect(bot.adapterStates().get('mock')).toBe('starting');
    connect();
    await starting;
    expect(bot.readiness()).toEqual({ ready: true, state: 'running', waiting: [] });
    host().connection?.(false);
    expect(bot.readiness()).toEqual({ ready: false, state: 'running', waiting: ['adapter:mock'] });
    expect(bot.adapterStates().get('mock')).toBe('reconnecting');
    host().connection?.(true);
    expect(bot.readiness().ready).toBe(true);

    const messages = [
      incoming('/ok', '1'),
      incoming('/boom', '2'),
      incoming('/stop', '3'),
      incoming('hello', '4'),
    ];
    for (const m of messages) await host().receive(m);
    await clock.tick(2000);
    await Promise.all(messages.map((m) => bot.settled(m)));
    expect(metrics.adapter('mock').received).toBe(4);
    const ok = metrics.job('p', 'ok');
    expect([ok.ok, ok.failed, ok.cancelled]).toEqual([1, 0, 0]);
    expect(ok.duration.sum).toBe(1.5);
    expect([metrics.job('p', 'boom').failed, metrics.job('p', 'stop').cancelled]).toEqual([1, 1]);
    // A message no command took started no job.
    expect([...metrics.jobs.get('p')!.keys()].sort()).toEqual(['boom', 'ok', 'stop']);

    const stopping = bot.stop();
    // From the first moment of shutdown, while the adapters' intake stops.
    expect(bot.readiness()).toEqual({ ready: false, state: 'stopping', waiting: ['adapter:mock'] });
    await clock.tick(0);
    await stopping;
    expect(bot.readiness()).toEqual({ ready: false, state: 'stopped', waiting: ['adapter:mock'] });
    expect(bot.adapterStates().get('mock')).toBe('down');
  });
});

describe('createRegistry', () => {
  it('writes the cells in the Prometheus text format: cumulative buckets, counters, gauges', async () => {
    const metrics = new Metrics();
    const adapter = metrics.adapter('telegram');
    adapter.received = 5;
    adapter.album = 2;
    adapter.rateLimited = 1;
    adapter.outboxWait.observe(0.003);
    adapter.outboxWait.observe(2);
    const job = metrics.job('draw', 'draw');
    job.ok = 3;
    job.duration.observe(0.2);
    metrics.backend('draw', 'flux').observe('status', 0.04);
    metrics.backend('ask', 'gpt').firstToken.observe(0.3);
    const bot = {
      readiness: () => ({ ready: true, state: 'running' as const, waiting: [] }),
      adapterStates: () => new Map([['telegram', 'up' as const]]),
      outbox: () => ({ pending: 7 }),
    };
    const text = await createRegistry(metrics, bot).metrics();
    const lines = text.split('\n');
    const has = (line: string) => expect(lines, line).toContain(line);
    has('chorus_messages_received_total{adapter="telegram"} 5');
    has('chorus_messages_sent_total{adapter="telegram",kind="album"} 2');
    has('chorus_messages_sent_total{adapter="telegram",kind="send"} 0');
    has('chorus_rate_limited_total{adapter="telegram"} 1');
    has('chorus_jobs_total{plugin="draw",command="draw",outcome="ok"} 3');
    has('chorus_jobs_total{plugin="draw",command="draw",outcome="failed"} 0');
    has('chorus_outbox_queue_depth{adapter="telegram"} 7');
    has('chorus_adapter_up{adapter="telegram"} 1');
    has('# TYPE chorus_outbox_wait_seconds histogram');
    has('chorus_outbox_wait_seconds_bucket{adapter="telegram",le="0.005"} 1');
    has('chorus_outbox_wait_seconds_bucket{adapter="telegram",le="1"} 1');
    has('chorus_outbox_wait_seconds_bucket{adapter="telegram",le="2.5"} 2');
    has('chorus_outbox_wait_seconds_bucket{adapter="telegram",le="+Inf"} 2');
    has('chorus_outbox_wait_seconds_sum{adapter="telegram"} 2.003');
    has('chorus_outbox_wait_seconds_count{adapter="telegram"} 2');
    has('chorus_job_duration_seconds_bucket{plugin="draw",command="draw",le="0.1"} 0');
    has('chorus_job_duration_seconds_bucket{plugin="draw",command="draw",le="0.25"} 1');
    has('chorus_backend_request_duration_seconds_count{plugin="draw",backend="flux",outcome="status"} 1');
    has('chorus_backend_first_token_seconds_count{plugin="ask",backend="gpt"} 1');
    expect(text).not.toContain('chorus_backend_first_token_seconds_count{plugin="draw"');
    expect(lines.some((line) => line.startsWith('process_cpu_user_seconds_total '))).toBe(true);
  });
});

describe('watchHttp', () => {
  async function server(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const s: Server = createServer(handler);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => s.close(resolve)));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  it('measures each request to the end of its body, by outcome, with a debug line and no header or URL', async () => {
    const url = await server((req, res) => {
      if (req.url === '/fail') return void res.writeHead(500).end('no');
      if (req.url === '/big') return void res.writeHead(200).end(Buffer.alloc(5000));
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: one\n\n');
        setTimeout(() => res.end('data: two\n\n'), 50);
        return;
      }
      res.writeHead(200).end('hello');
    });
    const metrics = new Metrics();
    const { log, lines } = recordingLog();
    const http = new HttpClient();
    cleanups.push(() => http.close());
    const watched = watchHttp(http, { plugin: 'p', clock: systemClock, metrics, log }).with({});
    const secret = 'Bearer sk-abcdefghijklmnop-secret';
    const ok = await watched.request(`${url}/ok?key=topsecret`, {
      backend: 'b',
      headers: { authorization: secret },
    });
    expect(ok.url).toBe(`${url}/ok?key=topsecret`);
    expect(new TextDecoder().decode(await readBytes(ok, 'b', 100))).toBe('hello');
    await expect(watched.request(`${url}/fail`, { backend: 'b' })).rejects.toThrow(/HTTP 500/);
    await expect(readBytes(await watched.request(`${url}/big`, { backend: 'b' }), 'b', 1000)).rejects.toThrow(
      /cap/,
    );
    const events: string[] = [];
    for await (const event of readSse(await watched.request(`${url}/stream`, { backend: 's' }), 's'))
      events.push(event.data);
    expect(events).toEqual(['one', 'two']);
    const controller = new AbortController();
    const pending = watched.request(`${url}/stream`, { backend: 's', signal: controller.signal });
    const reader = (await pending).body!.getReader();
    await reader.read();
    controller.abort(new CancelledError());
    await expect(reader.read()).rejects.toThrow();

    const b = metrics.backend('p', 'b');
    expect([...b.durations].map(([outcome, cell]) => [outcome, cell.count])).toEqual([
      ['ok', 1],
      ['status', 1],
      ['invalid', 1],
    ]);
    const s = metrics.backend('p', 's');
    expect(s.durations.get('ok')?.count).toBe(1);
    expect(s.durations.get('cancelled')?.count).toBe(1);
    expect(s.firstToken.count).toBe(2);
    // The first chunk of the finished stream came before its end.
    expect(s.firstToken.sum).toBeLessThan(s.durations.get('ok')!.sum + s.durations.get('cancelled')!.sum);
    expect(b.firstToken.count).toBe(0);

    const requests = lines.filter((l) => l.msg === 'backend request');
    expect(requests.map((l) => [l.backend, l.outcome, l.status])).toEqual([
      ['b', 'ok', 200],
      ['b', 'status', 500],
      ['b', 'invalid', 200],
      ['s', 'ok', 200],
      ['s', 'cancelled', 200],
    ]);
    // Bytes read through: the whole of each answer read, what came before the cap or the abort.
    expect(requests.map((l) => l.bytes)).toEqual([5, 0, requests[2]!.bytes, 22, 11]);
    expect(requests[2]!.bytes).toBeGreaterThan(1000);
    for (const line of requests) expect(typeof line.ms).toBe('number');
    const all = JSON.stringify(lines);
    expect(all).not.toContain('topsecret');
    expect(all).not.toContain('sk-abcdefghijklmnop');
  });

  it('passes requests straight through when nothing measures them', async () => {
    const url = await server((_req, res) => res.writeHead(200).end('x'));
    const http = new HttpClient();
    cleanups.push(() => http.close());
    const watched = watchHttp(http, {
      plugin: 'p',
      clock: systemClock,
      log: createLogger({ level: 'info', write: () => {} }),
    });
    const response = await watched.request(url, { backend: 'b' });
    // The undici response itself, its body not wrapped.
    expect(response.constructor.name).toBe('Response');
    expect(response.url).toBe(`${url}/`);
  });
});
