/**
 * Core overhead: messages per second through bus → router → job → handler → outbox → adapter
 * (no I/O), against calling the same handler directly; and what `asCompleted` adds per settled task.
 */
import type { Adapter } from '../src/adapter.ts';
import { createBot } from '../src/bot.ts';
import { asCompleted } from '../src/concurrency.ts';
import { createLogger } from '../src/logger.ts';
import type { ChatAddress, IncomingMessage, OutgoingMessage, SentMessage } from '../src/message.ts';
import type { Metrics } from '../src/metrics.ts';
import { definePlugin } from '../src/plugin.ts';

export interface Row {
  readonly name: string;
  readonly value: string;
  readonly note?: string;
}

/** An adapter that does nothing, fast: what is measured is Chorus. */
function nullAdapter(): Adapter & { host: Parameters<Adapter['start']>[0] | undefined } {
  let next = 0;
  const adapter = {
    name: 'null',
    platform: 'null',
    commandPrefixes: ['/'],
    limits: { rate: {}, maxTextLength: 4096, maxCaptionLength: 1024 },
    host: undefined as Parameters<Adapter['start']>[0] | undefined,
    async start(host: Parameters<Adapter['start']>[0]) {
      adapter.host = host;
      return { id: 'b', username: 'bench_bot', name: 'Bench' };
    },
    async stop() {},
    async send(chat: ChatAddress, _message: OutgoingMessage): Promise<SentMessage> {
      return { chat, ids: [String(++next)] };
    },
    async edit() {},
  };
  return adapter;
}

const chat: ChatAddress = { adapter: 'null', platform: 'null', id: 'c', kind: 'private' };
const message = (i: number): IncomingMessage => ({
  id: String(i),
  chat: { ...chat, id: `c${i % 100}` },
  sender: { id: `u${i % 100}`, name: 'u' },
  text: '/echo hello',
  mentionsBot: false,
  images: [],
  date: 0,
});

/** Messages per second through the whole core path; with `metrics`, counting as `/metrics` would. */
export async function throughChorus(count: number, metrics?: Metrics): Promise<number> {
  const adapter = nullAdapter();
  const plugin = definePlugin({
    name: 'echo',
    setup: (ctx) =>
      void ctx.command({ name: 'echo', description: 'echo' }, async (c) => {
        await c.reply(c.command!.args);
      }),
  });
  const bot = createBot({
    adapters: [adapter],
    plugins: [{ plugin }],
    log: createLogger({ level: 'silent' }),
    ...(metrics && { metrics }),
  });
  await bot.start();
  const start = performance.now();
  // receive resolves once the router has taken a message; settled once its job has answered.
  const handle = async (m: IncomingMessage) => {
    await adapter.host!.receive(m);
    await bot.settled(m);
  };
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => handle(message(i + j))));
  }
  const ms = performance.now() - start;
  await bot.stop();
  return (count / ms) * 1000;
}

async function direct(count: number): Promise<number> {
  const adapter = nullAdapter();
  const handler = async (m: IncomingMessage) => {
    await adapter.send(m.chat, { text: m.text.slice(6), replyTo: m.id });
  };
  const start = performance.now();
  for (let i = 0; i < count; i += 100)
    await Promise.all(Array.from({ length: 100 }, (_, j) => handler(message(i + j))));
  return (count / (performance.now() - start)) * 1000;
}

async function asCompletedOverhead(tasks: number): Promise<{ helper: number; baseline: number }> {
  const make = () => Array.from({ length: tasks }, (_, i) => async () => i);
  let start = performance.now();
  let seen = 0;
  for await (const result of asCompleted(make())) if (result.status === 'fulfilled') seen++;
  const helper = ((performance.now() - start) * 1e6) / tasks;
  start = performance.now();
  const settled = await Promise.allSettled(make().map((task) => task()));
  const baseline = ((performance.now() - start) * 1e6) / tasks;
  if (seen !== tasks || settled.length !== tasks) throw new Error('lost results');
  return { helper, baseline };
}

const median = (values: number[]): number => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

export async function benchCore(): Promise<Row[]> {
  const count = 50_000;
  await throughChorus(5_000); // warm up
  await direct(5_000);
  // Five rounds, each way in turn, and the median of each: one round can meet a GC or a busy core.
  const chorusRuns: number[] = [];
  const bareRuns: number[] = [];
  for (let round = 0; round < 5; round++) {
    chorusRuns.push(await throughChorus(count));
    bareRuns.push(await direct(count));
  }
  const chorus = median(chorusRuns);
  const bare = median(bareRuns);
  const overhead = await asCompletedOverhead(100_000);
  return [
    {
      name: 'messages/s through bus, router, job, handler, outbox',
      value: chorus.toFixed(0),
      note: `${count} messages, 100 chats; median of 5 rounds`,
    },
    { name: 'messages/s calling the handler directly', value: bare.toFixed(0) },
    { name: 'Chorus overhead per message (µs)', value: (1e6 / chorus - 1e6 / bare).toFixed(1) },
    { name: 'asCompleted per settled task (ns)', value: overhead.helper.toFixed(0), note: '100,000 tasks' },
    { name: 'Promise.allSettled per task (ns)', value: overhead.baseline.toFixed(0), note: 'baseline' },
  ];
}
