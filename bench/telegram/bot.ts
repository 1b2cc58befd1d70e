/**
 * One bot under test in the Telegram benchmark, in a process of its own so its memory is its own:
 * `chorus` (the Telegram adapter, bus, router, job and outbox, on a SQLite state store as `npm start`
 * runs it), `runner` (grammY with @grammyjs/runner: updates handled concurrently) or `sequential`
 * (grammY's `bot.start()`: one update at a time). Each echoes `/echo <text>` as `<text>`. Told
 * `{ type: 'cpu' }`, it answers the CPU time it has used; told `{ type: 'stop' }`, it stops and
 * answers `{ type: 'stopped', maxRssBytes, rssBytes }`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@grammyjs/runner';
import { Bot } from 'grammy';
import { createTelegramAdapter } from '../../adapters/telegram/index.ts';
import { createBot } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { openSqliteStore } from '../../src/runtime/sqlite-store.ts';

const [kind, apiRoot, token] = process.argv.slice(2) as [string, string, string];

async function startChorus(): Promise<() => Promise<void>> {
  const store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'chorus-bench-')), 'state.sqlite'));
  const adapter = createTelegramAdapter({
    token,
    apiRoot,
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
    store,
  });
  await bot.start();
  return async () => {
    await bot.stop();
    await store.close();
  };
}

async function startGrammy(concurrent: boolean): Promise<() => Promise<void>> {
  const bot = new Bot(token, { client: { apiRoot } });
  // A reply whose connection the fake dropped (a keep-alive race under load) is sent again, up to
  // five times, as Chorus's outbox would: every update must have its reply for the run to finish.
  const echo = async (text: string, send: (text: string) => Promise<unknown>) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send(text);
      } catch (error) {
        if (attempt === 5) throw error;
      }
    }
  };
  bot.on('message', (ctx) => echo(ctx.message.text?.slice(6) ?? '', (text) => ctx.reply(text)));
  bot.catch((error) => process.stderr.write(`bench bot: ${String(error.error)}\n`));
  await bot.init();
  if (concurrent) {
    const runner = run(bot);
    return () => runner.stop();
  }
  const running = bot.start();
  return async () => {
    await bot.stop();
    await running;
  };
}

const stop = kind === 'chorus' ? await startChorus() : await startGrammy(kind === 'runner');
process.on('message', (order: { type: string }) => {
  if (order.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ type: 'cpu', micros: user + system });
    return;
  }
  if (order.type !== 'stop') return;
  void stop().then(() => {
    process.send!({
      type: 'stopped',
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBytes: process.memoryUsage().rss,
    });
    process.exit(0);
  });
});
process.send!({ type: 'ready' });
