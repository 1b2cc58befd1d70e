/**
 * The web channel over real HTTP on 127.0.0.1: a message posted to `POST /api/messages` until its
 * `done` event (a plugin that answers at once), one client at a time (latency) and 16 at once
 * (throughput); and one bot message reaching 100 pages listening to the same chat.
 */
import { createWebAdapter } from '../adapters/web/index.ts';
import { createBot } from '../src/bot.ts';
import { createLogger } from '../src/logger.ts';
import { definePlugin } from '../src/plugin.ts';
import { HttpServer } from '../src/runtime/http-server.ts';
import type { Row } from './core.ts';

const echo = definePlugin({
  name: 'echo',
  setup: (ctx) =>
    void ctx.command({ name: 'echo', description: 'x' }, async (c) => {
      await c.reply(c.command?.args ?? '');
    }),
});

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

export async function benchWeb(): Promise<Row[]> {
  const server = new HttpServer({ port: 0 });
  const adapter = createWebAdapter({ maxChats: 100_000 });
  const bot = createBot({
    adapters: [adapter],
    plugins: [{ plugin: echo, config: undefined }],
    httpServer: server,
    log: createLogger({ level: 'silent' }),
  });
  await bot.start();
  const url = new URL('/api/messages', adapter.url);
  let seq = 0;
  /** One message, read until the stream closes after `done`. */
  const roundTrip = async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: '/echo hello', chat: `bench-${seq++}` }),
    });
    const text = await response.text();
    if (!text.includes('event: done')) throw new Error(`no done event: ${text}`);
  };
  try {
    for (let i = 0; i < 300; i++) await roundTrip(); // warm up
    const latencies: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const started = performance.now();
      await roundTrip();
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);

    const total = 4000;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < total) await roundTrip();
      }),
    );
    const perSecond = total / ((performance.now() - started) / 1000);

    // 100 pages on one chat: from the bot's send to the last page reading the event.
    const pages = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const response = await fetch(new URL('/api/chats/fanout/events', adapter.url));
        return response.body!.pipeThrough(new TextDecoderStream()).getReader();
      }),
    );
    const chat = { adapter: 'web', platform: 'web', id: 'fanout', kind: 'private' } as const;
    const fanout: number[] = [];
    for (let i = 0; i < 50; i++) {
      const sentAt = performance.now();
      await adapter.send(chat, { text: `event ${i}` });
      await Promise.all(
        pages.map(async (reader) => {
          for (;;) {
            const { value } = await reader.read();
            if (value?.includes(`event ${i}"`)) return;
          }
        }),
      );
      fanout.push(performance.now() - sentAt);
    }
    for (const reader of pages) await reader.cancel();
    fanout.sort((a, b) => a - b);

    return [
      {
        name: 'web: POST /api/messages to its done event, one client (p50 / p99)',
        value: `${percentile(latencies, 0.5).toFixed(2)} / ${percentile(latencies, 0.99).toFixed(2)} ms`,
      },
      {
        name: 'web: messages answered to done, 16 clients at once',
        value: `${Math.round(perSecond).toLocaleString('en-US')}/s`,
      },
      {
        name: 'web: one message to 100 pages on the chat (p50)',
        value: `${percentile(fanout, 0.5).toFixed(2)} ms`,
      },
    ];
  } finally {
    await bot.stop();
    await server.close();
  }
}
