import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/runtime/redis/queue.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { startRedis } from '../src/runtime/redis-server.ts';
import { freePort, type RunningChorus, startBackends, startChorus, until, workDir } from './harness.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const secret = 'webhook-secret-scale-0123456789';

/** A redis-server and a fake Telegram of the test's own (stopped after it), and a work folder. */
async function startShared(options: ConstructorParameters<typeof FakeTelegram>[0] = {}) {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const telegram = await new FakeTelegram(options).start();
  cleanups.push(() => telegram.close());
  return { redis, telegram, dir: workDir() };
}

/** One `npm start` on a port of its own, on the shared Redis, taking Telegram's webhook posts. */
async function startWebhookProcess(dir: string, config: string, redisUrl: string, token: string) {
  const port = await freePort();
  const bot = startChorus(dir, config, {
    env: {
      PORT: String(port),
      REDIS_URL: redisUrl,
      TELEGRAM_BOT_TOKEN: token,
      TELEGRAM_WEBHOOK_SECRET: secret,
    },
  });
  return { bot, port };
}

/** One `npm start` of the bot: its port, and the node process's own id (npm is its parent). */
interface Process {
  readonly bot: RunningChorus;
  readonly port: number;
  pid: number;
  consumer: string;
  alive: boolean;
}

describe('npm start ×3 on one Redis', () => {
  it('answers 1,000 webhook updates over 50 chats once each, in order, within the limits, through a kill -9; a cancel crosses processes', async () => {
    // Telegram's limits, scaled up so the test takes seconds: 100 a second overall, 10 a second per chat.
    const { redis, telegram, dir } = await startShared({
      limits: { globalPerSecond: 100, perChatMs: 100, perChatBurst: 5 },
    });
    const backends = await startBackends();
    cleanups.push(() => backends.close());
    backends.images.set('slow', 'ok', 20_000);
    const config = [
      'http:',
      '  server: { port: ${PORT} }',
      'state:',
      `  path: ${dir}/state.sqlite`,
      '  redis: { url: ${REDIS_URL} }',
      'adapters:',
      '  telegram:',
      '    token: ${TELEGRAM_BOT_TOKEN}',
      `    apiRoot: ${telegram.url}`,
      '    mode: webhook',
      '    webhook: { url: "https://bot.example.com/telegram", path: /telegram, secretToken: ${TELEGRAM_WEBHOOK_SECRET} }',
      // A wide margin under the service's limits for the stalls of a loaded machine (2 cores run
      // three bots, Redis and the fakes here), which deliver a second's sends bunched with the next.
      // Still narrow enough to catch a budget that is not shared: three processes at 40 a second
      // each would be 120, over the fake's 100.
      '    rateLimits: { perChatPerSecond: 6, perChatBurst: 5, globalPerSecond: 40 }',
      'plugins:',
      '  draw:',
      '    backends:',
      `      - { name: slow, type: openai-images, baseUrl: ${backends.images.server.url}/openai/slow, n: 1 }`,
      '',
    ].join('\n');
    const processes: Process[] = [];
    for (let i = 0; i < 3; i++) {
      const { bot, port } = await startWebhookProcess(dir, config, redis.url, telegram.token);
      const entry: Process = { bot, port, pid: 0, consumer: '', alive: true };
      cleanups.push(async () => {
        if (entry.alive && entry.pid) process.kill(entry.pid, 'SIGKILL');
        await bot.stop('SIGKILL');
      });
      processes.push(entry);
    }
    for (const entry of processes) {
      await entry.bot.waitFor(/adapter ready adapter=telegram/, 30_000);
      const consumer = /state in redis .*consumer=(\S+)/.exec(entry.bot.output().stderr)![1]!;
      entry.consumer = consumer;
      entry.pid = Number(consumer.split(':')[1]);
    }
    // Telegram would post to the balancer's URL; here the test is the balancer.
    telegram.webhook = undefined;

    /** Posts an update to the process `first` (or, when it is down, to the next), as a balancer would. */
    const post = async (update: unknown, first: number): Promise<number> => {
      for (let attempt = 0; attempt < 6; attempt++) {
        const target = processes[(first + attempt) % processes.length]!;
        if (!target.alive) continue;
        const status = await fetch(`http://127.0.0.1:${target.port}/telegram`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
          body: JSON.stringify(update),
        }).then(
          (response) => response.status,
          () => 0,
        );
        if (status === 200) return (first + attempt) % processes.length;
      }
      throw new Error('no process took the update');
    };

    const chats = Array.from({ length: 50 }, (_, i) => ({
      chat: { id: 7000 + i, type: 'private' as const, first_name: `User${i}` },
      user: { id: 7000 + i, is_bot: false, first_name: `User${i}` },
    }));
    const perChat = 20;
    const sent = new Map<number, number[]>(chats.map(({ chat }) => [chat.id, []]));
    let posted = 0;
    let killed: Process | undefined;
    const killOne = async () => {
      // The kill lands between two calls to Telegram: those in flight finish first, those after
      // it are never carried out, as when a process dies on the real service.
      telegram.hold();
      await new Promise((resolve) => setTimeout(resolve, 500));
      killed = processes[1]!;
      killed.alive = false;
      process.kill(killed.pid, 'SIGKILL');
      await killed.bot.exited;
      await new Promise((resolve) => setTimeout(resolve, 50));
      telegram.release();
    };
    // Each chat posts its messages one after another; the chats go at once, spread over the processes.
    await Promise.all(
      chats.map(async ({ chat, user }, c) => {
        for (let n = 0; n < perChat; n++) {
          const stored = telegram.userSays(chat, user, '/start');
          sent.get(chat.id)!.push(stored.message_id);
          const update = telegram.update(telegram.lastUpdateId);
          const took = await post(update, (c + n) % 3);
          // Every tenth update comes again, at another process: it is answered once all the same.
          if (n % 10 === 3) await post(update, took + 1);
          if (++posted === 500) await killOne();
        }
      }),
    );
    expect(killed).toBeDefined();

    const answersTo = (chatId: number) =>
      telegram
        .chatMessages(chatId)
        .filter((m) => m.from?.id === telegram.bot.id)
        .map((m) => m.reply_to_message_id);
    await until(
      () => chats.reduce((sum, { chat }) => sum + answersTo(chat.id).length, 0),
      (count) => count >= chats.length * perChat,
      'an answer to each of the 1,000 updates',
      90_000,
    );
    // Give a late duplicate the time to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const { chat } of chats) {
      // Exactly once each, and in the order they were sent.
      expect(answersTo(chat.id), `chat ${chat.id}`).toEqual(sent.get(chat.id));
    }
    // No 429: the send budgets (per chat and overall) held across the three processes.
    expect(telegram.refused).toEqual([]);

    // A drawing runs in one process; the cancel button is pressed at another.
    const artist = {
      chat: { id: 9001, type: 'private' as const, first_name: 'Ann' },
      user: { id: 9001, is_bot: false, first_name: 'Ann' },
    };
    telegram.userSays(artist.chat, artist.user, '/draw a red fox');
    await post(telegram.update(telegram.lastUpdateId), 0);
    const client = new Redis({ path: redis.socket });
    cleanups.push(async () => client.disconnect());
    const job = await (async () => {
      for (let tries = 0; tries < 200; tries++) {
        const jobs = Object.values(await client.hgetall('chorus:jobs:running')).map(
          (text) => JSON.parse(text) as { owner: string; job: { command: string } },
        );
        const draw = jobs.find((j) => j.job.command === 'draw');
        if (draw) return draw;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('the drawing never started');
    })();
    const runner = processes.findIndex((p) => p.consumer === job.owner);
    expect(runner).toBeGreaterThanOrEqual(0);
    const other = processes.findIndex((p, i) => i !== runner && p.alive);
    const status = await until(
      () =>
        telegram.chatMessages(artist.chat.id).find((m) => m.from?.id === telegram.bot.id && m.reply_markup),
      (m) => m !== undefined,
      'the drawing status with its cancel button',
    );
    telegram.userPresses(artist.chat, artist.user, status!.message_id, 'chorus:cancel');
    await post(telegram.update(telegram.lastUpdateId), other);
    await until(
      () => telegram.chatMessages(artist.chat.id).find((m) => m.message_id === status!.message_id)?.text,
      (text) => text?.startsWith('Cancelled:') ?? false,
      'the drawing cancelled',
    );
    // SIGTERM ends a process cleanly.
    const stopped = await processes[other]!.bot.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    processes[other]!.alive = false;
  }, 180_000);

  it('holds a draw backend’s concurrency and each user’s turns across processes, and shows the waiting their place', async () => {
    const { redis, telegram, dir } = await startShared();
    const backends = await startBackends();
    cleanups.push(() => backends.close());
    backends.images.set('one', 'ok', 700);
    const config = [
      'http:',
      '  server: { port: ${PORT} }',
      `state: { path: ${dir}/state.sqlite, redis: { url: "\${REDIS_URL}" } }`,
      'adapters:',
      '  telegram:',
      '    token: ${TELEGRAM_BOT_TOKEN}',
      `    apiRoot: ${telegram.url}`,
      '    mode: webhook',
      '    webhook: { url: "https://bot.example.com/telegram", path: /telegram, secretToken: ${TELEGRAM_WEBHOOK_SECRET} }',
      'plugins:',
      '  draw:',
      '    backends:',
      `      - { name: one, type: openai-images, baseUrl: ${backends.images.server.url}/openai/one, n: 1, concurrency: 1 }`,
      '',
    ].join('\n');
    const ports: number[] = [];
    const consumers: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { bot, port } = await startWebhookProcess(dir, config, redis.url, telegram.token);
      cleanups.push(() => bot.stop('SIGKILL'));
      await bot.waitFor(/adapter ready adapter=telegram/, 30_000);
      ports.push(port);
      consumers.push(/state in redis .*consumer=(\S+)/.exec(bot.output().stderr)![1]!);
    }
    telegram.webhook = undefined;
    // Each chat's messages run in the process that holds its stream: wait until the two share the
    // streams, then pick chats so that each process runs some of the drawings.
    const client = new Redis({ path: redis.socket });
    cleanups.push(async () => client.disconnect());
    const leases = Array.from({ length: 16 }, (_, i) => `chorus:work:lease:${i}`);
    const owners = await (async () => {
      for (let tries = 0; tries < 300; tries++) {
        const held = await client.mget(...leases);
        if (consumers.every((c) => held.includes(c))) return held;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('the two processes never shared the streams');
    })();
    /** The next chat id from `from` whose messages run in process `p`. */
    const chatRunIn = (p: number, from: number, taken: Set<number>) => {
      for (let id = from; ; id += from < 0 ? -1 : 1) {
        if (taken.has(id)) continue;
        if (owners[partitionOf(`telegram:${id}`, 16)] === consumers[p]) {
          taken.add(id);
          return id;
        }
      }
    };
    const taken = new Set<number>();
    const post = async (update: unknown, to: number) => {
      const response = await fetch(`http://127.0.0.1:${ports[to]}/telegram`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
        body: JSON.stringify(update),
      });
      expect(response.status).toBe(200);
    };
    const says = (
      chat: { id: number; type: 'private' | 'group'; first_name?: string; title?: string },
      user: { id: number; is_bot: false; first_name: string },
      text: string,
      to: number,
    ) => {
      telegram.userSays(chat, user, text);
      return post(telegram.update(telegram.lastUpdateId), to);
    };
    // Ann draws in two groups, through each process: her second drawing waits for her first.
    const ann = { id: 9300, is_bot: false as const, first_name: 'Ann' };
    const groups = [0, 1].map((p) => {
      const id = chatRunIn(p, -9310, taken);
      return { id, type: 'group' as const, title: `G${id}` };
    });
    await says(groups[0]!, ann, '/draw a fox', 0);
    await until(
      () => backends.images.mostInFlight.get('one') ?? 0,
      (n) => n >= 1,
      'the first drawing at the backend',
    );
    await says(groups[1]!, ann, '/draw a crow', 1);
    // Four more users draw at once, two in each process, each posting through the other one.
    const users = [0, 1, 0, 1].map((p, i) => {
      const id = chatRunIn(p, 9320, taken);
      return {
        chat: { id, type: 'private' as const, first_name: `U${i}` },
        user: { id, is_bot: false as const, first_name: `U${i}` },
      };
    });
    for (const [i, { chat, user }] of users.entries())
      await says(chat, user, `/draw picture ${i}`, (i + 1) % 2);

    const chatIds = [...groups.map((g) => g.id), ...users.map((u) => u.chat.id)];
    const statusOf = (chatId: number) =>
      telegram
        .chatMessages(chatId)
        .find((m) => m.from?.id === telegram.bot.id && m.text?.startsWith('Finished'));
    await until(
      () => chatIds.filter((id) => statusOf(id) === undefined),
      (left) => left.length === 0,
      'every drawing finished',
      60_000,
    );
    for (const id of chatIds) expect(statusOf(id)!.text, `chat ${id}`).toContain('Finished: 1/1');
    // Never more than one request at the backend, whichever process sent it.
    expect(backends.images.mostInFlight.get('one')).toBe(1);
    // The waiting saw their place in the backend's line, across both processes.
    const texts = (chatId: number) =>
      ['sendMessage', 'editMessageText']
        .flatMap((method) => telegram.calls(method))
        .filter((call) => Number(call.params.chat_id) === chatId)
        .map((call) => String(call.params.text));
    const places = users.flatMap(({ chat }) =>
      texts(chat.id).flatMap((text) =>
        [...text.matchAll(/one: queued, (\d+) ahead/g)].map((m) => Number(m[1])),
      ),
    );
    // How far along the line a user is seen depends on the timing of the edits (they are paced
    // and coalesced): what must hold is that the waiting are shown a place at all.
    expect(places.length).toBeGreaterThan(0);
    expect(places).toContain(0);
    // Ann's second drawing, in the other process, waited for her first: one notice says so.
    expect(texts(groups[1]!.id)).toContain('1 more drawing(s) of yours waiting for the one running...');
    expect(texts(groups[1]!.id)).toContain('Your waiting drawings have all started.');
  }, 120_000);

  it('polls Telegram from one process at a time; when it is killed, another takes the polling over', async () => {
    const { redis, telegram, dir } = await startShared();
    const config = [
      `state: { path: ${dir}/state.sqlite, redis: { url: "\${REDIS_URL}" } }`,
      'adapters:',
      '  telegram:',
      '    token: ${TELEGRAM_BOT_TOKEN}',
      `    apiRoot: ${telegram.url}`,
      '',
    ].join('\n');
    const bots = [0, 1].map(() => {
      const bot = startChorus(dir, config, {
        env: { REDIS_URL: redis.url, TELEGRAM_BOT_TOKEN: telegram.token },
      });
      cleanups.push(() => bot.stop('SIGKILL'));
      return bot;
    });
    for (const bot of bots) await bot.waitFor(/adapter ready adapter=telegram/, 30_000);
    const poller = await until(
      () => bots.findIndex((bot) => /this process polls telegram/.test(bot.output().stderr)),
      (index) => index >= 0,
      'a process that polls',
    );
    const chat = { id: 8100, type: 'private' as const, first_name: 'Ann' };
    const user = { id: 8100, is_bot: false, first_name: 'Ann' };
    const asked: number[] = [];
    const answered = () =>
      telegram
        .chatMessages(chat.id)
        .filter((m) => m.from?.id === telegram.bot.id)
        .map((m) => m.reply_to_message_id);
    for (let i = 0; i < 3; i++) asked.push(telegram.userSays(chat, user, '/start').message_id);
    await until(answered, (ids) => ids.length >= 3, 'the first answers');

    const pid = Number(/consumer=[^:\s]+:(\d+):/.exec(bots[poller]!.output().stderr)![1]);
    // The kill lands between two calls to Telegram, as in the test above: an answer whose call
    // reached Telegram has had its job end; one held back is never carried out.
    telegram.hold();
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(pid, 'SIGKILL');
    await bots[poller]!.exited;
    telegram.release();
    for (let i = 0; i < 3; i++) asked.push(telegram.userSays(chat, user, '/start').message_id);
    const other = bots[1 - poller]!;
    await other.waitFor(/this process polls telegram/, 20_000);
    await until(answered, (ids) => ids.length >= 6, 'the answers after the takeover', 30_000);
    expect(answered()).toEqual(asked);
    // Never two polls at once: the fake ends the older with 409, which the adapter would log.
    for (const bot of bots) expect(bot.output().stderr).not.toMatch(/polling stopped/);
  }, 90_000);
});
