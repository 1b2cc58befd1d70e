/**
 * What an operator sees of a bot run as its users run it (`npm start -- --config FILE`, on the
 * fake Telegram, with draw and ask on fake backends): `/healthz`, `/readyz` through start, running
 * and shutdown, Prometheus metrics after a draw with a failing backend and a streamed ask, and
 * JSON logs, one object a line, with the debug lines an operator needs and no secret.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExportedSpan } from '../fakes/otel.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { llmApiKey, type RunningChorus, startBackends, startChorus, until, workDir } from './harness.ts';

const ann = { id: 501, is_bot: false, first_name: 'Ann', username: 'ann' };
const privateChat = { id: 501, type: 'private' as const, first_name: 'Ann' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text format (no escapes in our label values). */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** The value of the one sample named `name` with (at least) `labels`; 0 when there is none. */
function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

/** Every line of the bot's stderr, parsed. */
function jsonLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`a log line that is not JSON: ${line}`);
      }
    });
}

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url);
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: await response.text(),
  };
}

async function world() {
  const telegram = await new FakeTelegram().start();
  const backends = await startBackends();
  cleanups.push(
    () => telegram.close(),
    () => backends.close(),
  );
  const dir = workDir();
  const config = [
    'log: { level: debug, format: json }',
    'http:',
    '  server: { host: 127.0.0.1, port: 0 }',
    'metrics: { path: /metrics }',
    'adapters:',
    '  telegram:',
    '    token: ${TELEGRAM_BOT_TOKEN}',
    `    apiRoot: ${telegram.url}`,
    '    mode: polling',
    ...backends.plugins(dir, 1),
    'state:',
    `  path: ${dir}/state/state.sqlite`,
    '',
  ].join('\n');
  return { ...backends, telegram, dir, config };
}

function run(w: Awaited<ReturnType<typeof world>>, env: Record<string, string> = {}): RunningChorus {
  const bot = startChorus(w.dir, w.config, {
    env: { TELEGRAM_BOT_TOKEN: w.telegram.token, OPENAI_API_KEY: llmApiKey, ...env },
  });
  cleanups.push(() => bot.stop('SIGKILL'));
  return bot;
}

/** Where the bot's HTTP server listens, from its log. */
async function serverUrl(bot: RunningChorus): Promise<string> {
  await bot.waitFor(/"msg":"http server listening"/);
  const line = jsonLines(bot.output().stderr).find((l) => l.msg === 'http server listening');
  return String(line!.address);
}

describe('npm start with metrics, health endpoints and JSON logs', () => {
  it('/readyz follows start, running and shutdown; /metrics moves with a draw and a streamed ask; logs are JSON without secrets', async () => {
    const w = await world();
    // Connecting takes a while: the bot is starting meanwhile.
    w.telegram.delay('getMe', 1500);
    const bot = run(w);
    const base = await serverUrl(bot);

    expect((await get(`${base}/healthz`)).status).toBe(200);
    const starting = await get(`${base}/readyz`);
    expect(starting.status).toBe(503);
    expect(starting.type).toMatch(/^application\/json/);
    const startingBody = JSON.parse(starting.body) as { ready: boolean; state: string; waiting: string[] };
    expect(startingBody.ready).toBe(false);
    expect(['new', 'starting']).toContain(startingBody.state);
    expect(startingBody.waiting).toContain('adapter:telegram');

    await bot.waitFor(/"msg":"adapter ready"/);
    const ready = await until(
      () => get(`${base}/readyz`),
      (r) => r.status !== 503,
      'ready',
    );
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, state: 'running', waiting: [] });

    // A 429 on the first reply: the chat pauses two seconds, and the second reply waits for it.
    w.telegram.failNext('sendMessage', { code: 429, description: 'Too Many Requests', retryAfter: 2 });
    w.telegram.userSays(privateChat, ann, '/start');
    w.telegram.userSays(privateChat, ann, '/help');
    await until(
      () => w.telegram.chatMessages(privateChat.id).filter((m) => m.from?.id === w.telegram.bot.id),
      (m) => m.length === 2,
      'both replies',
    );

    // Four backends of 150, 300 (failing with HTTP 500), 600 and 1500 ms.
    w.telegram.userSays(privateChat, ann, '/draw a red fox');
    const texts = () => w.telegram.chatMessages(privateChat.id).map((m) => m.text ?? '');
    await until(texts, (t) => t.some((text) => text.startsWith('Finished: ')), 'the finished draw');
    w.llm.script('gpt-test', { pieces: ['Rayleigh ', 'scattering.'], gapMs: 200 });
    w.telegram.userSays(privateChat, ann, '/ask why is the sky blue?');
    await until(texts, (t) => t.some((text) => text.includes('Rayleigh scattering.')), 'the answer');

    // Jobs have ended once their last message went out: wait for the counters, then read them all.
    const scraped = await until(
      () => get(`${base}/metrics`),
      // The ask job counted, and its last edits out of the outbox (they may trail the job's end).
      (r) =>
        /chorus_jobs_total\{plugin="ask",command="ask",outcome="ok"\} 1/.test(r.body) &&
        /chorus_outbox_queue_depth\{adapter="telegram"\} 0\b/.test(r.body),
      'the ask job counted and the outbox empty',
    );
    expect(scraped.status).toBe(200);
    expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseMetrics(scraped.body);
    const m = (name: string, labels: Record<string, string> = {}) => sampleValue(samples, name, labels);
    const tg = { adapter: 'telegram' };

    expect(m('chorus_messages_received_total', tg)).toBe(4);
    // Every 429 the fake answered, the one it was told to and any its budgets refused, retried or not.
    expect(w.telegram.refused.length).toBeGreaterThanOrEqual(1);
    expect(m('chorus_rate_limited_total', tg)).toBe(w.telegram.refused.length);
    expect(m('chorus_adapter_up', tg)).toBe(1);
    expect(m('chorus_outbox_queue_depth', tg)).toBe(0);
    expect(m('chorus_messages_sent_total', { ...tg, kind: 'album' })).toBe(3);
    // /start, /help, the draw's status: texts (the ask's answer goes out as a message too).
    expect(m('chorus_messages_sent_total', { ...tg, kind: 'send' })).toBeGreaterThanOrEqual(4);
    expect(m('chorus_messages_sent_total', { ...tg, kind: 'edit' })).toBeGreaterThanOrEqual(1);
    expect(m('chorus_messages_sent_total', { ...tg, kind: 'draft' })).toBeGreaterThanOrEqual(1);
    const sentOps = ['send', 'album', 'edit', 'typing', 'draft'].reduce(
      (sum, kind) => sum + m('chorus_messages_sent_total', { ...tg, kind }),
      0,
    );
    // Every operation waited once in the outbox (the retried one is not counted twice).
    expect(m('chorus_outbox_wait_seconds_count', tg)).toBe(sentOps);
    // /help's reply waited behind the two-second pause.
    const underOne = m('chorus_outbox_wait_seconds_bucket', { ...tg, le: '1' });
    expect(m('chorus_outbox_wait_seconds_count', tg) - underOne).toBeGreaterThanOrEqual(1);

    for (const [plugin, command] of [
      ['help', 'help'],
      ['help', 'start'],
      ['draw', 'draw'],
      ['ask', 'ask'],
    ] as const) {
      expect(m('chorus_jobs_total', { plugin, command, outcome: 'ok' }), `${plugin}/${command}`).toBe(1);
      expect(m('chorus_jobs_total', { plugin, command, outcome: 'failed' })).toBe(0);
      expect(m('chorus_job_duration_seconds_count', { plugin, command })).toBe(1);
    }
    // The draw took at least as long as its slowest backend (1.5 s).
    const draw = { plugin: 'draw', command: 'draw' };
    expect(m('chorus_job_duration_seconds_bucket', { ...draw, le: '1' })).toBe(0);
    expect(m('chorus_job_duration_seconds_sum', draw)).toBeGreaterThanOrEqual(1.5);

    const backend = 'chorus_backend_request_duration_seconds';
    expect(m(`${backend}_count`, { plugin: 'draw', backend: 'broken', outcome: 'status' })).toBe(1);
    expect(m(`${backend}_count`, { plugin: 'draw', backend: 'broken', outcome: 'ok' })).toBe(0);
    for (const name of ['quick', 'steady', 'slow'])
      expect(m(`${backend}_count`, { plugin: 'draw', backend: name, outcome: 'ok' }), name).toBe(1);
    // The slow backend answers after 1.5 s: none of its requests fell under a second.
    expect(m(`${backend}_bucket`, { plugin: 'draw', backend: 'slow', outcome: 'ok', le: '1' })).toBe(0);
    expect(m(`${backend}_count`, { plugin: 'ask', backend: 'gpt', outcome: 'ok' })).toBe(1);
    // The stream's first chunk came before its end (two pieces 200 ms apart).
    expect(m('chorus_backend_first_token_seconds_count', { plugin: 'ask', backend: 'gpt' })).toBe(1);
    expect(m('chorus_backend_first_token_seconds_sum', { plugin: 'ask', backend: 'gpt' })).toBeLessThan(
      m(`${backend}_sum`, { plugin: 'ask', backend: 'gpt', outcome: 'ok' }),
    );
    // Not a stream: no first-token series for the image backends.
    expect(
      samples.some((s) => s.name.startsWith('chorus_backend_first_token') && s.labels.plugin === 'draw'),
    ).toBe(false);

    expect(types.get('chorus_job_duration_seconds')).toBe('histogram');
    expect(types.get('chorus_outbox_queue_depth')).toBe('gauge');
    expect(types.get('chorus_jobs_total')).toBe('counter');
    // prom-client's default process metrics are there too.
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    // Bounded labels: the documented names only, and never a chat or user id.
    const allowed = new Set(['adapter', 'kind', 'plugin', 'command', 'outcome', 'backend', 'le']);
    for (const sample of samples.filter((s) => s.name.startsWith('chorus_'))) {
      for (const [label, value] of Object.entries(sample.labels)) {
        expect(allowed.has(label), `${sample.name} label ${label}`).toBe(true);
        expect(value).not.toContain(String(ann.id));
      }
    }

    // Shutdown takes a while (the fake answers edits slowly): meanwhile the bot is not ready.
    w.telegram.delay('editMessageText', 1500);
    w.telegram.userSays(privateChat, ann, '/draw a slow cat');
    await until(texts, (t) => t.some((text) => text.startsWith('Drawing')), 'a draw under way');
    bot.child.kill('SIGTERM');
    const stopping = await until(
      () => get(`${base}/readyz`),
      (r) => r.status === 503,
      'not ready',
    );
    expect(JSON.parse(stopping.body)).toMatchObject({ ready: false, state: 'stopping' });
    expect(JSON.parse(stopping.body).waiting).toContain('adapter:telegram');
    expect(await bot.exited).toBe(0);

    // The log: one JSON object a line, the debug lines an operator needs, no secret anywhere.
    const { stderr } = bot.output();
    const lines = jsonLines(stderr);
    for (const line of lines) {
      expect(typeof line.time).toBe('number');
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
      expect(typeof line.scope).toBe('string');
      expect(typeof line.msg).toBe('string');
    }
    const started = lines.filter((l) => l.msg === 'job started');
    const ended = lines.filter((l) => l.msg === 'job ended');
    expect(started.length).toBeGreaterThanOrEqual(5);
    expect(ended.find((l) => l.scope === 'chorus:draw' && l.outcome === 'done')).toMatchObject({
      command: 'draw',
    });
    const broken = lines.find((l) => l.msg === 'backend request' && l.backend === 'broken');
    expect(broken).toMatchObject({ plugin: 'draw', outcome: 'status', status: 500 });
    expect(typeof broken!.ms).toBe('number');
    const gpt = lines.find((l) => l.msg === 'backend request' && l.backend === 'gpt');
    expect(gpt).toMatchObject({ plugin: 'ask', outcome: 'ok', status: 200 });
    expect(gpt!.bytes).toBeGreaterThan(0);
    const waited = lines.find((l) => l.msg === 'outbox wait');
    expect(waited).toMatchObject({ adapter: 'telegram' });
    expect(waited!.ms).toBeGreaterThan(1000);
    expect(stderr).not.toContain(llmApiKey);
    expect(stderr).not.toContain(w.telegram.token);
  }, 60_000);

  it('hands a span per job, with a child span per backend request, to the OpenTelemetry SDK the process registers', async () => {
    const w = await world();
    const spansFile = join(w.dir, 'spans.jsonl');
    // As a user would: `node --import` of their SDK setup, through NODE_OPTIONS for `npm start`.
    const setup = resolve(import.meta.dirname, '../fakes/otel.ts');
    const bot = run(w, {
      NODE_OPTIONS: [process.env.NODE_OPTIONS, '--import tsx', `--import ${setup}`].filter(Boolean).join(' '),
      CHORUS_TEST_SPANS: spansFile,
    });
    await bot.waitFor(/"msg":"adapter ready"/);
    w.telegram.userSays(privateChat, ann, '/draw a red fox');
    const texts = () => w.telegram.chatMessages(privateChat.id).map((m) => m.text ?? '');
    await until(texts, (t) => t.some((text) => text.startsWith('Finished: ')), 'the finished draw');
    expect(await bot.stop('SIGTERM')).toMatchObject({ code: 0 });

    const spans = (existsSync(spansFile) ? readFileSync(spansFile, 'utf8') : '')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ExportedSpan);
    const job = spans.find((s) => s.name === 'job draw/draw');
    expect(job, JSON.stringify(spans.map((s) => s.name))).toBeDefined();
    expect(job!.scope).toBe('chorus-bot');
    expect(job!.attributes).toMatchObject({
      'chorus.plugin': 'draw',
      'chorus.adapter': 'telegram',
      'chorus.job.outcome': 'ok',
    });
    const children = spans.filter((s) => s.parentSpanId === job!.spanId);
    expect(children.map((s) => s.name).sort()).toEqual([
      'backend broken',
      'backend quick',
      'backend slow',
      'backend steady',
    ]);
    for (const child of children) expect(child.traceId).toBe(job!.traceId);
    const broken = children.find((s) => s.name === 'backend broken')!;
    expect(broken.attributes).toMatchObject({
      'http.response.status_code': 500,
      'chorus.backend.outcome': 'status',
    });
    expect(broken.status.code).toBe(2);
    // No chat or user id in any attribute (ids of spans are random hex, and may hold any digits).
    for (const span of spans)
      for (const value of Object.values(span.attributes)) expect(String(value)).not.toBe(String(ann.id));
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toMatch(/"chorus\.(chat|user)\.id"/);
  }, 60_000);

  it('reports a lost connection: /readyz 503 and chorus_adapter_up 0 until the platform is back', async () => {
    const w = await world();
    const bot = run(w);
    const base = await serverUrl(bot);
    await until(
      () => get(`${base}/readyz`),
      (r) => r.status === 200,
      'ready',
    );
    const up = async () =>
      /chorus_adapter_up\{adapter="telegram"\} (\d)/.exec((await get(`${base}/metrics`)).body)?.[1];
    expect(await up()).toBe('1');

    // The Bot API goes away: the long poll fails.
    const port = Number(new URL(w.telegram.url).port);
    await w.telegram.close();
    await bot.waitFor(/"msg":"adapter connection lost"/);
    const lost = await get(`${base}/readyz`);
    expect(lost.status).toBe(503);
    expect(JSON.parse(lost.body)).toEqual({ ready: false, state: 'running', waiting: ['adapter:telegram'] });
    expect(await up()).toBe('0');

    // It comes back on the same address; the next poll gets through with a message.
    await w.telegram.start(port);
    w.telegram.userSays(privateChat, ann, '/help');
    await bot.waitFor(/"msg":"adapter connected again"/, 40_000);
    expect((await get(`${base}/readyz`)).status).toBe(200);
    expect(await up()).toBe('1');
    expect((await bot.stop('SIGTERM')).code).toBe(0);
  }, 60_000);
});
