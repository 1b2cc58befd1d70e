import { afterEach, describe, expect, it } from 'vitest';
import type { FakeImageBackends } from '../fakes/images.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { checkTelegramRequests } from '../fakes/telegram/spec.ts';
import {
  type Backends,
  freePort,
  llmApiKey,
  type RunningChorus,
  startBackends,
  startChorus,
  until,
  workDir,
} from './harness.ts';

const ann = { id: 501, is_bot: false, first_name: 'Ann', username: 'ann' };
const privateChat = { id: 501, type: 'private' as const, first_name: 'Ann' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface World extends Backends {
  readonly telegram: FakeTelegram;
  readonly dir: string;
  readonly config: string;
}

/** The fakes, and the config a user would write for them (the README's Telegram section). */
async function world(): Promise<World> {
  const telegram = await new FakeTelegram().start();
  const backends = await startBackends();
  cleanups.push(
    () => telegram.close(),
    () => backends.close(),
  );
  const dir = workDir();
  const config = [
    'adapters:',
    '  telegram:',
    '    token: ${TELEGRAM_BOT_TOKEN}',
    `    apiRoot: ${telegram.url}`,
    '    mode: polling',
    ...backends.plugins(dir, 1),
    'state:',
    `  path: ${dir}/state/state.sqlite`,
    '',
  ].join('\n');
  return { ...backends, telegram, dir, config };
}

function run(w: World): RunningChorus {
  const bot = startChorus(w.dir, w.config, {
    env: { TELEGRAM_BOT_TOKEN: w.telegram.token, OPENAI_API_KEY: llmApiKey },
  });
  cleanups.push(() => bot.stop('SIGKILL'));
  return bot;
}

const botMessages = (fake: FakeTelegram, chatId: number) =>
  fake.chatMessages(chatId).filter((m) => m.from?.id === fake.bot.id);
const albumCalls = (fake: FakeTelegram) =>
  fake.requests.filter((r) => r.method === 'sendPhoto' || r.method === 'sendMediaGroup');
/** When the image backend `name` finished its answer, for any prompt. */
const finishedAt = (images: FakeImageBackends, name: string) =>
  [...images.finishedAt].find(([key]) => key.startsWith(`${name}|`))?.[1];
const captionOf = (params: Record<string, unknown>) =>
  String(params.caption ?? (params.media as { caption?: string }[] | undefined)?.[0]?.caption ?? '');

describe('npm start on Telegram', () => {
  it('answers /start and /help, draws with four backends in completion order, streams an ask, and stops cleanly', async () => {
    const w = await world();
    const bot = run(w);
    await bot.waitFor(/adapter ready adapter=telegram/);

    w.telegram.userSays(privateChat, ann, '/start');
    await until(
      () => botMessages(w.telegram, privateChat.id),
      (m) => m.length === 1,
      'the /start greeting',
    );
    expect(botMessages(w.telegram, privateChat.id)[0]!.text).toMatch(/^Hi Ann! I am Chorus\./);
    w.telegram.userSays(privateChat, ann, '/help');
    await until(
      () => botMessages(w.telegram, privateChat.id),
      (m) => m.length === 2,
      'the /help list',
    );
    expect(botMessages(w.telegram, privateChat.id)[1]!.text).toContain('/draw <prompt>');

    // Four backends of 150, 300 (failing), 600 and 1500 ms.
    const before = botMessages(w.telegram, privateChat.id).length;
    w.telegram.userSays(privateChat, ann, '/draw a red fox');
    const status = await until(
      () => botMessages(w.telegram, privateChat.id)[before],
      (m) => m?.text?.startsWith('Finished: ') ?? false,
      'the finished status',
    );
    expect(status!.text!.split('\n')[0]).toBe('Finished: 3/4 backends delivered');
    expect(status!.text).toContain('✗ broken: refused (HTTP 500)');
    const albums = albumCalls(w.telegram);
    expect(albums.map((r) => captionOf(r.params).split(' · ')[0])).toEqual(['quick', 'steady', 'slow']);
    // The fastest album went out before the slowest backend had finished.
    expect(albums[0]!.at).toBeLessThan(finishedAt(w.images, 'slow')!);
    // No status edit shows an older state than the albums already sent.
    for (const edit of w.telegram.calls('editMessageText')) {
      const text = String(edit.params.text);
      for (const album of albums.filter((a) => a.at < edit.at)) {
        const name = captionOf(album.params).split(' · ')[0]!;
        expect(text, `an edit at ${edit.at} after ${name}'s album`).toMatch(new RegExp(`✓ ${name}:`));
      }
    }

    // A streamed answer: it grows (drafts in a private chat), then ends as one message.
    w.llm.script('gpt-test', { pieces: ['Rayleigh ', 'scattering ', 'makes ', 'it ', 'blue.'], gapMs: 150 });
    w.telegram.userSays(privateChat, ann, '/ask why is the sky blue?');
    await until(
      () => botMessages(w.telegram, privateChat.id).at(-1)?.text ?? '',
      (text) => text.includes('Rayleigh scattering makes it blue.'),
      'the whole answer',
    );
    // It grew as a draft (paced by the chat's budget) before the one final message.
    expect(w.telegram.drafts.length).toBeGreaterThanOrEqual(1);
    const firstDraft = w.telegram.drafts[0]!.text.trim();
    expect(firstDraft.length).toBeLessThan('Rayleigh scattering makes it blue.'.length);
    expect('Rayleigh scattering makes it blue.'.startsWith(firstDraft)).toBe(true);
    expect(w.llm.requests.at(-1)!.body.messages.at(-1)).toEqual({
      role: 'user',
      content: 'why is the sky blue?',
    });

    const { code, ms } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(w.telegram.refused).toEqual([]);
    expect(checkTelegramRequests(w.telegram.requests)).toEqual([]);
    expect(bot.output().stderr).not.toContain(llmApiKey);
    expect(bot.output().stderr).not.toContain(w.telegram.token);
  }, 60_000);

  it('/cancel reaches the backend’s HTTP request; SIGTERM mid-draw finishes the status and exits', async () => {
    const w = await world();
    w.images.set('slow', 'hang');
    const bot = run(w);
    await bot.waitFor(/adapter ready adapter=telegram/);

    w.telegram.userSays(privateChat, ann, '/draw a cat');
    await until(() => finishedAt(w.images, 'steady'), Boolean, 'the steady backend');
    w.telegram.userSays(privateChat, ann, '/cancel');
    await until(
      () => w.images.server.aborted,
      (a) => a.some((p) => p.includes('/openai/slow')),
      'the aborted request',
    );
    const cancelled = await until(
      () => botMessages(w.telegram, privateChat.id)[0]?.text ?? '',
      (text) => text.startsWith('Cancelled: '),
      'the cancelled status',
    );
    expect(cancelled).toContain('✓ steady:');

    w.telegram.userSays(privateChat, ann, '/draw a dog');
    await until(
      () => botMessages(w.telegram, privateChat.id).length,
      (n) => n >= 5,
      'the second draw',
    );
    const { code, ms } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    // Every status message ends in a final state: none is left "Drawing...".
    const statuses = botMessages(w.telegram, privateChat.id).filter(
      (m) => m.text && /^(Drawing|Finished:|Cancelled:|Stopped)/.test(m.text),
    );
    expect(statuses.length).toBe(2);
    for (const s of statuses) expect(s.text).not.toMatch(/^Drawing/);
    expect(statuses[1]!.text).toMatch(/^Stopped|^Cancelled/);
  }, 60_000);

  it('after a restart, updates that waited are each answered once, and a redelivered one is not answered again', async () => {
    const w = await world();
    const first = run(w);
    await first.waitFor(/adapter ready adapter=telegram/);
    w.telegram.userSays(privateChat, ann, '/help');
    await until(
      () => botMessages(w.telegram, privateChat.id).length,
      (n) => n === 1,
      'the first answer',
    );
    const handled = w.telegram.calls('getUpdates').length;
    expect(handled).toBeGreaterThan(0);
    expect((await first.stop('SIGTERM')).code).toBe(0);

    // While the bot is down, users write; and Telegram sends an already answered update again.
    w.telegram.userSays(privateChat, ann, '/start');
    w.telegram.userSays(privateChat, ann, '/help');
    w.telegram.redeliver(100);
    const second = run(w);
    await second.waitFor(/adapter ready adapter=telegram/);
    await until(
      () => botMessages(w.telegram, privateChat.id).length,
      (n) => n >= 3,
      'the waiting updates',
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const texts = botMessages(w.telegram, privateChat.id).map((m) => m.text?.split('\n')[0]);
    expect(texts).toEqual(['Commands:', 'Hi Ann! I am Chorus.', 'Commands:']);
    expect(w.telegram.pendingUpdates).toBe(0);
    expect((await second.stop('SIGTERM')).code).toBe(0);
  }, 60_000);
});

describe('npm start on Telegram with webhooks', () => {
  it('two bots post to their webhooks on the one HTTP server (port from ${PORT}); shutdown leaves updates with Telegram', async () => {
    const secret = 'webhook-secret-0123456789';
    const first = await new FakeTelegram().start();
    const second = await new FakeTelegram({ token: '987654321:AAOtherFakeTokenForChorusTests_xyz' }).start();
    cleanups.push(
      () => first.close(),
      () => second.close(),
    );
    const dir = workDir();
    const port = await freePort();
    const config = [
      'http:',
      '  server: { port: ${PORT} }',
      `state: { path: ${dir}/state.sqlite }`,
      'adapters:',
      ...[
        ['news', first, '/telegram/news'],
        ['help', second, '/telegram/help'],
      ].flatMap(([name, fake, path]) => [
        `  ${name}:`,
        '    type: telegram',
        `    token: ${(fake as FakeTelegram).token}`,
        `    apiRoot: ${(fake as FakeTelegram).url}`,
        '    mode: webhook',
        `    webhook: { url: "http://127.0.0.1:\${PORT}${path}", path: ${path}, secretToken: \${TELEGRAM_WEBHOOK_SECRET} }`,
      ]),
      '',
    ].join('\n');
    const bot = startChorus(dir, config, {
      env: { PORT: String(port), TELEGRAM_WEBHOOK_SECRET: secret },
    });
    cleanups.push(() => bot.stop('SIGKILL'));
    await bot.waitFor(/adapter ready adapter=news/);
    await bot.waitFor(/adapter ready adapter=help/);
    expect(bot.output().stderr).toContain(`http server listening address=http://127.0.0.1:${port}`);
    expect(first.webhook).toEqual({ url: `http://127.0.0.1:${port}/telegram/news`, secret });
    expect(second.webhook).toEqual({ url: `http://127.0.0.1:${port}/telegram/help`, secret });

    first.userSays(privateChat, ann, '/help');
    second.userSays(privateChat, ann, '/start');
    await until(
      () => [botMessages(first, privateChat.id).length, botMessages(second, privateChat.id).length],
      ([a, b]) => a === 1 && b === 1,
      'an answer from each bot',
    );
    expect(botMessages(first, privateChat.id)[0]!.text).toContain('/help');
    expect(botMessages(second, privateChat.id)[0]!.text).toMatch(/^Hi Ann! I am Chorus\./);
    expect(first.pendingUpdates + second.pendingUpdates).toBe(0);

    // Without the secret, a post is refused; a path nothing is mounted on is not found.
    const forged = await fetch(`http://127.0.0.1:${port}/telegram/news`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        update_id: 1,
        message: { message_id: 1, date: 1, chat: privateChat, text: '/help' },
      }),
    });
    expect(forged.status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/telegram/other`, { method: 'POST' })).status).toBe(404);

    const { code, ms } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    // The webhook stays set; what comes while the bot is down waits with Telegram.
    expect(first.webhook).toBeDefined();
    first.userSays(privateChat, ann, '/help');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(first.pendingUpdates).toBe(1);
    expect(botMessages(first, privateChat.id)).toHaveLength(1);
    expect(checkTelegramRequests([...first.requests, ...second.requests])).toEqual([]);
    expect(bot.output().stderr).not.toContain(secret);
    expect(bot.output().stderr).not.toContain(first.token);
  }, 60_000);

  it('webhook.port is a config error that points at http.server', async () => {
    const dir = workDir();
    const bot = startChorus(
      dir,
      [
        'adapters:',
        '  telegram:',
        '    token: 123456789:AAHplaceholderplaceholderplace',
        '    mode: webhook',
        '    webhook: { url: https://bot.example.org/telegram, port: 8443 }',
        '',
      ].join('\n'),
    );
    expect(await bot.exited).toBe(2);
    expect(bot.output().stderr.trim()).toBe(
      "chorus: config error: adapters.telegram.webhook.port: moved: webhooks mount on the process's one HTTP server; set http.server.port at the top level",
    );
  }, 30_000);
});
