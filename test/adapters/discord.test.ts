import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscordAdapter, type DiscordAdapterOptions } from '../../adapters/discord/index.ts';
import {
  applicationCommand,
  components,
  normalizeMessage,
  sameCommands,
  toChat,
} from '../../adapters/discord/normalize.ts';
import { callDiscord, createDiscordRequest } from '../../adapters/discord/request.ts';
import { plugin as ask } from '../../plugins/ask/index.ts';
import { plugin as draw } from '../../plugins/draw/index.ts';
import { createBot, type PluginEntry } from '../../src/bot.ts';
import { AdapterError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { FakeDiscord, type FakeDiscordUser } from '../fakes/discord/server.ts';
import { checkDiscordRequests } from '../fakes/discord/spec.ts';
import { startFakeProxy } from '../fakes/http.ts';
import { startFakeImageBackends } from '../fakes/images.ts';
import { startFakeLlm } from '../fakes/llm.ts';
import { eventually } from './contract.ts';

const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };
const bob: FakeDiscordUser = { id: '500000000000000502', username: 'bob', global_name: null };

const echo = definePlugin({
  name: 'echo',
  setup(ctx) {
    ctx.command(
      {
        name: 'echo',
        description: 'Say it back',
        options: [{ name: 'text', description: 'What to say', required: true }],
      },
      async (c) => {
        await c.reply(c.command?.args || '(nothing)');
      },
    );
  },
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(
  options: {
    plugins?: PluginEntry[];
    fake?: FakeDiscord;
    adapter?: Partial<DiscordAdapterOptions>;
    logs?: string[];
    metrics?: Metrics;
  } = {},
) {
  const fake = options.fake ?? (await new FakeDiscord().start());
  if (!options.fake) cleanups.push(() => fake.close());
  const adapter = createDiscordAdapter({ token: fake.token, api: `${fake.url}/api`, ...options.adapter });
  const logs = options.logs ?? [];
  const bot = createBot({
    http: new HttpClient(),
    adapters: [adapter],
    plugins: options.plugins ?? [{ plugin: echo }],
    log: createLogger({ level: 'debug', write: (line) => logs.push(line) }),
    ...(options.metrics && { metrics: options.metrics }),
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
    expect(checkDiscordRequests(fake.requests)).toEqual([]);
    // No message the bot sent or edited may ping anyone.
    for (const request of fake.requests.filter(
      (r) => (r.method === 'POST' || r.method === 'PATCH') && /messages|webhooks/.test(r.path),
    )) {
      expect((request.body as { allowed_mentions?: unknown }).allowed_mentions).toEqual({
        parse: [],
        replied_user: false,
      });
    }
  });
  return { fake, bot, adapter, stop, logs };
}

const botMessages = (fake: FakeDiscord, channelId: string) =>
  fake.channelMessages(channelId).filter((m) => m.author.id === fake.bot.id);

describe('discord adapter with the real discord.js client', () => {
  it('registers slash commands once, with options, asks for the Message Content intent, and keeps its heartbeat', async () => {
    const fake = await new FakeDiscord({ heartbeatIntervalMs: 200 }).start();
    cleanups.push(() => fake.close());
    const first = await start({ fake });
    expect(fake.commands.global.map((c) => c.name).sort()).toEqual(['cancel', 'echo']);
    expect(fake.commands.global.find((c) => c.name === 'echo')!.options).toEqual([
      { type: 3, name: 'text', description: 'What to say', required: true },
    ]);
    const messageContent = 1 << 15;
    expect(fake.intents & messageContent).toBe(messageContent);
    await eventually(
      () => fake.heartbeats,
      (n) => n >= 2,
      'two heartbeats',
    );
    await first.stop();
    await start({ fake });
    expect(fake.calls('PUT', /commands$/)).toHaveLength(1);
    expect(fake.calls('GET', /commands$/)).toHaveLength(2);
    expect(fake.identifies).toBe(2);
  });

  it('prefix commands in a channel, in a thread (the reply stays in the thread), and in a DM', async () => {
    const { fake } = await start();
    const inChannel = fake.userSays(fake.general, ann, '!echo in the channel');
    fake.userSays(fake.thread, bob, '!echo in the thread');
    const dm = fake.dm(ann);
    fake.userSays(dm, ann, '!echo in a DM');
    fake.userSays(fake.general, ann, 'no prefix, no mention');
    await eventually(
      () => fake.calls('POST', /^\/channels\/\d+\/messages$/).length,
      (n) => n >= 3,
      'three replies',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(
      botMessages(fake, fake.general.id).map((m) => [m.content, m.message_reference?.message_id]),
    ).toEqual([['in the channel', inChannel.id]]);
    expect(botMessages(fake, fake.thread.id).map((m) => m.content)).toEqual(['in the thread']);
    expect(botMessages(fake, dm.id).map((m) => m.content)).toEqual(['in a DM']);
  });

  it('a slash /draw is deferred at once, then answered with albums as follow-ups and a finished status', async () => {
    const images = await startFakeImageBackends();
    cleanups.push(() => images.close());
    images.set('quick', 'ok', 20);
    images.set('slow', 'ok', 200);
    const backend = (name: string, n: number) => ({
      name,
      type: 'openai-images',
      baseUrl: `${images.server.url}/openai/${name}`,
      n,
    });
    const { fake } = await start({
      plugins: [{ plugin: draw, config: { backends: [backend('quick', 1), backend('slow', 3)] } }],
    });
    const interaction = fake.userRunsCommand(fake.general, ann, 'draw', { prompt: 'a red fox' });
    await eventually(
      () => botMessages(fake, fake.general.id)[0]?.content ?? '',
      (t) => t.startsWith('Finished: 2/2'),
      'the finished status',
    );
    const callback = fake.calls('POST', new RegExp(`^/interactions/${interaction}/`));
    expect(callback.map((r) => r.body)).toEqual([{ type: 5 }]);
    const [status, ...albums] = botMessages(fake, fake.general.id);
    expect(status!.interaction_token).toBeDefined();
    expect(albums.map((m) => [m.content.split(' · ')[0], m.attachments.length])).toEqual([
      ['quick', 1],
      ['slow', 3],
    ]);
    const uploads = fake
      .calls('POST', /^\/webhooks\//)
      .filter((r) => r.contentType === 'multipart/form-data');
    expect(uploads.map((r) => r.files.map((f) => f.name))).toEqual([
      ['files[0]'],
      ['files[0]', 'files[1]', 'files[2]'],
    ]);
    expect(status!.components).toEqual([]);
  });

  it('a slash command that sends nothing leaves no "thinking..." behind; one that answers keeps its reply', async () => {
    const quiet = definePlugin({
      name: 'quiet',
      setup: (ctx) => {
        ctx.command({ name: 'quiet', description: 'Does its work in silence' }, () => {});
        ctx.command({ name: 'loud', description: 'Answers' }, (c) => c.reply('here').then(() => {}));
      },
    });
    const { fake } = await start({ plugins: [{ plugin: quiet }] });
    const silent = fake.userRunsCommand(fake.general, ann, 'quiet', {});
    await eventually(
      () => fake.calls('DELETE', /^\/webhooks\/.*\/messages\/(@|%40)original$/).length,
      (n) => n === 1,
      'the deferred reply taken away',
    );
    expect(fake.calls('POST', new RegExp(`^/interactions/${silent}/`)).map((r) => r.body)).toEqual([
      { type: 5 },
    ]);
    expect(botMessages(fake, fake.general.id)).toEqual([]);
    fake.userRunsCommand(fake.general, ann, 'loud', {});
    await eventually(
      () => botMessages(fake, fake.general.id).map((m) => m.content),
      (texts) => texts.includes('here'),
      'the answer',
    );
    // Give a stray delete the time it would take: the answered command keeps its reply.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.calls('DELETE', /^\/webhooks\//)).toHaveLength(1);
    expect(botMessages(fake, fake.general.id).map((m) => m.content)).toEqual(['here']);
  });

  it('a slash /ask streams through the deferred reply; a resume mid-answer loses nothing and repeats nothing', async () => {
    const llm = await startFakeLlm();
    cleanups.push(() => llm.close());
    llm.script('m', { pieces: Array.from({ length: 30 }, (_, i) => `w${i} `), gapMs: 40 });
    const { fake } = await start({
      plugins: [
        { plugin: echo },
        {
          plugin: ask,
          config: {
            backends: [{ name: 'm', type: 'openai', baseUrl: `${llm.url}/v1`, model: 'm' }],
            memory: { path: ':memory:' },
            editIntervalMs: { private: 300, group: 300 },
          },
        },
      ],
    });
    fake.userRunsCommand(fake.general, ann, 'ask', { question: 'tell me' });
    await eventually(
      () => botMessages(fake, fake.general.id)[0]?.content ?? '',
      (t) => t.startsWith('w0 w1'),
      'the first words',
    );
    fake.askToReconnect();
    const during = fake.userSays(fake.general, bob, '!echo said while reconnecting');
    await eventually(
      () => botMessages(fake, fake.general.id)[0]?.content ?? '',
      (t) => t.trim().endsWith('w29'),
      'the whole answer',
      10_000,
    );
    await eventually(
      () => botMessages(fake, fake.general.id).map((m) => m.content),
      (t) => t.includes('said while reconnecting'),
      'the replayed message',
    );
    expect(fake.resumes).toBe(1);
    expect(fake.identifies).toBe(1);
    const messages = botMessages(fake, fake.general.id);
    expect(messages.filter((m) => m.content.startsWith('w0'))).toHaveLength(1);
    expect(messages.filter((m) => m.message_reference?.message_id === during.id)).toHaveLength(1);
    expect(messages[0]!.edits).toBeGreaterThan(1);
  }, 20_000);

  it('waits out a 429 with Retry-After and logs it; the reply arrives once', async () => {
    const fake = await new FakeDiscord().start();
    cleanups.push(() => fake.close());
    const logs: string[] = [];
    const metrics = new Metrics();
    const { adapter } = await start({ fake, logs, metrics });
    fake.rateLimitNext(/^POST \/channels\/\d+\/messages$/, 1);
    fake.userSays(fake.general, ann, '!echo despite the limit');
    await eventually(
      () => botMessages(fake, fake.general.id).length,
      (n) => n === 1,
      'the reply',
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(botMessages(fake, fake.general.id).map((m) => m.content)).toEqual(['despite the limit']);
    expect(fake.refused).toHaveLength(1);
    expect(logs.some((line) => line.includes('discord rate limited'))).toBe(true);
    // @discordjs/rest retried it on its own; the adapter still counted it.
    expect(metrics.adapter(adapter.name).rateLimited).toBe(1);
  });

  it('splits long text at 2000, leaves out pictures over 10 MiB with a note, routes button presses', async () => {
    const big = new Uint8Array(11 * 1024 * 1024);
    const pressed: string[] = [];
    const plugin = definePlugin({
      name: 'misc',
      setup(ctx) {
        ctx.command({ name: 'long', description: 'A long answer' }, (c) =>
          c.reply(Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ')).then(() => {}),
        );
        ctx.command({ name: 'big', description: 'A huge picture' }, (c) =>
          c
            .replyImages([{ data: big }, { data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }], {
              caption: 'two',
            })
            .then(() => {}),
        );
        ctx.command({ name: 'button', description: 'A button' }, (c) =>
          c.reply({ text: 'press', buttons: [[{ label: 'Go', action: 'misc:go' }]] }).then(() => {}),
        );
        ctx.button('go', async (press, c) => {
          pressed.push(press.user.id);
          await c.reply(`went, ${c.user.name}`);
        });
      },
    });
    const { fake } = await start({ plugins: [{ plugin }] });
    fake.userSays(fake.general, ann, '!long');
    await eventually(
      () => botMessages(fake, fake.general.id).length,
      (n) => n >= 3,
      'the parts',
    );
    const parts = botMessages(fake, fake.general.id).map((m) => m.content);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(2000);
    expect(parts.join(' ').split(' ')).toHaveLength(600);
    fake.userSays(fake.general, ann, '!big');
    await eventually(
      () => botMessages(fake, fake.general.id).map((m) => m.content),
      (t) => t.includes("(1 image(s) over Discord's 10 MiB limit were left out)"),
      'the note',
    );
    expect(botMessages(fake, fake.general.id).find((m) => m.content === 'two')!.attachments).toHaveLength(1);
    // Five messages are out (three parts, the picture, the note): the channel's budget of 5 per
    // 5 s holds the sixth until the window opens again, so this wait allows for the window.
    expect(botMessages(fake, fake.general.id)).toHaveLength(5);
    fake.userSays(fake.general, ann, '!button');
    const withButton = await eventually(
      () => botMessages(fake, fake.general.id).find((m) => m.content === 'press'),
      Boolean,
      'the button',
      15_000,
    );
    fake.userPresses(fake.general, ann, withButton!.id, 'misc:go');
    // The handler answers in the channel, as a reply to the message that carried the button.
    const went = await eventually(
      () => botMessages(fake, fake.general.id).find((m) => m.content.startsWith('went')),
      Boolean,
      'the answer to the press',
      15_000,
    );
    expect(pressed).toEqual([ann.id]);
    expect([went!.content, went!.message_reference?.message_id]).toEqual(['went, Ann', withButton!.id]);
  });
});

describe('the REST transport', () => {
  it('sends the REST calls through the bot’s proxy (`http.proxy`), answering as before', async () => {
    const fake = await new FakeDiscord().start();
    const proxy = await startFakeProxy({ port: Number(new URL(fake.url).port) });
    cleanups.push(
      () => fake.close(),
      () => proxy.close(),
    );
    await start({ fake, adapter: { api: 'http://discord.test/api', proxy: proxy.url } });
    fake.userSays(fake.general, ann, '!echo via the proxy');
    await eventually(
      () => botMessages(fake, fake.general.id).map((m) => m.content),
      (texts) => texts.includes('via the proxy'),
      'the reply',
    );
    // The gateway's WebSocket connects directly (the fake names itself as the gateway).
    expect(proxy.hosts.length).toBeGreaterThanOrEqual(1);
    expect(new Set(proxy.hosts)).toEqual(new Set(['discord.test:80']));
  });

  it('downloads attachments through the proxy too', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const cdn = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
    await new Promise<void>((resolve) => cdn.listen(0, '127.0.0.1', resolve));
    const proxy = await startFakeProxy({ port: (cdn.address() as AddressInfo).port });
    const adapter = createDiscordAdapter({ token: new FakeDiscord().token, proxy: proxy.url });
    cleanups.push(
      () => new Promise<void>((resolve) => cdn.close(() => resolve())),
      () => proxy.close(),
      () => adapter.stop(),
    );
    const bytes = await adapter.fetchImage!({ id: 'a', url: 'http://cdn.discord.test/attachments/a.png' });
    expect(Buffer.from(bytes)).toEqual(png);
    expect(proxy.hosts).toEqual(['cdn.discord.test:80']);
  });

  it('reads each answer up to its cap, declared, streamed or compressed, and says Discord answered too much', async () => {
    const zipped = gzipSync(Buffer.alloc(5000, 'z'));
    const server = createServer((req, res) => {
      if (req.url === '/declared') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
        res.end('x'.repeat(5000));
      } else if (req.url === '/streamed') {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 10; i++) res.write('y'.repeat(500));
        res.end();
      } else if (req.url === '/compressed') {
        // Under the cap on the wire, over it decoded.
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'content-length': String(zipped.length),
        });
        res.end(zipped);
      } else if (req.url === '/none') {
        res.writeHead(204).end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id":');
        res.end('"1"}');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const request = createDiscordRequest({ maxAnswerBytes: 1024 });
    cleanups.push(
      () => request.close(),
      () => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    expect(zipped.length).toBeLessThan(1024);
    await expect(request.makeRequest(`${base}/declared`, {})).rejects.toThrow(
      'discord: answer of 5000 bytes exceeds the 1024-byte cap',
    );
    await expect(request.makeRequest(`${base}/streamed`, {})).rejects.toThrow(
      'discord: answer exceeds the 1024-byte cap',
    );
    await expect(request.makeRequest(`${base}/compressed`, {})).rejects.toThrow(
      'discord: answer exceeds the 1024-byte cap',
    );
    expect((await request.makeRequest(`${base}/none`, {})).status).toBe(204);
    expect(await (await request.makeRequest(`${base}/small`, {})).json()).toEqual({ id: '1' });
    // Discord answered, with too much: not a network failure.
    const failure = await callDiscord('discord', 'listCommands', () =>
      request.makeRequest(`${base}/streamed`, {}),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AdapterError);
    expect(failure).toMatchObject({ remote: true, code: 'ADAPTER_REFUSED' });
    expect((failure as Error).message).toBe('discord: answer exceeds the 1024-byte cap (listCommands)');
  });
});

describe('the Discord fake, as a client without the Message Content intent sees it', () => {
  it('serves only the allowed guilds, channels and users (the router applies the adapter’s allow-lists)', async () => {
    const fake = await new FakeDiscord().start();
    cleanups.push(() => fake.close());
    await start({ fake, adapter: { allowedChannels: [fake.thread.id], allowedUsers: [ann.id] } });
    fake.userSays(fake.general, ann, '!echo not this channel');
    fake.userSays(fake.thread, bob, '!echo not this user');
    fake.userSays(fake.thread, ann, '!echo this one');
    await eventually(
      () => botMessages(fake, fake.thread.id).length,
      (n) => n === 1,
      'the allowed reply',
    );
    const elsewhere = await start({ adapter: { allowedGuilds: ['100000000000000999'] } });
    elsewhere.fake.userSays(elsewhere.fake.general, ann, '!echo not this guild');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(botMessages(fake, fake.thread.id).map((m) => m.content)).toEqual(['this one']);
    expect(botMessages(fake, fake.general.id)).toEqual([]);
    expect(botMessages(elsewhere.fake, elsewhere.fake.general.id)).toEqual([]);
  });

  it('withholds guild message text unless the bot is mentioned, and never in DMs', async () => {
    const { Client, Events, GatewayIntentBits, Partials } = await import('discord.js');
    const fake = await new FakeDiscord().start();
    cleanups.push(() => fake.close());
    const client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.DirectMessages],
      partials: [Partials.Channel],
      rest: { api: `${fake.url}/api` },
    });
    cleanups.push(() => client.destroy());
    const seen: string[] = [];
    client.on(Events.MessageCreate, (message) => void seen.push(message.content));
    const ready = new Promise((resolve) => client.once(Events.ClientReady, resolve));
    await client.login(fake.token);
    await ready;
    fake.userSays(fake.general, ann, 'hidden');
    fake.userSays(fake.general, ann, '<@900000000000000900> shown', { mentionsBot: true });
    fake.userSays(fake.dm(ann), ann, 'shown in a DM');
    await eventually(
      () => seen.length,
      (n) => n === 3,
      'three messages',
    );
    expect(seen).toEqual(['', '<@900000000000000900> shown', 'shown in a DM']);
  });
});

describe('discord, pure parts', () => {
  const self = { id: '900', username: 'chorus', name: 'Chorus' };
  const channel = (type: number, extra: object = {}) => ({
    id: '1',
    type,
    isThread: () => type === 11,
    isDMBased: () => type === 1,
    parentId: '2',
    ...extra,
  });

  it('maps channels, threads and DMs to chats', () => {
    expect(toChat('dc', channel(0, { name: 'general' }))).toEqual({
      adapter: 'dc',
      platform: 'discord',
      id: '1',
      kind: 'group',
      title: 'general',
    });
    expect(toChat('dc', channel(11))).toMatchObject({ id: '2', threadId: '1', kind: 'group' });
    expect(toChat('dc', channel(1))).toMatchObject({ id: '1', kind: 'private' });
  });

  it('normalizes mentions, replies to the bot and image attachments', () => {
    const message = normalizeMessage(
      'dc',
      {
        id: '10',
        content: '<@900> look',
        createdTimestamp: 5,
        author: { id: '7', username: 'ann', globalName: 'Ann', bot: false },
        channel: channel(0),
        mentions: {
          users: new Map([['900', {}]]),
          repliedUser: { id: '900', username: 'chorus', bot: true },
        },
        reference: { messageId: '9' },
        attachments: new Map([
          [
            'a',
            { id: 'a', url: 'https://cdn/x.png', contentType: 'image/png', width: 4, height: 4, size: 10 },
          ],
        ]),
      },
      self,
    );
    expect(message).toMatchObject({
      mentionsBot: true,
      replyTo: { messageId: '9', fromBot: true },
      images: [{ url: 'https://cdn/x.png', width: 4 }],
    });
    expect(message.sender).toEqual({ id: '7', name: 'Ann', username: 'ann' });
  });

  it('builds components and application commands, and tells when commands changed', () => {
    expect(components([[{ label: 'Cancel', action: 'chorus:cancel', style: 'danger' }]])).toEqual([
      { type: 1, components: [{ type: 2, style: 4, label: 'Cancel', custom_id: 'chorus:cancel' }] },
    ]);
    expect(components([])).toEqual([]);
    const wanted = [
      applicationCommand({ name: 'draw', description: { en: 'Draw', 'zh-CN': '画' }, usage: '<prompt>' }),
    ];
    expect(wanted).toEqual([
      {
        name: 'draw',
        description: 'Draw',
        type: 1,
        options: [{ type: 3, name: 'text', description: '<prompt>', required: false }],
      },
    ]);
    expect(sameCommands([{ id: '1', ...wanted[0] }], wanted)).toBe(true);
    expect(sameCommands([{ ...wanted[0], description: 'Old' }], wanted)).toBe(false);
  });
});
