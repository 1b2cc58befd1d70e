import { describe, expect, it } from 'vitest';
import { definePlugin } from '../../src/plugin.ts';
import { compose, type Route, type RouteStep } from '../../src/router.ts';
import { createTestBot } from '../../src/testing.ts';

const echo = definePlugin({
  name: 'echo',
  setup(ctx) {
    ctx.command({ name: 'echo', description: 'Say it back', keywords: ['say'] }, async (c) => {
      await c.reply(c.command!.args);
    });
    ctx.match({ name: 'greeting', test: (m) => m.text === 'hi' }, async (c) => {
      await c.reply('hello');
    });
  },
});

describe('routing steps', () => {
  it('compose runs each step in order; a step that does not call next ends the routing', async () => {
    const seen: string[] = [];
    const step =
      (name: string, pass = true): RouteStep =>
      async (_route, next) => {
        seen.push(`${name}>`);
        if (pass) await next();
        seen.push(`<${name}`);
      };
    await compose([step('a'), step('b', false), step('c')])({} as Route);
    expect(seen).toEqual(['a>', 'b>', '<b', '<a']);
  });

  it('a plugin’s step sees the parsed command and may stop it, after /cancel and before commands', async () => {
    let holdJobs: (() => void) | undefined;
    const slow = definePlugin({
      name: 'slow',
      setup(ctx) {
        ctx.command({ name: 'slow', description: 'waits' }, async (c) => {
          await new Promise<void>((resolve) => {
            holdJobs = resolve;
            c.signal.addEventListener('abort', () => resolve());
          });
        });
      },
    });
    const seen: (string | undefined)[] = [];
    const quiet = definePlugin({
      name: 'quiet',
      setup(ctx) {
        ctx.use((route, next) => {
          seen.push(route.command?.name);
          // Moderation: nothing in this chat but /slow gets through.
          if (route.message.chat.id === 'muted' && route.command?.name !== 'slow') return;
          return next();
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin: echo }, { plugin: slow }, { plugin: quiet }] });
    await kit.run(kit.send('/echo one'));
    await kit.run(kit.send('/echo two', { chat: { id: 'muted' } }));
    await kit.run(kit.send('say three', { chat: { id: 'muted' } }));
    await kit.run(kit.send('hi', { chat: { id: 'muted' } }));
    const job = kit.send('/slow', { chat: { id: 'muted' } });
    await kit.clock.tick(0);
    await kit.run(kit.send('/cancel', { chat: { id: 'muted' } }));
    await kit.run(job);
    expect(seen).toEqual(['echo', 'echo', undefined, undefined, 'slow']);
    expect(kit.adapter.texts('chat-1')).toEqual(['one']);
    expect(kit.adapter.texts('muted')).toEqual(['Cancelled 1 job(s).']);
    expect(holdJobs).toBeDefined();
  });

  it('a plugin’s step is undone when the plugin stops', async () => {
    const blockAll = definePlugin({
      name: 'block',
      setup(ctx) {
        ctx.use(() => {});
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin: echo }, { plugin: blockAll }] });
    await kit.run(kit.send('/echo blocked'));
    expect(kit.adapter.texts()).toEqual([]);
    await kit.stop();
    expect(kit.adapter.texts()).toEqual([]);
  });

  it('messages from bots and from chats an adapter leaves out go nowhere', async () => {
    const kit = await createTestBot({
      plugins: [{ plugin: echo }],
      adapter: { admits: (message) => message.chat.id !== 'closed' },
    });
    await kit.run(kit.send('/echo from a bot', { user: { id: 'b', name: 'Bot', isBot: true } }));
    await kit.run(kit.send('/echo closed', { chat: { id: 'closed' } }));
    await kit.run(kit.send('/echo open'));
    expect(kit.adapter.texts()).toEqual(['open']);
  });
});
