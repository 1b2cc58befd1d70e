/**
 * Streaming: a 2,000-token answer at 50 tokens/s into a private chat and a group, on the Telegram
 * adapter's default budgets (5 per 5 s per chat, 20/min per group), on a fake clock: edits per minute against the
 * budget. The delay from the first token to the first send, in real time. The size of 10,000
 * stored conversations.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConversationMemory } from '../plugins/ask/memory.ts';
import { sleep } from '../src/clock.ts';
import { definePlugin } from '../src/plugin.ts';
import { openSqliteStore } from '../src/runtime/sqlite-store.ts';
import { namespacedStore } from '../src/store.ts';
import { createTestBot } from '../src/testing.ts';
import type { Row } from './core.ts';

const telegram = {
  rate: {
    perChat: { count: 5, periodMs: 5000 },
    perGroup: { count: 20, periodMs: 60_000 },
    global: { count: 30, periodMs: 1000 },
  },
};

/** Sends and edits in the busiest 60-second window, which is what a per-minute budget limits. */
async function editsPerMinute(
  kind: 'private' | 'group',
): Promise<{ perMinute: number; minutes: number; budget: number }> {
  const tokens = 2000;
  const plugin = definePlugin({
    name: 'long',
    setup: (ctx) =>
      void ctx.command({ name: 'long', description: 'x' }, async (c) => {
        async function* pieces() {
          for (let i = 0; i < tokens; i++) {
            await sleep(c.clock, 20);
            yield `tok${i} `;
          }
        }
        await c.stream(pieces());
      }),
  });
  const kit = await createTestBot({ plugins: [{ plugin }], adapter: { limits: telegram } });
  const start = kit.clock.now();
  await kit.run(kit.send('/long', { chat: { id: 'c', kind } }));
  const minutes = (kit.clock.now() - start) / 60_000;
  const times = kit.adapter.calls.filter((c) => c.kind === 'send' || c.kind === 'edit').map((c) => c.at);
  const busiest = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 60_000).length));
  await kit.stop();
  return { perMinute: busiest, minutes, budget: kind === 'private' ? 60 : 20 };
}

async function firstTokenToSend(samples: number): Promise<number[]> {
  const delays: number[] = [];
  const plugin = definePlugin({
    name: 'first',
    setup: (ctx) =>
      void ctx.command({ name: 'first', description: 'x' }, async (c) => {
        const stream = c.openStream();
        const before = performance.now();
        await stream.write('Hello');
        delays.push(performance.now() - before);
        await stream.end();
      }),
  });
  const kit = await createTestBot({ plugins: [{ plugin }], realTime: true });
  for (let i = 0; i < samples; i++) await kit.send('/first', { chat: { id: `c${i}` } });
  await kit.stop();
  return delays;
}

/** Five questions and answers of plain prose that does not repeat itself (546 characters a turn on average). */
const questions = [
  'Why is the sky blue, and why are sunsets red?',
  'How far away is the moon from the earth now?',
  'What makes a rainbow appear after the rain?',
  'Why do stars twinkle but planets mostly not?',
  'How do clouds stay up if water is so heavy?',
];
const answers = [
  'Sunlight holds every colour. Air molecules are much smaller than the wavelength of visible light, so they scatter short wavelengths far more strongly than long ones: blue light is scattered about five times more than red. That scattered blue reaches your eyes from every part of the sky. At sunset the light crosses much more air before it reaches you, so most of the blue is lost on the way, and the oranges and reds that remain give the evening its colour. Dust and smoke strengthen it.',
  "The Moon's orbit is an ellipse, so the distance changes through the month. On average it is about 384,400 kilometres from centre to centre. At perigee, its closest point, it comes within roughly 363,000 km; at apogee it drifts out to about 405,500 km. Lasers fired at reflectors left by the Apollo crews measure the distance to within millimetres, and show the Moon slowly receding, about 3.8 centimetres a year, as tides transfer the Earth's spin to its orbit. Tonight's exact figure is in any ephemeris.",
  'A rainbow needs sunlight behind you and falling drops in front of you. Each drop bends the light as it enters, reflects it once off the back surface, and bends it again on the way out. Because water bends violet slightly more than red, the colours leave at slightly different angles, around 40 to 42 degrees from the point directly opposite the Sun. Every drop at that angle sends you one colour, and together they draw the arc. A second, fainter bow with reversed colours comes from two reflections inside the drops.',
  'Stars are so far away that they are effectively points of light. Pockets of warmer and cooler air in our atmosphere bend that thin beam a little differently from moment to moment, so its brightness and position jitter: the star twinkles. A planet is close enough to show a tiny disc. Light from different parts of the disc takes different paths through the turbulence, and the fluctuations average out, so planets shine more steadily. Near the horizon, where you look through more air, even planets can shimmer on a windy night.',
  'A cloud is not a lump of liquid but billions of droplets, each only a few thousandths of a millimetre across. Drops that small fall extremely slowly, a centimetre a second or less, because air resistance almost balances their tiny weight. Meanwhile the rising air that formed the cloud pushes upward faster than that, so the droplets stay aloft or even climb. Only when droplets collide and merge into drops a million times larger do they fall out as rain. A typical cumulus still weighs hundreds of tonnes, spread thinly.',
];

/**
 * Conversations of 5 turns kept the way the bot keeps them (the ask plugin's namespace of the
 * SQLite state store), then the file's size (with its WAL) per conversation.
 */
async function storeSize(
  conversations: number,
): Promise<{ bytesPerConversation: number; textPerConversation: number; lookupUs: number }> {
  const path = join(mkdtempSync(join(tmpdir(), 'chorus-bench-')), 'state.sqlite');
  const state = await openSqliteStore(path);
  const memory = await ConversationMemory.open({ turns: 20, store: namespacedStore(state, 'plugin:ask:') });
  for (let i = 0; i < conversations; i++) {
    for (let turn = 0; turn < 5; turn++)
      await memory.remember(`telegram:${1_000_000_000 + i}`, questions[turn]!, answers[turn]!);
  }
  const start = performance.now();
  for (let i = 0; i < 10_000; i++)
    await memory.history(`telegram:${1_000_000_000 + ((i * 7919) % conversations)}`);
  const lookupUs = ((performance.now() - start) * 1000) / 10_000;
  await memory.close();
  await state.close();
  const bytes = statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  const text = [...questions, ...answers].join('').length;
  return { bytesPerConversation: bytes / conversations, textPerConversation: text, lookupUs };
}

export async function benchAsk(): Promise<Row[]> {
  const inPrivate = await editsPerMinute('private');
  const inGroup = await editsPerMinute('group');
  const delays = (await firstTokenToSend(200)).sort((a, b) => a - b);
  const store = await storeSize(10_000);
  return [
    {
      name: 'ask: sends+edits in the busiest minute, 2,000 tokens at 50/s, private',
      value: String(inPrivate.perMinute),
      note: `budget ${inPrivate.budget}/min, ${inPrivate.minutes.toFixed(2)} min`,
    },
    {
      name: 'ask: sends+edits in the busiest minute, same answer, group',
      value: String(inGroup.perMinute),
      note: `budget ${inGroup.budget}/min, ${inGroup.minutes.toFixed(2)} min`,
    },
    { name: 'ask: first token to first send p50 (ms)', value: delays[100]!.toFixed(2) },
    { name: 'ask: first token to first send p99 (ms)', value: delays[198]!.toFixed(2) },
    {
      name: 'ask: SQLite bytes per stored conversation',
      value: store.bytesPerConversation.toFixed(0),
      note: `10,000 conversations of 5 turns, ${store.textPerConversation} characters of text each`,
    },
    { name: 'ask: history lookup (µs)', value: store.lookupUs.toFixed(1) },
  ];
}
