import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTelegramAdapter,
  type TelegramAdapterOptions,
  telegramConfig,
} from '../../adapters/telegram/index.ts';
import { markdownToTelegramHtml } from '../../adapters/telegram/markdown.ts';
import { albumChunks, normalizeMessage } from '../../adapters/telegram/normalize.ts';
import { plugin as ask } from '../../plugins/ask/index.ts';
import { plugin as draw } from '../../plugins/draw/index.ts';
import { createBot, type PluginEntry } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { HttpServer } from '../../src/runtime/http-server.ts';
import { openSqliteStore } from '../../src/runtime/sqlite-store.ts';
import { MemoryStore, type Store } from '../../src/store.ts';
import { startFakeImageBackends } from '../fakes/images.ts';
import { startFakeLlm } from '../fakes/llm.ts';
import { FakeTelegram, parseTelegramHtml } from '../fakes/telegram/server.ts';
import { checkTelegramRequests } from '../fakes/telegram/spec.ts';
import { eventually } from './contract.ts';

const ann = { id: 501, is_bot: false, first_name: 'Ann', username: 'ann' };
const bob = { id: 502, is_bot: false, first_name: 'Bob' };
const privateChat = { id: 501, type: 'private' as const, first_name: 'Ann' };
const group = { id: -1001, type: 'supergroup' as const, title: 'Friends' };
const forum = { id: -1002, type: 'supergroup' as const, title: 'Forum', is_forum: true as const };

const echo = definePlugin({
  name: 'echo',
  setup(ctx) {
    ctx.command({ name: 'echo', description: 'Say it back' }, async (c) => {
      await c.reply(c.command?.args || '(nothing)');
    });
  },
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: {
  plugins?: PluginEntry[];
  fake?: FakeTelegram;
  adapter?: Partial<TelegramAdapterOptions>;
  store?: Store;
  logs?: string[];
  httpServer?: HttpServer;
}) {
  const fake = options.fake ?? (await new FakeTelegram().start());
  if (!options.fake) cleanups.push(() => fake.close());
  const adapter = createTelegramAdapter({
    token: fake.token,
    apiRoot: fake.url,
    ...options.adapter,
  });
  const logs = options.logs ?? [];
  const bot = createBot({
    http: new HttpClient(),
    adapters: [adapter],
    plugins: options.plugins ?? [{ plugin: echo }],
    log: createLogger({ level: 'debug', write: (line) => logs.push(line) }),
    ...(options.httpServer && { httpServer: options.httpServer }),
    ...(options.store && { store: options.store }),
  });
  await bot.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await bot.stop();
  };
  cleanups.push(async () => {
    await stop();
    expect(checkTelegramRequests(fake.requests)).toEqual([]);
  });
  return { fake, bot, adapter, stop, logs };
}

const botMessages = (fake: FakeTelegram, chatId: number) =>
  fake.chatMessages(chatId).filter((m) => m.from?.id === fake.bot.id);

describe('telegram adapter with the real grammY client', () => {
  it('answers in private chats, groups and forum topics, as a reply, in the same topic', async () => {
    const { fake } = await start({});
    const inPrivate = fake.userSays(privateChat, ann, '/echo hello');
    const inGroup = fake.userSays(group, bob, '/echo@chorus_bot in the group', {
      entities: [{ type: 'bot_command', offset: 0, length: 16 }],
    });
    fake.userSays(group, bob, '/echo@other_bot not for us');
    const inTopic = fake.userSays(forum, ann, '/echo in the topic', { threadId: 77 });
    await eventually(
      () => fake.calls('sendMessage').length,
      (n) => n >= 3,
      'three replies',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(botMessages(fake, privateChat.id).map((m) => [m.text, m.reply_to_message_id])).toEqual([
      ['hello', inPrivate.message_id],
    ]);
    expect(botMessages(fake, group.id).map((m) => [m.text, m.reply_to_message_id])).toEqual([
      ['in the group', inGroup.message_id],
    ]);
    expect(
      botMessages(fake, forum.id).map((m) => [m.text, m.message_thread_id, m.reply_to_message_id]),
    ).toEqual([['in the topic', 77, inTopic.message_id]]);
    expect(fake.commands).toContainEqual({ command: 'echo', description: 'Say it back' });
  });

  it('sends draw albums of 1, 4 and 12 images as a photo and media groups of at most 10, losing none', async () => {
    const images = await startFakeImageBackends();
    cleanups.push(() => images.close());
    for (const name of ['one', 'four']) images.set(name, 'ok', { one: 10, four: 150 }[name]);
    const backend = (name: string, n: number) => ({
      name,
      type: 'openai-images',
      baseUrl: `${images.server.url}/openai/${name}`,
      n,
    });
    // OpenAI draws at most 10 at once; twelve come from the built-in demo backend, over real HTTP too.
    const twelve = { name: 'twelve', type: 'demo', latencyMs: 400, n: 12 };
    const fake = await new FakeTelegram({ limits: { perChatMs: 200 } }).start();
    cleanups.push(() => fake.close());
    await start({
      fake,
      plugins: [
        {
          plugin: draw,
          config: { maxImages: 12, backends: [backend('one', 1), backend('four', 4), twelve] },
        },
      ],
      adapter: { rateLimits: { perChatPerSecond: 5 } },
    });
    fake.userSays(privateChat, ann, '/draw a red fox');
    await eventually(
      () => botMessages(fake, privateChat.id).filter((m) => m.photo).length,
      (n) => n === 17,
      '17 pictures',
    );
    await eventually(
      () => botMessages(fake, privateChat.id)[0]?.text ?? '',
      (t) => t.startsWith('Finished: 3/3'),
      'the status',
    );
    expect(fake.calls('sendPhoto')).toHaveLength(1);
    expect(fake.calls('sendMediaGroup').map((r) => (r.params.media as unknown[]).length)).toEqual([4, 10, 2]);
    const captions = fake
      .calls('sendMediaGroup')
      .map((r) => (r.params.media as { caption?: string }[]).map((m) => m.caption ?? ''));
    expect(captions[0]![0]).toMatch(/^four · /);
    expect(captions[1]![0]).toMatch(/^twelve · /);
    expect(captions[2]).toEqual(['', '']);
    expect(fake.refused).toEqual([]);
    // The Cancel button was removed when the status message was finished.
    expect(botMessages(fake, privateChat.id)[0]!.reply_markup).toEqual({ inline_keyboard: [] });
  });

  it('streams an ask answer: drafts in private, edits in a group, final text as HTML, no 429', async () => {
    const llm = await startFakeLlm();
    cleanups.push(() => llm.close());
    const words = Array.from({ length: 40 }, (_, i) => (i === 3 ? '**bold** ' : `w${i} `));
    llm.script('m', { pieces: words, gapMs: 30 });
    const { fake } = await start({
      plugins: [
        {
          plugin: ask,
          config: {
            backends: [{ name: 'm', type: 'openai', baseUrl: `${llm.url}/v1`, model: 'm' }],
            memory: { path: ':memory:' },
          },
        },
      ],
    });
    fake.userSays(privateChat, ann, 'tell me');
    fake.userSays(group, bob, '@chorus_bot tell us', {
      entities: [{ type: 'mention', offset: 0, length: 11 }],
    });
    // A group gets 20 messages a minute: the final edit waits about 3 s after the first message.
    await eventually(
      () => botMessages(fake, group.id)[0]?.parse_mode,
      (mode) => mode === 'HTML',
      'the final group edit',
      10_000,
    );
    await eventually(
      () => botMessages(fake, privateChat.id)[0]?.parse_mode,
      (mode) => mode === 'HTML',
      'the private answer',
    );
    const expected = words.join('').trim().replace('**bold**', 'bold');
    expect(parseTelegramHtml(botMessages(fake, privateChat.id)[0]!.text!)).toBe(expected);
    expect(botMessages(fake, privateChat.id)[0]!.text).toContain('<b>bold</b>');
    expect(parseTelegramHtml(botMessages(fake, group.id)[0]!.text!)).toBe(expected);
    expect(fake.drafts.length).toBeGreaterThan(1);
    expect(fake.drafts.every((d) => d.chat_id === privateChat.id)).toBe(true);
    expect(botMessages(fake, privateChat.id)[0]!.edits).toBe(0);
    expect(botMessages(fake, group.id)[0]!.edits).toBeGreaterThanOrEqual(1);
    expect(fake.calls('sendChatAction').length).toBeGreaterThanOrEqual(2);
    expect(fake.refused).toEqual([]);
  });

  it('rides out a 429 storm: every reply arrives once', async () => {
    const fake = await new FakeTelegram({ limits: { perChatMs: 0 } }).start();
    cleanups.push(() => fake.close());
    fake.failNext(
      'sendMessage',
      { code: 429, description: 'Too Many Requests: retry after 1', retryAfter: 1 },
      6,
    );
    await start({ fake });
    for (const n of [1, 2, 3]) fake.userSays(privateChat, ann, `/echo n${n}`);
    await eventually(
      () => botMessages(fake, privateChat.id).length,
      (n) => n === 3,
      'three replies',
      20_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(
      botMessages(fake, privateChat.id)
        .map((m) => m.text)
        .sort(),
    ).toEqual(['n1', 'n2', 'n3']);
    expect(fake.refused.length).toBe(6);
  }, 30_000);

  it('loses no update across a restart and handles none twice, even one redelivered after a crash', async () => {
    const fake = await new FakeTelegram({ limits: { perChatMs: 0 } }).start();
    cleanups.push(() => fake.close());
    const store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'chorus-tg-')), 'state.sqlite'));
    cleanups.push(() => store.close());
    const logs: string[] = [];
    const first = await start({ fake, store, logs });
    fake.userSays(privateChat, ann, '/echo before');
    await eventually(
      () => botMessages(fake, privateChat.id).length,
      (n) => n === 1,
      'the first reply',
    );
    const handled = fake.requests.filter((r) => r.method === 'getUpdates').length;
    await first.stop();
    expect(handled).toBeGreaterThan(0);
    // While the bot is down, users keep writing; and Telegram sends an already handled update again.
    fake.userSays(privateChat, ann, '/echo while down 1');
    fake.userSays(privateChat, ann, '/echo while down 2');
    fake.redeliver(100);
    await start({ fake, store, logs });
    await eventually(
      () => botMessages(fake, privateChat.id).length,
      (n) => n >= 3,
      'the waiting updates',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(botMessages(fake, privateChat.id).map((m) => m.text)).toEqual([
      'before',
      'while down 1',
      'while down 2',
    ]);
    expect(logs.join('\n')).not.toMatch(/Conflict|polling stopped/);
    expect(fake.pendingUpdates).toBe(0);
  });

  it('answers an update that waits while the bot starts, and confirms it only once it is taken', async () => {
    const fake = await new FakeTelegram({ limits: { perChatMs: 0 } }).start();
    cleanups.push(() => fake.close());
    // The update is there before the bot starts, and the bot is slow to finish starting.
    fake.userSays(privateChat, ann, '/echo early bird');
    fake.delay('setMyCommands', 300);
    await start({ fake });
    await eventually(
      () => botMessages(fake, privateChat.id).map((m) => m.text),
      (texts) => texts.includes('early bird'),
      'the reply to the early update',
    );
    expect(fake.pendingUpdates).toBe(0);
  });

  it('is never silenced when update ids go down (another token or server, or a week of silence)', async () => {
    const store = new MemoryStore();
    const high = await new FakeTelegram({ limits: { perChatMs: 0 }, firstUpdateId: 900_000 }).start();
    cleanups.push(() => high.close());
    const first = await start({ fake: high, store, adapter: { name: 'first' } });
    high.userSays(privateChat, ann, '/echo high');
    await eventually(
      () => botMessages(high, privateChat.id).length,
      (n) => n === 1,
      'the first reply',
    );
    await first.stop();
    // The same bot, and Telegram now counts from far lower.
    const low = await new FakeTelegram({ limits: { perChatMs: 0 }, firstUpdateId: 5 }).start();
    cleanups.push(() => low.close());
    await start({ fake: low, store, adapter: { name: 'renamed' } });
    low.userSays(privateChat, ann, '/echo low 1');
    low.userSays(privateChat, ann, '/echo low 2');
    await eventually(
      () =>
        botMessages(low, privateChat.id)
          .map((m) => m.text)
          .sort(),
      (texts) => texts.length === 2,
      'both replies',
    );
    expect(
      botMessages(low, privateChat.id)
        .map((m) => m.text)
        .sort(),
    ).toEqual(['low 1', 'low 2']);
    // What is remembered is the bot's (by its id), whatever the adapter instance is called.
    const keys = (await store.list('')).map((entry) => entry.key);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys)
      expect(key).toMatch(new RegExp(`^adapter:telegram:(handled|held):${high.token.split(':')[0]}(:|$)`));
  });

  it('rides out a network outage with growing waits, then carries on', async () => {
    const down = await new FakeTelegram().start();
    const port = Number(new URL(down.url).port);
    const logs: string[] = [];
    await start({ fake: down, logs });
    await down.close();
    await eventually(
      () => logs.filter((l) => l.includes('telegram unreachable, retrying')).length,
      (n) => n >= 2,
      'two retries',
      10_000,
    );
    const back = await new FakeTelegram().start(port);
    cleanups.push(() => back.close());
    back.userSays(privateChat, ann, '/echo back again');
    await eventually(
      () => botMessages(back, privateChat.id).map((m) => m.text),
      (t) => t.includes('back again'),
      'the reply',
      15_000,
    );
    const waits = logs
      .filter((l) => l.includes('telegram unreachable, retrying'))
      .map((l) => Number(/ms=(\d+)/.exec(l)?.[1]));
    expect(waits.slice(0, 2)).toEqual([500, 1000]);
  }, 30_000);

  it('webhook mode: Telegram posts to the shared HTTP server with the secret token; a wrong secret is refused', async () => {
    const httpServer = new HttpServer({ port: 0 });
    cleanups.push(() => httpServer.close());
    // A second webhook-style handler, mounted before the adapter's: one server, one port, both.
    const pings: unknown[] = [];
    await httpServer.mount('POST', '/other-hook', async (request) => {
      pings.push(await request.json());
      return new Response(null, { status: 204 });
    });
    const base = httpServer.url!;
    const { fake, stop } = await start({
      httpServer,
      adapter: {
        mode: 'webhook',
        webhook: { url: `${base.origin}/tg`, path: '/tg', secretToken: 's3cret' },
      },
    });
    expect(fake.webhook).toEqual({ url: `${base.origin}/tg`, secret: 's3cret' });
    expect(httpServer.url).toBe(base);
    fake.userSays(privateChat, ann, '/echo via webhook');
    await eventually(
      () => botMessages(fake, privateChat.id).map((m) => m.text),
      (t) => t.includes('via webhook'),
      'the reply',
    );
    // Confirmed to Telegram (answered 200) only once the router had taken it.
    expect(fake.pendingUpdates).toBe(0);
    const other = await fetch(new URL('/other-hook', base), { method: 'POST', body: '{"ping":1}' });
    expect(other.status).toBe(204);
    expect(pings).toEqual([{ ping: 1 }]);

    const forged = await fetch(new URL('/tg', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'wrong' },
      body: JSON.stringify({
        update_id: 9999,
        message: { message_id: 1, date: 1, chat: privateChat, from: ann, text: '/echo forged' },
      }),
    });
    expect(forged.status).toBe(401);
    expect(botMessages(fake, privateChat.id).map((m) => m.text)).toEqual(['via webhook']);

    // Shutdown takes the webhook route away and keeps Telegram's webhook: what comes meanwhile
    // waits with Telegram; the other handler stays.
    await stop();
    expect(fake.webhook).toBeDefined();
    fake.userSays(privateChat, ann, '/echo while away');
    await eventually(
      () => fetch(new URL('/tg', base), { method: 'POST', body: '{}' }).then((r) => r.status),
      (status) => status === 404,
      'the route gone',
    );
    expect(fake.pendingUpdates).toBe(1);
    expect((await fetch(new URL('/other-hook', base), { method: 'POST', body: '2' })).status).toBe(204);
  });

  it('webhook mode: an update posted again while the first post is still being taken reaches the bot once', async () => {
    const fake = await new FakeTelegram().start();
    cleanups.push(() => fake.close());
    const httpServer = new HttpServer({ port: 0 });
    cleanups.push(() => httpServer.close());
    await httpServer.listen();
    const adapter = createTelegramAdapter({
      token: fake.token,
      apiRoot: fake.url,
      mode: 'webhook',
      webhook: { url: `${httpServer.url!.origin}/tg`, path: '/tg' },
    });
    const taken: string[] = [];
    let letGo = () => {};
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    await adapter.start({
      log: createLogger({ level: 'silent' }),
      store: new MemoryStore(),
      httpServer,
      // A bot still starting: the first delivery waits, so Telegram's second one arrives meanwhile.
      receive: async (message) => {
        taken.push(message.text);
        await held;
      },
      press: async () => {},
      inputEnded: () => {},
    });
    cleanups.push(() => adapter.stop());
    const update = {
      update_id: 4242,
      message: { message_id: 1, date: 1, chat: privateChat, from: ann, text: 'hello once' },
    };
    const post = () =>
      fetch(new URL('/tg', httpServer.url!), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(update),
      }).then((response) => response.status);
    const first = post();
    await eventually(
      () => taken.length,
      (n) => n === 1,
      'the first delivery taken',
    );
    const second = await post();
    letGo();
    expect([await first, second]).toEqual([200, 200]);
    expect(taken).toEqual(['hello once']);
  });

  it('webhook mode without the process’s HTTP server says so at start', async () => {
    const fake = await new FakeTelegram().start();
    cleanups.push(() => fake.close());
    const adapter = createTelegramAdapter({
      token: fake.token,
      apiRoot: fake.url,
      stateDir: mkdtempSync(join(tmpdir(), 'chorus-tg-')),
      mode: 'webhook',
      webhook: { url: 'https://bot.example.org/tg' },
    });
    const bot = createBot({ adapters: [adapter], log: createLogger({ level: 'silent' }) });
    await expect(bot.start()).rejects.toThrow(/HTTP server \(http\.server\)/);
    await bot.stop();
  });

  it('refuses webhook.host and webhook.port, pointing at http.server', () => {
    const result = telegramConfig.safeParse({
      token: '123456789:AAHplaceholderplaceholderplace',
      mode: 'webhook',
      webhook: { url: 'https://bot.example.org/tg', host: '0.0.0.0', port: 8443 },
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
      ['webhook.host', expect.stringContaining('set http.server.host at the top level')],
      ['webhook.port', expect.stringContaining('set http.server.port at the top level')],
    ]);
  });

  it('falls back to plain text when Telegram rejects the HTML, and ignores "message is not modified"', async () => {
    const { fake, adapter } = await start({});
    fake.userSays(privateChat, ann, 'hi');
    await eventually(
      () => fake.chatMessages(privateChat.id).length,
      (n) => n > 0,
      'the chat',
    );
    fake.failNext('sendMessage', {
      code: 400,
      description: "Bad Request: can't parse entities: unsupported start tag",
    });
    const chat = {
      adapter: 'telegram',
      platform: 'telegram',
      id: String(privateChat.id),
      kind: 'private' as const,
    };
    const sent = await adapter.send(chat, { text: '**not bold**', format: 'markdown' });
    expect(botMessages(fake, privateChat.id).at(-1)!.text).toBe('**not bold**');
    await adapter.edit(chat, sent.ids[0]!, { text: '**not bold**' }, { final: true });
  });

  it('downloads an incoming photo, sends a picture over 10 MB as a document, and answers button presses', async () => {
    const seen: string[] = [];
    const fetched: Uint8Array[] = [];
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(2000, 7)]);
    const big = new Uint8Array(11 * 1024 * 1024);
    big.set([0x89, 0x50, 0x4e, 0x47]);
    const pictures = definePlugin({
      name: 'pictures',
      setup(ctx) {
        ctx.match({ name: 'photo', test: (m) => m.images.length > 0 }, async (c) => {
          seen.push(`${c.message.text}:${c.message.images[0]!.width}`);
          fetched.push(await c.fetchImage(c.message.images.at(-1)!));
          await c.replyImages([{ data: big }], { caption: 'big one' });
        });
      },
    });
    const { fake, adapter } = await start({ plugins: [{ plugin: pictures }] });
    const sent = fake.userSays(privateChat, ann, 'look', { photo, caption: true });
    await eventually(
      () => fake.calls('sendDocument').length,
      (n) => n === 1,
      'the document',
    );
    expect(seen).toEqual(['look:1280']);
    // The handler downloaded the picture it was sent, through its context.
    expect(fetched.map((bytes) => Buffer.from(bytes).equals(photo))).toEqual([true]);
    expect(botMessages(fake, privateChat.id).at(-1)!.document?.bytes).toBe(big.length);
    const incoming = normalizeMessage(
      'telegram',
      {
        message_id: sent.message_id,
        date: 1,
        chat: privateChat,
        photo: [{ file_id: 'file2', file_unique_id: 'x', width: 1, height: 1 }],
      } as never,
      { id: '1', username: 'chorus_bot', name: 'Chorus' },
    )!;
    expect(new Uint8Array(await adapter.fetchImage!(incoming.images[0]!))).toEqual(new Uint8Array(photo));
    const query = fake.userPresses(privateChat, ann, sent.message_id, 'chorus:cancel');
    await eventually(
      () => fake.callbacks.get(query)?.answered,
      (a) => a === true,
      'the answer to the press',
    );
  });

  it('puts buttons on a lone picture and after an album, and renders Markdown captions', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
    const buttons = [[{ label: 'Again', action: 'pictures:again' }]];
    const pictures = definePlugin({
      name: 'pictures',
      setup(ctx) {
        ctx.command({ name: 'one', description: 'x' }, async (c) => {
          await c.reply({ text: 'a **fox**', format: 'markdown', images: [{ data: png }], buttons });
        });
        ctx.command({ name: 'four', description: 'x' }, async (c) => {
          await c.reply({
            text: 'four **foxes**',
            format: 'markdown',
            images: Array(4).fill({ data: png }),
            buttons,
          });
        });
      },
    });
    const { fake } = await start({ plugins: [{ plugin: pictures }] });
    fake.userSays(privateChat, ann, '/one');
    await eventually(
      () => fake.calls('sendPhoto').length,
      (n) => n === 1,
      'the photo',
    );
    const photo = fake.calls('sendPhoto')[0]!.params;
    expect(photo.caption).toBe('a <b>fox</b>');
    expect(photo.parse_mode).toBe('HTML');
    expect(photo.reply_markup).toEqual({
      inline_keyboard: [[{ text: 'Again', callback_data: 'pictures:again' }]],
    });
    fake.userSays(privateChat, ann, '/four');
    await eventually(
      () => fake.calls('sendMessage').filter((r) => String(r.params.text).includes('foxes')).length,
      (n) => n === 1,
      'the caption after the album',
    );
    const album = fake.calls('sendMediaGroup')[0]!.params.media as { caption?: string }[];
    expect(album).toHaveLength(4);
    expect(album.every((item) => item.caption === undefined)).toBe(true);
    const after = fake.calls('sendMessage').at(-1)!.params;
    expect(after.text).toBe('four <b>foxes</b>');
    expect(after.reply_markup).toEqual({
      inline_keyboard: [[{ text: 'Again', callback_data: 'pictures:again' }]],
    });
    expect(fake.refused).toEqual([]);
  });

  it('ignores edits, service messages, and chats or users outside the allow-lists', async () => {
    const { fake } = await start({ adapter: { allowedUsers: ['501'] } });
    fake.pushUpdate({
      edited_message: {
        message_id: 5,
        date: 1,
        edit_date: 2,
        chat: privateChat,
        from: ann,
        text: '/echo edited',
      },
    });
    fake.pushUpdate({ message: { message_id: 6, date: 1, chat: group, from: ann, new_chat_members: [bob] } });
    fake.userSays(group, bob, '/echo from bob');
    fake.userSays(privateChat, ann, '/echo from ann');
    await eventually(
      () => botMessages(fake, privateChat.id).length,
      (n) => n === 1,
      'the reply to Ann',
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(botMessages(fake, privateChat.id).map((m) => m.text)).toEqual(['from ann']);
    expect(botMessages(fake, group.id)).toEqual([]);
  });

  it('never writes the token into a log line or an error', async () => {
    const logs: string[] = [];
    const fake = await new FakeTelegram().start();
    const token = fake.token;
    await fake.close();
    const adapter = createTelegramAdapter({
      token,
      apiRoot: fake.url,
      maxRetries: 0,
    });
    const bot = createBot({
      adapters: [adapter],
      log: createLogger({ level: 'debug', write: (l) => logs.push(l) }),
    });
    const error = await bot.start().catch((e: unknown) => e);
    expect(String((error as Error).message)).toBe('telegram unreachable (getMe)');
    expect(JSON.stringify(error)).not.toContain(token.split(':')[1]);
    expect(logs.join('\n')).not.toContain(token.split(':')[1]);
  });
});

describe('telegram, pure parts', () => {
  it('renders Markdown to HTML that Telegram accepts, escaping everything else', () => {
    const html = markdownToTelegramHtml(
      '# Title\n**bold** and *it* & <tag> `a<b`\n```js\nif (a < b) {}\n```\n> quoted\n[link](https://x.org/?a=1&b=2)',
    );
    expect(html).toBe(
      '<b>Title</b>\n<b>bold</b> and <i>it</i> &amp; &lt;tag&gt; <code>a&lt;b</code>\n<pre><code class="language-js">if (a &lt; b) {}</code></pre>\n<blockquote>quoted</blockquote>\n<a href="https://x.org/?a=1&amp;b=2">link</a>',
    );
    expect(() => parseTelegramHtml(html)).not.toThrow();
    expect(parseTelegramHtml(markdownToTelegramHtml('```\nunclosed < fence'))).toBe('unclosed < fence');
  });

  it('splits albums into chunks of 2 to 10', () => {
    expect(albumChunks([1]).map((c) => c.length)).toEqual([1]);
    expect(albumChunks(Array.from({ length: 11 })).map((c) => c.length)).toEqual([9, 2]);
    expect(albumChunks(Array.from({ length: 12 })).map((c) => c.length)).toEqual([10, 2]);
    expect(albumChunks(Array.from({ length: 20 })).map((c) => c.length)).toEqual([10, 10]);
  });

  it('normalizes mentions, replies to the bot, topics and channel posts', () => {
    const self = { id: '7000001', username: 'chorus_bot', name: 'Chorus' };
    const topic = normalizeMessage(
      'tg',
      {
        message_id: 9,
        date: 2,
        chat: forum,
        from: ann,
        text: 'hey @Chorus_Bot',
        entities: [{ type: 'mention', offset: 4, length: 11 }],
        is_topic_message: true,
        message_thread_id: 77,
        reply_to_message: {
          message_id: 77,
          date: 1,
          chat: forum,
          forum_topic_created: { name: 't', icon_color: 1 },
        },
      } as never,
      self,
    );
    expect(topic).toMatchObject({ chat: { kind: 'group', threadId: '77' }, mentionsBot: true, date: 2000 });
    expect(topic!.replyTo).toBeUndefined();
    const reply = normalizeMessage(
      'tg',
      {
        message_id: 10,
        date: 2,
        chat: group,
        from: bob,
        text: 'and?',
        reply_to_message: {
          message_id: 3,
          date: 1,
          chat: group,
          from: { id: 7000001, is_bot: true, first_name: 'Chorus' },
          text: 'answer',
        },
      } as never,
      self,
    );
    expect(reply!.replyTo).toEqual({ messageId: '3', fromBot: true, senderId: '7000001', text: 'answer' });
    const post = normalizeMessage(
      'tg',
      {
        message_id: 1,
        date: 1,
        chat: { id: -100, type: 'channel', title: 'News' },
        sender_chat: { id: -100, type: 'channel', title: 'News' },
        text: 'hello',
      } as never,
      self,
    );
    expect(post).toMatchObject({ chat: { kind: 'channel' }, sender: { id: '-100', name: 'News' } });
  });
});
