/**
 * Messages per second through the real grammY client and the fake Bot API on 127.0.0.1: Chorus
 * (adapter, bus, router, job, outbox) against a bare grammY echo bot on the same fake, the floor
 * for our overhead. Budgets are lifted on both sides: this measures the code, not Telegram's limits.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bot } from 'grammy';
import { createTelegramAdapter } from '../adapters/telegram/index.ts';
import { createBot } from '../src/bot.ts';
import { createLogger } from '../src/logger.ts';
import { definePlugin } from '../src/plugin.ts';
import { FakeTelegram } from '../test/fakes/telegram/server.ts';
import type { Row } from './core.ts';

const count = 2000;
const chats = 200;
const unlimited = { perChatMs: 0, perGroupPerMinute: 1e9, globalPerSecond: 1e9 };

async function drive(fake: FakeTelegram): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const id = 10_000 + (i % chats);
    fake.userSays(
      { id, type: 'private', first_name: 'U' },
      { id, is_bot: false, first_name: 'U' },
      `/echo m${i}`,
    );
  }
  while (fake.calls('sendMessage').length < count) await new Promise((resolve) => setTimeout(resolve, 5));
  return (count / (performance.now() - start)) * 1000;
}

async function throughChorus(): Promise<number> {
  const fake = await new FakeTelegram({ limits: unlimited }).start();
  const adapter = createTelegramAdapter({
    token: fake.token,
    apiRoot: fake.url,
    stateDir: mkdtempSync(join(tmpdir(), 'chorus-bench-')),
    rateLimits: { perChatPerSecond: 1000, perGroupPerMinute: 1_000_000, globalPerSecond: 1_000_000 },
  });
  const echo = definePlugin({
    name: 'echo',
    setup: (ctx) =>
      void ctx.command({ name: 'echo', description: 'echo' }, (c) => c.reply(c.command!.args).then(() => {})),
  });
  const bot = createBot({
    adapters: [adapter],
    plugins: [{ plugin: echo }],
    log: createLogger({ level: 'silent' }),
  });
  await bot.start();
  const rate = await drive(fake);
  await bot.stop();
  await fake.close();
  return rate;
}

async function bareGrammy(): Promise<number> {
  const fake = await new FakeTelegram({ limits: unlimited }).start();
  const bot = new Bot(fake.token, { client: { apiRoot: fake.url } });
  bot.on('message', (ctx) => ctx.reply(ctx.message.text?.slice(6) ?? ''));
  const running = bot.start();
  const rate = await drive(fake);
  await bot.stop();
  await running;
  await fake.close();
  return rate;
}

export async function benchTelegram(): Promise<Row[]> {
  const chorus = await throughChorus();
  const bare = await bareGrammy();
  return [
    {
      name: 'telegram: messages/s, Chorus on grammY + fake Bot API',
      value: chorus.toFixed(0),
      note: `${count} messages, ${chats} chats`,
    },
    {
      name: 'telegram: messages/s, bare grammY echo bot, same fake',
      value: bare.toFixed(0),
      note: 'handles updates one by one',
    },
  ];
}
