/**
 * Chorus on Telegram as its users run it: `npm start -- --config FILE` against the fake Bot API
 * (Telegram's published rate limits enforced), with draw and ask on fake backends over HTTP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeImageBackends } from '../fakes/images.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { checkTelegramRequests } from '../fakes/telegram/spec.ts';
import {
  type Backends,
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
    expect(w.telegram.drafts.length).toBeGreaterThan(1);
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
