import { describe, expect, it } from 'vitest';
import type { RateLimits } from '../../src/adapter.ts';
import { sleep } from '../../src/clock.ts';
import { definePlugin } from '../../src/plugin.ts';
import { createTestBot } from '../../src/testing.ts';

/** `/answer`: thinks for 2 s, then streams 100 tokens at 20 a second. */
const answer = (editIntervalMs?: number) =>
  definePlugin({
    name: 'answer',
    setup: (ctx) =>
      void ctx.command({ name: 'answer', description: 'x' }, async (c) => {
        async function* tokens() {
          await sleep(c.clock, 2000);
          for (let i = 0; i < 100; i++) {
            if (i > 0) await sleep(c.clock, 50);
            yield `t${i} `;
          }
        }
        await c.stream(tokens(), editIntervalMs === undefined ? {} : { editIntervalMs });
      }),
  });

const budgets: Record<string, RateLimits> = {
  discord: { perChat: { count: 5, periodMs: 5000 } },
  telegram: {
    perChat: { count: 5, periodMs: 5000 },
    perGroup: { count: 20, periodMs: 60_000 },
    global: { count: 30, periodMs: 1000 },
  },
};

async function streamOn(rate: RateLimits, editIntervalMs?: number) {
  const kit = await createTestBot({
    plugins: [{ plugin: answer(editIntervalMs) }],
    adapter: { limits: { rate } },
  });
  const start = kit.clock.now();
  await kit.run(kit.send('/answer', { chat: { id: 'g', kind: 'group' } }));
  const calls = kit.adapter.calls
    .filter((c) => c.kind === 'send' || c.kind === 'edit')
    .map((c) => ({
      kind: c.kind,
      at: c.at - start,
    }));
  await kit.stop();
  return { calls, texts: kit.adapter.texts() };
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe('streams follow the adapter’s budget', () => {
  it('Discord, 5 per 5 s in a channel: first text with the first token, then an edit a second', async () => {
    const { calls, texts } = await streamOn(budgets.discord!);
    expect(calls[0]).toEqual({ kind: 'send', at: 2000 });
    const edits = calls.filter((c) => c.kind === 'edit').map((c) => c.at);
    // 100 tokens over ~5 s: about an edit a second (one slot of five kept free), not one per token.
    expect(edits.length).toBeGreaterThanOrEqual(4);
    expect(edits.length).toBeLessThanOrEqual(7);
    for (const gap of gaps(edits.slice(0, -1))) expect(gap).toBeGreaterThanOrEqual(1000);
    const times = calls.map((c) => c.at);
    for (let i = 5; i < times.length; i++) expect(times[i]! - times[i - 5]!).toBeGreaterThanOrEqual(5000);
    expect(texts[0]!.trim().split(' ')).toHaveLength(100);
  });

  it('a Telegram group (20 a minute): first text at once, then an edit per 3 s', async () => {
    const { calls, texts } = await streamOn(budgets.telegram!);
    expect(calls[0]).toEqual({ kind: 'send', at: 2000 });
    const edits = calls.filter((c) => c.kind === 'edit').map((c) => c.at);
    for (const gap of gaps(edits)) expect(gap).toBeGreaterThanOrEqual(3000);
    expect(edits.length).toBeGreaterThanOrEqual(2);
    expect(texts[0]!.trim().split(' ')).toHaveLength(100);
  });

  it('editIntervalMs sets a longer minimum between edits; the first text still goes at once', async () => {
    const { calls, texts } = await streamOn(budgets.discord!, 2500);
    expect(calls[0]).toEqual({ kind: 'send', at: 2000 });
    const edits = calls.filter((c) => c.kind === 'edit').map((c) => c.at);
    for (const gap of gaps(edits.slice(0, -1))) expect(gap).toBeGreaterThanOrEqual(2500);
    expect(texts[0]!.trim().split(' ')).toHaveLength(100);
  });

  it('a notice still on its way when the answer starts becomes the answer: one message, nothing stale', async () => {
    const queued = definePlugin({
      name: 'queued',
      setup: (ctx) =>
        void ctx.command({ name: 'queued', description: 'x' }, async (c) => {
          await c.reply('first');
          const stream = c.openStream();
          // As the ask plugin does from a limiter's callback: not awaited.
          void stream.notice('⏳ queued, 1 ahead');
          await stream.write('The answer');
          await stream.end();
        }),
    });
    const kit = await createTestBot({
      plugins: [{ plugin: queued }],
      // The reply takes the chat's one slot: the notice waits a second in the outbox.
      adapter: { limits: { rate: { perChat: { count: 1, periodMs: 1000 } } } },
    });
    await kit.run(kit.send('/queued'));
    expect(kit.adapter.texts()).toEqual(['first', 'The answer']);
  });

  it('the first text of a stream goes before a status edit waiting in the same chat', async () => {
    const both = definePlugin({
      name: 'both',
      setup: (ctx) =>
        void ctx.command({ name: 'both', description: 'x' }, async (c) => {
          const status = await c.status('working: 0');
          for (let i = 1; i <= 3; i++) status.update(`working: ${i}`);
          async function* one() {
            yield 'hello';
          }
          await c.stream(one());
          await status.finish('done');
        }),
    });
    const kit = await createTestBot({
      plugins: [{ plugin: both }],
      adapter: { limits: { rate: { perChat: { count: 1, periodMs: 1000 } } } },
    });
    const start = kit.clock.now();
    await kit.run(kit.send('/both'));
    const sequence = kit.adapter.calls
      .filter((c) => c.kind === 'send' || c.kind === 'edit')
      .map((c) => [c.kind, c.kind === 'send' || c.kind === 'edit' ? c.message.text : '', c.at - start]);
    expect(sequence.slice(0, 2)).toEqual([
      ['send', 'working: 0', 0],
      ['send', 'hello', 1000],
    ]);
    expect(kit.adapter.texts()).toEqual(['done', 'hello']);
  });
});
