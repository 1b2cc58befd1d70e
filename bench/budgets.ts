/**
 * Results first, through real budgets. `/draw` in Telegram private chats through the real
 * Telegram adapter (its default budgets) and the fake Bot API (Telegram's published limits, 429s
 * included), with four backends of 150 ms, 300 ms (failing), 600 ms and 1500 ms while the status
 * message is being updated: how long each album waits between its backend finishing and the Bot
 * API receiving it, and whether any status edit showed an older state than the albums already
 * sent. Then streams on the Telegram and Discord adapters' declared budgets, on a fake clock: how
 * long the first text of an answer takes after its first token while another answer streams in
 * the same chat.
 */
import { createDiscordAdapter } from '../adapters/discord/index.ts';
import { createTelegramAdapter } from '../adapters/telegram/index.ts';
import { plugin as draw } from '../plugins/draw/index.ts';
import type { RateLimits } from '../src/adapter.ts';
import { createBot } from '../src/bot.ts';
import { sleep } from '../src/clock.ts';
import { createLogger } from '../src/logger.ts';
import { definePlugin } from '../src/plugin.ts';
import { HttpClient } from '../src/runtime/http.ts';
import { createTestBot } from '../src/testing.ts';
import { startFakeImageBackends } from '../test/fakes/images.ts';
import { FakeTelegram } from '../test/fakes/telegram/server.ts';
import type { Row } from './core.ts';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

const backends = { fast: 150, broken: 300, mid: 600, slow: 1500 };

async function drawThroughTelegram(draws: number): Promise<Row[]> {
  const fakes = await startFakeImageBackends();
  for (const [name, ms] of Object.entries(backends))
    fakes.set(name, name === 'broken' ? 'error500' : 'ok', ms);
  const fake = await new FakeTelegram().start();
  const adapter = createTelegramAdapter({
    token: fake.token,
    apiRoot: fake.url,
  });
  const config = {
    backends: Object.keys(backends).map((name) => ({
      name,
      type: 'http-image',
      url: `${fakes.server.url}/bytes/${name}?prompt={prompt}`,
      concurrency: 100,
    })),
  };
  const bot = createBot({
    adapters: [adapter],
    plugins: [{ plugin: draw, config }],
    log: createLogger({ level: 'silent' }),
    http: new HttpClient(),
  });
  await bot.start();
  // Each draw in its own private chat, one every 400 ms: about 17 calls a second overall, under
  // the bot's global budget of 30, so the per-chat budget is what is measured.
  const chatIds: number[] = [];
  for (let i = 0; i < draws; i++) {
    const id = 50_000 + i;
    chatIds.push(id);
    fake.userSays(
      { id, type: 'private', first_name: 'U' },
      { id, is_bot: false, first_name: 'U' },
      `/draw p${i}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
  const finished = (id: number) => {
    const status = fake.chatMessages(id).find((m) => m.from?.id === fake.bot.id && m.text !== undefined);
    return status?.text?.startsWith('Finished') === true;
  };
  while (!chatIds.every(finished)) await new Promise((resolve) => setTimeout(resolve, 50));
  await bot.stop();

  const waits: number[] = [];
  const statusLag: number[] = [];
  let edits = 0;
  let staleEdits = 0;
  for (const [i, id] of chatIds.entries()) {
    const sentSoFar: string[] = [];
    for (const request of fake.requests) {
      if (request.params.chat_id === undefined || Number(request.params.chat_id) !== id) continue;
      if (fake.refused.includes(request)) continue;
      if (request.method === 'sendPhoto') {
        const name = String(request.params.caption).split(' · ')[0]!;
        sentSoFar.push(name);
        waits.push(request.at - fakes.finishedAt.get(`${name}|p${i}`)!);
      } else if (request.method === 'editMessageText') {
        edits++;
        const lines = String(request.params.text).split('\n');
        if (!sentSoFar.every((name) => lines.some((line) => line.startsWith(`✓ ${name}:`)))) staleEdits++;
        if (lines[0]!.startsWith('Finished'))
          statusLag.push(request.at - fakes.finishedAt.get(`slow|p${i}`)!);
      }
    }
  }
  const refused = fake.refused.length;
  await fake.close();
  await fakes.close();
  if (waits.length !== draws * 3) throw new Error(`albums went missing: ${waits.length} of ${draws * 3}`);
  return [
    {
      name: 'budgets: Telegram draw, album sent - backend finished p50 (ms)',
      value: percentile(waits, 50).toFixed(0),
      note: `${draws} draws, private chats, backends 150/300 failing/600/1500 ms, default budgets`,
    },
    {
      name: 'budgets: Telegram draw, album sent - backend finished p99 (ms)',
      value: percentile(waits, 99).toFixed(0),
    },
    { name: 'budgets: Telegram draw, max (ms)', value: Math.max(...waits).toFixed(0) },
    {
      name: 'budgets: Telegram draw, status edits older than an album sent',
      value: String(staleEdits),
      note: `of ${edits} status edits`,
    },
    {
      name: 'budgets: Telegram draw, status finished - slowest backend finished p50 / p99 (ms)',
      value: `${percentile(statusLag, 50).toFixed(0)} / ${percentile(statusLag, 99).toFixed(0)}`,
    },
    { name: 'budgets: Telegram draw, 429s from the fake Bot API', value: String(refused) },
  ];
}

/**
 * Two answers in one chat: the first starts streaming at 2 s, the second's first token comes
 * while the first is streaming. Returns first text minus first token of both, per run.
 */
async function firstText(rate: RateLimits, kind: 'private' | 'group', runs: number): Promise<number[]> {
  const delays: number[] = [];
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let run = 0; run < runs; run++) {
    const firstTokenAt = [2000, 2000 + 200 + Math.floor(random() * 4000)];
    const tokenAt = new Map<number, number>();
    const plugin = definePlugin({
      name: 'two',
      setup: (ctx) =>
        void ctx.command({ name: 'two', description: 'x' }, async (c) => {
          const start = c.clock.now();
          await Promise.all(
            firstTokenAt.map(async (at, n) => {
              async function* tokens() {
                await sleep(c.clock, at);
                tokenAt.set(n, c.clock.now() - start);
                for (let i = 0; i < 150; i++) {
                  if (i > 0) await sleep(c.clock, 40);
                  yield `${n}:t${i} `;
                }
              }
              await c.stream(tokens());
            }),
          );
        }),
    });
    const kit = await createTestBot({ plugins: [{ plugin }], adapter: { limits: { rate } } });
    const start = kit.clock.now();
    await kit.run(kit.send('/two', { chat: { id: 'c', kind } }));
    for (const n of [0, 1]) {
      const first = kit.adapter.calls.find((c) => c.kind === 'send' && c.message.text?.startsWith(`${n}:`));
      if (!first) throw new Error('an answer went missing');
      delays.push(first.at - start - tokenAt.get(n)!);
    }
    await kit.stop();
  }
  return delays;
}

export async function benchBudgets(): Promise<Row[]> {
  const rows = await drawThroughTelegram(Number(process.env.DRAWS ?? 60));
  const telegram = createTelegramAdapter({ token: '123456789:AAFakeTokenForChorusBench_abcdefghijk' }).limits
    .rate;
  const discord = createDiscordAdapter({
    token: `${'M'.repeat(24)}.${'abcdef'}.${'x'.repeat(27)}`,
  }).limits.rate;
  const cases: [string, RateLimits, 'private' | 'group'][] = [
    ['Telegram private chat (no drafts)', telegram, 'private'],
    ['Telegram group', telegram, 'group'],
    ['Discord channel', discord, 'group'],
  ];
  for (const [name, rate, kind] of cases) {
    const delays = await firstText(rate, kind, 100);
    rows.push({
      name: `budgets: stream first text - first token, ${name}, p50 / p99 (ms)`,
      value: `${percentile(delays, 50).toFixed(0)} / ${percentile(delays, 99).toFixed(0)}`,
      note: 'two answers in one chat, fake clock',
    });
  }
  return rows;
}
