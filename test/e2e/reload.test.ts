/**
 * `chorus --watch` (`npm run dev`) as a plugin author uses it: the CLI runs in a bot project with
 * its own `plugins/hello/`, connected to the fake Telegram Bot API (long polling) or the fake
 * Discord gateway; the author edits the plugin's files and the config, and the bot answers with
 * the new code without a second connection, and without losing or repeating an update.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDiscord, type FakeDiscordUser } from '../fakes/discord/server.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { type RunningChorus, startChorus, until, workDir } from './harness.ts';

const chorusApi = JSON.stringify(resolve(import.meta.dirname, '../../src/index.ts'));

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A bot project: `plugins/hello/` whose answer comes from `./words.ts`, as a plugin author writes it. */
function project(): {
  dir: string;
  writeWords: (source: string) => void;
  writeIndex: (source: string) => void;
} {
  const dir = workDir('chorus-dev-');
  mkdirSync(join(dir, 'plugins/hello'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  const writeWords = (source: string) => writeFileSync(join(dir, 'plugins/hello/words.ts'), source);
  const writeIndex = (source: string) => writeFileSync(join(dir, 'plugins/hello/index.ts'), source);
  writeWords(`export const word = 'v1';\n`);
  writeIndex(helloPlugin(''));
  return { dir, writeWords, writeIndex };
}

/** The plugin's index: `/hello` answers with the word and the configured greeting; `extra` adds code to setup. */
function helloPlugin(extra: string): string {
  return `import { definePlugin } from ${chorusApi};
import { word } from './words.ts';
export const plugin = definePlugin({
  name: 'hello',
  setup(ctx, config) {
    const greeting = (config as { greeting?: string }).greeting ?? 'hello';
    ctx.command({ name: 'hello', description: 'Says hello' }, async (c) => {
      await c.reply(greeting + ' ' + word);
    });
    ${extra}
  },
});
`;
}

function watch(dir: string, config: string, env: Record<string, string>): RunningChorus {
  const bot = startChorus(dir, config, { cwd: dir, args: ['--watch'], env });
  cleanups.push(() => bot.stop('SIGKILL'));
  return bot;
}

/** How many times the log says `pattern`. */
const count = (bot: RunningChorus, pattern: RegExp) =>
  bot
    .output()
    .stderr.split('\n')
    .filter((line) => pattern.test(line)).length;

describe('chorus --watch on Telegram (long polling)', () => {
  const ann = { id: 501, is_bot: false, first_name: 'Ann', username: 'ann' };
  const chat = { id: 501, type: 'private' as const, first_name: 'Ann' };

  it('swaps in edited plugin code on the same poller, answers every update once, keeps the old code when the new fails', async () => {
    const telegram = await new FakeTelegram().start();
    cleanups.push(() => telegram.close());
    const { dir, writeWords, writeIndex } = project();
    const config = (section: string) =>
      [
        `state: { path: ${dir}/state.sqlite }`,
        'adapters:',
        '  telegram:',
        '    token: ${TELEGRAM_BOT_TOKEN}',
        `    apiRoot: ${telegram.url}`,
        '    mode: polling',
        'plugins:',
        `  hello: ${section}`,
        '',
      ].join('\n');
    const bot = watch(dir, config('{}'), { TELEGRAM_BOT_TOKEN: telegram.token });
    await bot.waitFor(/watching for changes/);
    const answers = () =>
      telegram
        .chatMessages(chat.id)
        .filter((m) => m.from?.id === telegram.bot.id)
        .map((m) => m.text);
    const sent: number[] = [];
    const say = (text: string) => sent.push(telegram.userSays(chat, ann, text).message_id);

    say('/hello');
    await until(answers, (a) => a.length === 1, 'the v1 answer');
    expect(answers()).toEqual(['hello v1']);

    // The author saves words.ts; updates keep coming while the plugin reloads.
    writeWords(`export const word = 'v2';\n`);
    for (let i = 0; i < 4; i++) {
      say('/hello');
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await bot.waitFor(/plugin reloaded plugin=hello/);
    say('/hello');
    await until(answers, (a) => a.length === 6, 'an answer to each of the six updates');
    expect(answers().at(-1)).toBe('hello v2');
    // Each answer is v1 or v2, and once the first v2 came, no v1 follows.
    const versions = answers().map((text) => text?.split(' ')[1]);
    expect(versions.every((v) => v === 'v1' || v === 'v2')).toBe(true);
    expect(versions.slice(versions.indexOf('v2')).every((v) => v === 'v2')).toBe(true);

    // A syntax error: logged, and v2 keeps answering.
    writeWords(`export const word = ;\n`);
    await bot.waitFor(/plugin could not be loaded: the running version stays plugin=hello.*words\.ts/);
    say('/hello');
    await until(answers, (a) => a.length === 7, 'the answer after the broken edit');
    expect(answers().at(-1)).toBe('hello v2');

    // A setup that throws: logged, the old version is set up again.
    writeWords(`export const word = 'v3';\n`);
    await bot.waitFor(/plugin reloaded plugin=hello[\s\S]*plugin reloaded plugin=hello/);
    writeIndex(helloPlugin(`throw new Error('hello cannot start');`));
    await bot.waitFor(/plugin reload failed: the running version stays plugin=hello.*hello cannot start/);
    say('/hello');
    await until(answers, (a) => a.length === 8, 'the answer after the throwing setup');
    expect(answers().at(-1)).toBe('hello v3');

    // The config: the plugin's section reloads it; an adapter change asks for a restart.
    writeIndex(helloPlugin(''));
    await bot.waitFor(/(plugin reloaded plugin=hello[\s\S]*){3}/);
    writeFileSync(
      join(dir, 'chorus.yaml'),
      config('{ greeting: hi }').replace('mode: polling', 'mode: polling # edited\n    maxRetries: 5'),
    );
    await bot.waitFor(
      /config changed where a reload cannot apply it: restart the bot to use it keys=adapters/,
    );
    await bot.waitFor(/(plugin reloaded plugin=hello[\s\S]*){4}/);
    say('/hello');
    await until(answers, (a) => a.length === 9, 'the answer after the config change');
    expect(answers().at(-1)).toBe('hi v3');

    // One poller throughout: one getMe, one session, every update confirmed once.
    expect(telegram.calls('getMe')).toHaveLength(1);
    expect(telegram.calls('deleteWebhook').length).toBeLessThanOrEqual(1);
    expect(telegram.pendingUpdates).toBe(0);
    expect(answers()).toHaveLength(sent.length);
    expect(count(bot, /adapter ready/)).toBe(1);
    const { code } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
  }, 60_000);
});

describe('chorus --watch on Discord (gateway)', () => {
  const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };

  it('swaps in edited plugin code on the same gateway session and updates the slash commands', async () => {
    const discord = await new FakeDiscord().start();
    cleanups.push(() => discord.close());
    const { dir, writeWords, writeIndex } = project();
    const config = [
      'adapters:',
      '  discord:',
      '    token: ${DISCORD_BOT_TOKEN}',
      '    prefix: "!"',
      `    api: ${discord.url}/api`,
      'plugins:',
      '  hello: {}',
      '',
    ].join('\n');
    const bot = watch(dir, config, { DISCORD_BOT_TOKEN: discord.token });
    await bot.waitFor(/watching for changes/);
    const answers = () =>
      discord
        .channelMessages(discord.general.id)
        .filter((m) => m.author.id === discord.bot.id)
        .map((m) => m.content);

    discord.userSays(discord.general, ann, '!hello');
    await until(answers, (a) => a.length === 1, 'the v1 answer');
    expect(answers()).toEqual(['hello v1']);

    writeWords(`export const word = 'v2';\n`);
    discord.userSays(discord.general, ann, '!hello'); // may meet v1 or wait for v2, but is answered once
    await bot.waitFor(/plugin reloaded plugin=hello/);
    discord.userSays(discord.general, ann, '!hello');
    await until(answers, (a) => a.length === 3, 'both answers');
    expect(answers().at(-1)).toBe('hello v2');

    // A new command in the plugin reaches the slash command list, without a new session.
    writeIndex(
      helloPlugin(`ctx.command({ name: 'bye', description: 'Says bye' }, async (c) => {
      await c.reply('bye ' + word);
    });`),
    );
    await bot.waitFor(/(plugin reloaded plugin=hello[\s\S]*){2}/);
    discord.userSays(discord.general, ann, '!bye');
    await until(answers, (a) => a.length === 4, 'the new command’s answer');
    expect(answers().at(-1)).toBe('bye v2');
    await until(
      () => discord.calls('PUT', /\/commands$/).at(-1)?.body as { name: string }[] | undefined,
      (body) => body?.some((command) => command.name === 'bye') ?? false,
      'the slash commands with /bye',
    );

    writeWords(`export const word = ;\n`);
    await bot.waitFor(/plugin could not be loaded: the running version stays plugin=hello/);
    discord.userSays(discord.general, ann, '!hello');
    await until(answers, (a) => a.length === 5, 'the answer after the broken edit');
    expect(answers().at(-1)).toBe('hello v2');

    expect(discord.identifies).toBe(1);
    expect(count(bot, /adapter ready/)).toBe(1);
    const { code } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
  }, 60_000);
});
