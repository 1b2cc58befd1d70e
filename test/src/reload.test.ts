import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sleep } from '../../src/clock.ts';
import { ConfigError } from '../../src/errors.ts';
import { definePlugin } from '../../src/plugin.ts';
import { createTestBot } from '../../src/testing.ts';

/** A plugin whose version shows in every answer, and that records what it set up and undid. */
function version(label: string, trace: string[], extra: { failAfterRegistering?: boolean } = {}) {
  return definePlugin({
    name: 'greet',
    config: z.strictObject({ punctuation: z.string().max(3).default('!') }),
    setup(ctx, config) {
      trace.push(`setup ${label}`);
      ctx.command({ name: 'hi', description: 'Greets' }, async (c) => {
        await c.reply(`hello from ${label}${config.punctuation}`);
      });
      if (label === 'v1')
        ctx.command({ name: 'old', description: 'Only in v1' }, async (c) => {
          await c.reply('old');
        });
      ctx.command({ name: 'slow', description: 'Takes a minute' }, async (c) => {
        const status = await c.status(`${label} working`);
        await sleep(c.clock, 60_000, c.signal);
        await status.finish(`${label} done`);
      });
      ctx.command({ name: 'quick', description: 'Takes a second' }, async (c) => {
        await sleep(c.clock, 1_000, c.signal);
        await c.reply(`${label} quick done`);
      });
      ctx.command({ name: 'later', description: 'A note in a second' }, async (c) => {
        await c.schedule.later(1_000, 'note', { text: c.command?.args ?? '' });
        await c.reply('noted');
      });
      ctx.task<{ text: string }>('note', async (c) => {
        await sleep(c.clock, 10_000, c.signal);
        await c.reply(`${label} note: ${c.scheduled.data.text}`);
      });
      ctx.match({ name: 'anything', test: () => true }, async (c) => {
        await c.reply(`${label} heard you`);
      });
      ctx.on('job/end', () => {
        trace.push(`${label} saw a job end`);
      });
      ctx.onDispose(() => {
        trace.push(`dispose ${label}`);
      });
      if (extra.failAfterRegistering) {
        ctx.command({ name: 'half', description: 'Registered before the failure' }, async (c) => {
          await c.reply('half');
        });
        throw new Error(`${label} cannot start`);
      }
    },
  });
}

/** Another plugin with a matcher, set up after `greet`, to see matcher order survive a reload. */
const echo = definePlugin({
  name: 'echo',
  setup(ctx) {
    ctx.match({ name: 'echo', test: () => true }, async (c) => {
      await c.reply('echo heard you');
    });
  },
});

describe('reloading a plugin', () => {
  it('swaps in the new version: new handlers answer, the old registrations and listeners are gone', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({
      plugins: [{ plugin: version('v1', trace), config: {} }, { plugin: echo }],
    });
    await kit.send('/hi');
    await kit.bot.reloadPlugin('greet', { plugin: version('v2', trace), config: { punctuation: '?' } });
    await kit.send('/hi');
    await kit.send('/old');
    await kit.send('plain words');
    expect(kit.adapter.texts()).toEqual([
      'hello from v1!',
      'hello from v2?',
      'Unknown command /old. Try /help.',
      'v2 heard you', // greet's matcher still comes before echo's
    ]);
    expect(kit.bot.commands().map((entry) => entry.spec.name)).toEqual(['hi', 'slow', 'quick', 'later']);
    expect(trace).toEqual([
      'setup v1',
      'v1 saw a job end',
      'dispose v1',
      'setup v2',
      'v2 saw a job end',
      'v2 saw a job end',
    ]);
    await kit.stop();
  });

  it('keeps the old version when the new one throws in setup, undoing what it registered', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    await expect(
      kit.bot.reloadPlugin('greet', {
        plugin: version('v2', trace, { failAfterRegistering: true }),
        config: {},
      }),
    ).rejects.toThrow('v2 cannot start');
    await kit.send('/hi');
    await kit.send('/half');
    expect(kit.adapter.texts()).toEqual(['hello from v1!', 'Unknown command /half. Try /help.']);
    expect(trace).toEqual([
      'setup v1',
      'dispose v1',
      'setup v2',
      'dispose v2',
      'setup v1',
      'v1 saw a job end',
    ]);
    await kit.stop();
  });

  it('refuses a bad config before stopping anything', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    const reload = kit.bot.reloadPlugin('greet', {
      plugin: version('v2', trace),
      config: { punctuation: '!!!!' },
    });
    await expect(reload).rejects.toBeInstanceOf(ConfigError);
    await expect(reload).rejects.toMatchObject({
      issues: [expect.stringContaining('plugins.greet.punctuation')],
    });
    await kit.send('/hi');
    expect(kit.adapter.texts()).toEqual(['hello from v1!']);
    expect(trace).toEqual(['setup v1', 'v1 saw a job end']);
    await kit.stop();
  });

  it('lets a running job finish within the grace time, and holds new messages for the new version', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    const t0 = kit.clock.now();
    const quick = kit.send('/quick');
    await kit.clock.tick(100);
    const reload = kit.bot.reloadPlugin(
      'greet',
      { plugin: version('v2', trace), config: {} },
      { graceMs: 5_000 },
    );
    const during = kit.send('/hi'); // arrives while v1's job is finishing: waits, is not lost
    await kit.run(Promise.all([quick, reload, during]));
    expect(kit.adapter.texts()).toEqual(['v1 quick done', 'hello from v2!']);
    expect(kit.clock.now() - t0).toBe(1_000);
    await kit.stop();
  });

  it('cancels a job still running after the grace time, with a note', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    const t0 = kit.clock.now();
    const slow = kit.send('/slow');
    await kit.clock.tick(10);
    await kit.run(
      kit.bot.reloadPlugin('greet', { plugin: version('v2', trace), config: {} }, { graceMs: 2_000 }),
    );
    await kit.run(slow);
    expect(kit.clock.now() - t0).toBe(2_010);
    expect(kit.adapter.texts()).toEqual(['Stopped: the plugin was reloaded.']);
    expect(trace.indexOf('dispose v1')).toBeGreaterThan(trace.indexOf('v1 saw a job end'));
    await kit.send('/hi');
    expect(kit.adapter.texts()).toEqual(['Stopped: the plugin was reloaded.', 'hello from v2!']);
    await kit.stop();
  });

  it('runs a scheduled job interrupted by the reload again, with the new version', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    await kit.send('/later tea');
    await kit.clock.tick(1_000); // v1's run starts and takes 10 s
    expect((await kit.bot.jobs()).map((job) => job.command)).toEqual(['note']);
    await kit.run(
      kit.bot.reloadPlugin('greet', { plugin: version('v2', trace), config: {} }, { graceMs: 2_000 }),
    );
    await kit.clock.tick(10_000);
    expect(kit.adapter.texts()).toEqual(['noted', 'v2 note: tea']);
    expect(await kit.scheduled()).toEqual([]);
    await kit.stop();
  });

  it('stops a plugin and adds one', async () => {
    const trace: string[] = [];
    const kit = await createTestBot({ plugins: [{ plugin: version('v1', trace), config: {} }] });
    await kit.bot.reloadPlugin('greet', undefined);
    await kit.send('/hi');
    await kit.bot.reloadPlugin('echo', { plugin: echo });
    await kit.send('anything');
    expect(kit.adapter.texts()).toEqual(['Unknown command /hi. Try /help.', 'echo heard you']);
    expect(trace).toEqual(['setup v1', 'dispose v1']);
    await kit.stop();
  });
});
