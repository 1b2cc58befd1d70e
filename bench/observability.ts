/**
 * What observability costs a message: the core path with and without metrics (alternating runs,
 * medians), the counting alone, a job's span when no OpenTelemetry SDK is registered (the API's
 * no-op), and a log line of ours (text, JSON) against pino's.
 */
import { pino } from 'pino';
import { createLogger, Redactor } from '../src/logger.ts';
import { Metrics } from '../src/metrics.ts';
import { contextWith, endSpan, runIn, startSpan } from '../src/tracing.ts';
import { type Row, throughChorus } from './core.ts';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Nanoseconds per call of `fn`, the best of `rounds` rounds of `count` calls. */
function nsPerCall(count: number, rounds: number, fn: (i: number) => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    for (let i = 0; i < count; i++) fn(i);
    best = Math.min(best, ((performance.now() - start) * 1e6) / count);
  }
  return best;
}

/** CPU µs (user + system) per message of one run through the core. */
async function cpuPerMessage(count: number, metrics?: Metrics): Promise<number> {
  const start = process.cpuUsage();
  await throughChorus(count, metrics);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

/**
 * CPU µs per message through the core, with and without metrics: pairs of runs, in turn first,
 * and the median of the pairs' differences (CPU time, since wall time on a shared machine varies
 * more than the difference measured).
 */
async function corePath(): Promise<{ off: number; on: number; cost: number }> {
  const count = 20_000;
  await cpuPerMessage(5_000);
  await cpuPerMessage(5_000, new Metrics());
  const off: number[] = [];
  const on: number[] = [];
  const cost: number[] = [];
  for (let pair = 0; pair < 15; pair++) {
    const metricsFirst = pair % 2 === 1;
    const a = await cpuPerMessage(count, metricsFirst ? new Metrics() : undefined);
    const b = await cpuPerMessage(count, metricsFirst ? undefined : new Metrics());
    const [without, withMetrics] = metricsFirst ? [b, a] : [a, b];
    off.push(without);
    on.push(withMetrics);
    cost.push(withMetrics - without);
  }
  return { off: median(off), on: median(on), cost: median(cost) };
}

/**
 * What metrics add to one message, alone: the received counter, the job's outcome and duration,
 * a send and its wait in the outbox, with the clock reads they need.
 */
function countingAlone(): number {
  const metrics = new Metrics();
  const adapter = metrics.adapter('telegram');
  const job = metrics.job('echo', 'echo');
  let sink = 0;
  const ns = nsPerCall(1_000_000, 5, (i) => {
    adapter.received++;
    const queuedAt = Date.now();
    adapter.send++;
    adapter.outboxWait.observe((Date.now() - queuedAt) / 1000);
    job.ok++;
    job.duration.observe((i % 2000) / 1000);
  });
  sink += adapter.received;
  if (sink === 0) throw new Error('nothing counted');
  return ns;
}

/** A job's span with no SDK registered: what every job pays for tracing being possible. */
function noopSpan(): number {
  let ran = 0;
  const ns = nsPerCall(1_000_000, 5, () => {
    const span = startSpan('job echo/echo');
    if (span.isRecording()) span.setAttribute('chorus.plugin', 'echo');
    ran += runIn(contextWith(span), () => 1);
    endSpan(span, 'ok', 'chorus.job.outcome');
  });
  if (ran === 0) throw new Error('the job never ran');
  return ns;
}

interface LogCosts {
  readonly text: number;
  readonly json: number;
  readonly pino: number;
  readonly pinoRedacted: number;
  readonly disabled: number;
}

function logLines(): LogCosts {
  const redactor = new Redactor();
  for (const secret of [
    'sk-live-abcdef123456',
    '123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef',
    'hunter2-password',
  ])
    redactor.add(secret);
  const fields = (i: number) => ({ backend: 'gpt', status: 200, ms: i % 1000, bytes: 3041 });
  const drop = () => {};
  const text = createLogger({ level: 'debug', redactor, write: drop }).child('ask');
  const json = createLogger({ level: 'debug', format: 'json', redactor, write: drop }).child('ask');
  const quiet = createLogger({ level: 'info', redactor, write: drop }).child('ask');
  const viaPino = pino({ level: 'debug', base: null }, { write: drop }).child({ scope: 'chorus:ask' });
  // pino redacts by path; the same values-anywhere redaction as ours goes through its write hook.
  const viaPinoRedacted = pino(
    { level: 'debug', base: null, hooks: { streamWrite: (line) => redactor.redact(line) } },
    { write: drop },
  ).child({ scope: 'chorus:ask' });
  const count = 200_000;
  return {
    text: nsPerCall(count, 5, (i) => text.debug('backend request', fields(i))),
    json: nsPerCall(count, 5, (i) => json.debug('backend request', fields(i))),
    pino: nsPerCall(count, 5, (i) => viaPino.debug(fields(i), 'backend request')),
    pinoRedacted: nsPerCall(count, 5, (i) => viaPinoRedacted.debug(fields(i), 'backend request')),
    disabled: nsPerCall(count, 5, (i) => quiet.debug('backend request', fields(i))),
  };
}

export async function benchObservability(): Promise<Row[]> {
  const core = await corePath();
  const counting = countingAlone();
  const span = noopSpan();
  const logs = logLines();
  return [
    {
      name: 'core path, CPU per message, metrics off (µs)',
      value: core.off.toFixed(2),
      note: 'median of 15 runs of 20,000',
    },
    {
      name: 'core path, CPU per message, metrics on (µs)',
      value: core.on.toFixed(2),
      note: 'in pairs with the runs above',
    },
    {
      name: 'metrics cost per message, core path (µs)',
      value: core.cost.toFixed(2),
      note: 'goal under 1 µs; median of the 15 pairs’ differences',
    },
    {
      name: 'metrics cost per message, the counting alone (ns)',
      value: counting.toFixed(0),
      note: 'received, sent, outbox wait, job outcome and duration, clock reads',
    },
    {
      name: 'a job span with no OpenTelemetry SDK (ns)',
      value: span.toFixed(0),
      note: 'the API’s no-op tracer',
    },
    { name: 'log line, ours, text (ns)', value: logs.text.toFixed(0), note: '4 fields, 3 secrets redacted' },
    { name: 'log line, ours, JSON (ns)', value: logs.json.toFixed(0), note: 'same, one JSON object' },
    { name: 'log line, pino, JSON (ns)', value: logs.pino.toFixed(0), note: 'same fields, no redaction' },
    {
      name: 'log line, pino, JSON, redacted as ours (ns)',
      value: logs.pinoRedacted.toFixed(0),
      note: 'our Redactor in its streamWrite hook',
    },
    { name: 'debug line below the level, ours (ns)', value: logs.disabled.toFixed(0) },
  ];
}
