import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readJson } from '../../src/http.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { createTestBot } from '../../src/testing.ts';
import { tracerName } from '../../src/tracing.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  // What an application's SDK setup does: a global provider, and a context manager to carry spans.
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  exporter.reset();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function backends(): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/broken')) return void res.writeHead(503).end('busy');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('traces', () => {
  it('a job is a span with a child span per backend request, named and attributed without chat or user ids', async () => {
    const url = await backends();
    const http = new HttpClient();
    cleanups.push(() => http.close());
    const plugin = definePlugin({
      name: 'fan',
      setup(ctx) {
        ctx.command({ name: 'fan', description: 'fan out' }, async (c) => {
          const results = await Promise.allSettled([
            ctx.http
              .request(`${url}/good?key=abc`, { backend: 'good', signal: c.signal })
              .then((r) => readJson(r, 'good')),
            ctx.http.request(`${url}/broken`, { backend: 'broken', signal: c.signal, body: '{}' }),
          ]);
          await c.reply(results.map((r) => r.status).join(','));
        });
        ctx.command({ name: 'boom', description: 'fails' }, () => {
          throw new Error('nope');
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }], realTime: true });
    cleanups.push(() => kit.stop());
    // The bot's own client is the default one; plugins get it wrapped.
    expect(kit.bot.http).toBeInstanceOf(HttpClient);
    await kit.send('/fan', { user: { id: 'user-777' }, chat: { id: 'chat-999' } });
    await kit.send('/boom', { user: { id: 'user-777' }, chat: { id: 'chat-999' } });
    expect(kit.adapter.texts()[0]).toBe('fulfilled,rejected');

    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.find((s) => s.name === name);
    const job = byName('job fan/fan')!;
    expect(job).toBeDefined();
    expect(job.instrumentationScope.name).toBe(tracerName);
    expect(job.kind).toBe(SpanKind.INTERNAL);
    expect(job.parentSpanContext).toBeUndefined();
    expect(job.attributes).toMatchObject({
      'chorus.plugin': 'fan',
      'chorus.command': 'fan',
      'chorus.adapter': 'mock',
      'chorus.chat.kind': 'private',
      'chorus.job.outcome': 'ok',
    });
    expect(job.status.code).toBe(SpanStatusCode.UNSET);

    const good = byName('backend good')!;
    const broken = byName('backend broken')!;
    for (const child of [good, broken]) {
      expect(child.kind).toBe(SpanKind.CLIENT);
      expect(child.parentSpanContext?.spanId).toBe(job.spanContext().spanId);
      expect(child.spanContext().traceId).toBe(job.spanContext().traceId);
      // Children end before their job. Each span anchors its clock to Date.now() when it starts,
      // to the millisecond, so two spans' times compare only to within one.
      const nanos = ([seconds, nanoseconds]: readonly [number, number]) =>
        BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds);
      expect(nanos(child.endTime)).toBeLessThanOrEqual(nanos(job.endTime) + 1_000_000n);
    }
    expect(good.attributes).toMatchObject({
      'chorus.plugin': 'fan',
      'chorus.backend': 'good',
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
      'chorus.backend.outcome': 'ok',
      'chorus.backend.bytes': 11,
    });
    expect(broken.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.response.status_code': 503,
      'chorus.backend.outcome': 'status',
    });
    expect(broken.status).toEqual({ code: SpanStatusCode.ERROR, message: 'status' });

    const failed = byName('job fan/boom')!;
    expect(failed.attributes['chorus.job.outcome']).toBe('failed');
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    // Two jobs, two traces: nothing leaks from one job's context into the next.
    expect(failed.spanContext().traceId).not.toBe(job.spanContext().traceId);

    // Nothing that identifies a person, and no URL (its query may carry a key).
    const attributes = JSON.stringify(spans.map((s: ReadableSpan) => s.attributes));
    for (const forbidden of ['user-777', 'chat-999', 'key=abc', '/good'])
      expect(attributes).not.toContain(forbidden);
  });
});
