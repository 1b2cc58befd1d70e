/**
 * Under `npm start`, Chorus's own undici loads before discord.js (the CLI builds its HTTP client
 * first), and the undici bundled in @discordjs/rest then finds the other version's dispatcher
 * installed globally. Attachments must still reach Discord. This file loads them in that order.
 */
import { afterEach, expect, it } from 'vitest';
import { createBot } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpClient } from '../../src/runtime/http.ts';
import { FakeDiscord, type FakeDiscordUser } from '../fakes/discord/server.ts';
import { eventually } from './contract.ts';

const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };
const png = Uint8Array.from(
  Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'),
);

const pictures = definePlugin({
  name: 'pictures',
  setup(ctx) {
    ctx.command({ name: 'pic', description: 'Two pictures' }, async (c) => {
      await c.replyImages(
        [
          { data: png, mimeType: 'image/png' },
          { data: png, mimeType: 'image/png' },
        ],
        { caption: 'two' },
      );
    });
  },
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('sends attachments through discord.js when Chorus’s undici loaded first', async () => {
  const fake = await new FakeDiscord().start();
  cleanups.push(() => fake.close());
  const { createDiscordAdapter } = await import('../../adapters/discord/index.ts');
  const logs: string[] = [];
  const bot = createBot({
    http: new HttpClient(),
    adapters: [createDiscordAdapter({ token: fake.token, api: `${fake.url}/api` })],
    plugins: [{ plugin: pictures }],
    log: createLogger({ level: 'debug', write: (line) => logs.push(line) }),
  });
  await bot.start();
  cleanups.push(() => bot.stop());
  fake.userSays(fake.general, ann, '!pic');
  const sent = await eventually(
    () => fake.channelMessages(fake.general.id).filter((m) => m.author.id === fake.bot.id),
    (messages) => messages.length > 0,
    'the album',
  );
  expect(sent.map((m) => [m.content, m.attachments.length])).toEqual([['two', 2]]);
  expect(logs.join('\n')).not.toMatch(/unreachable|action is not a function/);
});
