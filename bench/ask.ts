/**
 * Streaming: a 2,000-token answer at 50 tokens/s into a private chat and a group, on the Telegram
 * adapter's default budgets (5 per 5 s per chat, 20/min per group), on a fake clock: edits per minute against the
 * budget. The delay from the first token to the first send, in real time. The size of 10,000
 * stored conversations.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConversationStore } from '../plugins/ask/memory.ts';
import { sleep } from '../src/clock.ts';
import { definePlugin } from '../src/plugin.ts';
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

async function storeSize(conversations: number): Promise<{ bytesPerConversation: number; lookupUs: number }> {
  const path = join(mkdtempSync(join(tmpdir(), 'chorus-bench-')), 'ask.sqlite');
  const store = ConversationStore.open(path, { turns: 20 });
  const question = 'Why is the sky blue, and why are sunsets red? '.repeat(1);
  const answer = 'Because of Rayleigh scattering: shorter wavelengths scatter more. '.repeat(8);
  for (let i = 0; i < conversations; i++) {
    for (let turn = 0; turn < 5; turn++) await store.remember(`telegram:${i}`, question, answer);
  }
  const start = performance.now();
  for (let i = 0; i < 10_000; i++) await store.history(`telegram:${(i * 7919) % conversations}`);
  const lookupUs = ((performance.now() - start) * 1000) / 10_000;
  store.close();
  const bytes = statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  return { bytesPerConversation: bytes / conversations, lookupUs };
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
      note: '10,000 conversations of 5 turns',
    },
    { name: 'ask: history lookup (µs)', value: store.lookupUs.toFixed(1) },
  ];
}
