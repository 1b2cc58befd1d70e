import { describe, expect, it } from 'vitest';
import { createBot } from '../../src/bot.ts';
import { sleep } from '../../src/clock.ts';
import { BackendError, RateLimitError } from '../../src/errors.ts';
import { MemoryJobs } from '../../src/jobs.ts';
import { createLogger, silentLogger } from '../../src/logger.ts';
import type { IncomingMessage } from '../../src/message.ts';
import { definePlugin } from '../../src/plugin.ts';
import { createTestBot, MockAdapter } from '../../src/testing.ts';
import type { WorkHandler, WorkQueue } from '../../src/work.ts';

async function* pieces(
  clock: { now(): number },
  parts: string[],
  gapMs: number,
  sleeper: (ms: number) => Promise<void>,
) {
  for (const part of parts) {
    await sleeper(gapMs);
    yield part;
  }
  void clock;
}

const demo = definePlugin({
  name: 'demo',
  setup(ctx) {
    ctx.command({ name: 'echo', description: 'Echo', aliases: ['say'], keywords: ['回声'] }, async (c) => {
      await c.reply(`${c.user.name}: ${c.command?.args}`);
    });
    ctx.command({ name: 'slow', description: 'Waits a minute with a status message' }, async (c) => {
      const status = await c.status('Working...', { buttons: [[ctx.cancelButton()]] });
      await sleep(c.clock, 60_000, c.signal);
      status.update('almost');
      await status.finish('Finished.');
    });
    ctx.command({ name: 'leave', description: 'Leaves its status open' }, async (c) => {
      const status = await c.status('Step 1');
      status.update('Step 2');
    });
    ctx.command({ name: 'crash', description: 'Fails with a status open' }, async (c) => {
      await c.status('Drawing...');
      throw new BackendError('flux', 'invalid', 'flux answered HTML');
    });
    ctx.command({ name: 'bug', description: 'Fails with no reply' }, () => {
      throw new Error('secret internals');
    });
    ctx.command({ name: 'stream', description: 'Streams' }, async (c) => {
      const words = Array.from({ length: Number(c.command?.args || 20) }, (_, i) => `w${i} `);
      await c.stream(pieces(c.clock, words, 100, (ms) => sleep(c.clock, ms, c.signal)));
    });
    ctx.command({ name: 'broken', description: 'A stream cut mid-way' }, async (c) => {
      async function* cut() {
        yield 'partial ';
        yield 'answer';
        throw new BackendError('llm', 'network', 'llm: connection reset');
      }
      const result = await c.stream(cut());
      expect(result.outcome).toBe('failed');
    });
    ctx.command({ name: 'who', description: 'Targets', targets: ['all'] }, async (c) => {
      await c.reply(`target=${c.command?.target ?? 'none'}`);
    });
    ctx.match({ name: 'mention', test: (m) => m.mentionsBot }, async (c) => {
      await c.reply('you called?');
    });
  },
});

describe('bot, router and handler context (through the test kit)', () => {
  it('routes commands, aliases and keywords, and replies to the sender in their chat', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    await kit.send('/echo hi');
    await kit.send('/say there', { user: { id: 'u2', name: 'Bo' }, chat: { id: 'c2', kind: 'group' } });
    await kit.send('回声 你好');
    await kit.send('/echo@other_bot nope');
    await kit.send('/echo@chorus_bot yes');
    await kit.send('hello @chorus_bot', { mentionsBot: true });
    await kit.send('just chatting');
    expect(kit.adapter.texts('chat-1')).toEqual([
      'Test User: hi',
      'Test User: 你好',
      'Test User: yes',
      'you called?',
    ]);
    expect(kit.adapter.texts('c2')).toEqual(['Bo: there']);
    const first = kit.adapter.calls[0]!;
    expect(first.kind === 'send' && first.message.replyTo).toBe('in1');
  });

  it('answers an unknown command in a private chat only', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    await kit.send('/nope');
    await kit.send('/nope', { chat: { id: 'g', kind: 'group' } });
    expect(kit.adapter.texts('chat-1')).toEqual(['Unknown command /nope. Try /help.']);
    expect(kit.adapter.texts('g')).toEqual([]);
  });

  it('/cancel aborts only that user’s job in that chat and finishes its status message', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    const mine = kit.send('/slow');
    const theirs = kit.send('/slow', { user: { id: 'u2' } });
    await kit.clock.tick(1000);
    await kit.run(kit.send('/cancel'));
    await kit.run(Promise.all([mine, theirs]));
    const texts = kit.adapter.texts();
    expect(texts).toEqual(['Cancelled.', 'Finished.', 'Cancelled 1 job(s).']);
    // Buttons are removed from a finished status message.
    expect(kit.adapter.messages()[0]!.message.buttons).toEqual([]);
    expect(kit.adapter.messages().every((m) => m.final)).toBe(true);
  });

  it('the Cancel button cancels the presser’s job', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    const job = kit.send('/slow');
    await kit.clock.tick(10);
    const status = kit.adapter.messages()[0]!;
    expect(status.message.buttons?.[0]?.[0]).toMatchObject({ label: 'Cancel', action: 'chorus:cancel' });
    await kit.press('chorus:cancel', { messageId: status.id });
    await kit.run(job);
    expect(kit.adapter.texts()).toEqual(['Cancelled.']);
  });

  it('finishes status messages the handler left open: done, failed (with a short reason), never stuck', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    await kit.run(kit.send('/leave'));
    await kit.run(kit.send('/crash'));
    await kit.run(kit.send('/bug'));
    const messages = kit.adapter.messages();
    expect(messages.map((m) => m.text)).toEqual([
      'Step 2',
      'Something went wrong: unusable answer',
      'Something went wrong: internal error',
    ]);
    expect(messages.every((m) => m.final)).toBe(true);
  });

  it('shutdown aborts running jobs and finishes their status messages as stopped', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    const job = kit.send('/slow');
    await kit.clock.tick(10);
    await kit.stop();
    await job;
    expect(kit.adapter.texts()).toEqual(['Stopped: the bot is shutting down.']);
    expect(kit.adapter.stopped).toBe(true);
    await kit.send('/echo after');
    expect(kit.adapter.texts()).toHaveLength(1);
  });

  it('shutdown stops only this process’s jobs when the Jobs seam is shared with another process', async () => {
    const jobs = new MemoryJobs();
    const cancelled: string[] = [];
    const waiter = definePlugin({
      name: 'waiter',
      setup: (ctx) =>
        void ctx.command({ name: 'wait', description: 'x' }, async (c) => {
          await new Promise<void>((resolve) =>
            c.signal.addEventListener('abort', () => {
              cancelled.push(c.chat.id);
              resolve();
            }),
          );
        }),
    });
    const processes = ['a', 'b'].map(() => {
      const adapter = new MockAdapter();
      const bot = createBot({ adapters: [adapter], plugins: [{ plugin: waiter }], jobs, log: silentLogger });
      return { adapter, bot };
    });
    for (const { bot } of processes) await bot.start();
    const [a, b] = processes as [(typeof processes)[0], (typeof processes)[0]];
    const incoming = (chat: string): IncomingMessage => ({
      id: `m-${chat}`,
      chat: { adapter: 'mock', platform: 'mock', id: chat, kind: 'private' },
      sender: { id: 'u1', name: 'U' },
      text: '/wait',
      mentionsBot: false,
      images: [],
      date: 0,
    });
    await a.adapter.host.receive(incoming('on-a'));
    await b.adapter.host.receive(incoming('on-b'));
    expect((await jobs.list()).map((job) => job.chat.id).sort()).toEqual(['on-a', 'on-b']);
    await a.bot.stop();
    expect(cancelled).toEqual(['on-a']);
    expect((await jobs.list()).map((job) => job.chat.id)).toEqual(['on-b']);
    await b.bot.stop();
    expect(cancelled).toEqual(['on-a', 'on-b']);
  });

  it('runs a button handler as a job in the presser’s chat: it answers there, a failure leaves a note, shutdown cancels one still running', async () => {
    const lines: string[] = [];
    const ended: string[] = [];
    const votes = definePlugin({
      name: 'votes',
      setup: (ctx) => {
        ctx.button('up', async (press, c) => {
          await c.reply(`${c.user.id} voted (${press.action})`);
        });
        ctx.button('boom', () => {
          throw new Error('handler broke');
        });
        ctx.button('wait', async (_press, c) => {
          await sleep(ctx.clock, 60_000, c.signal).catch(() => {});
          ended.push(c.signal.aborted ? 'cancelled' : 'finished');
        });
      },
    });
    const kit = await createTestBot({
      plugins: [{ plugin: votes }],
      log: createLogger({ level: 'error', write: (line) => lines.push(line) }),
    });
    await kit.run(
      kit.press('votes:up', { messageId: 'm1', user: { id: 'u7' }, chat: { id: 'g1', kind: 'group' } }),
    );
    const sends = () => kit.adapter.calls.flatMap((call) => (call.kind === 'send' ? [call] : []));
    expect(sends().map((call) => [call.chat.id, call.message.text, call.message.replyTo])).toEqual([
      ['g1', 'u7 voted (votes:up)', 'm1'],
    ]);
    await kit.run(kit.press('votes:boom', { messageId: 'm2', chat: { id: 'g2', kind: 'group' } }));
    expect(lines.some((line) => line.includes('job failed') && line.includes('handler broke'))).toBe(true);
    expect(
      sends()
        .slice(1)
        .map((call) => [call.chat.id, call.message.replyTo]),
    ).toEqual([['g2', 'm2']]);
    expect(sends()[1]!.message.text).toBe('Something went wrong: internal error');
    void kit.press('votes:wait', { messageId: 'm3' });
    await kit.clock.tick(10);
    expect(await kit.bot.jobs()).toHaveLength(1);
    await kit.stop();
    expect(ended).toEqual(['cancelled']);
  });

  it('sends a caption longer than the platform takes after the pictures, with the buttons', async () => {
    const caption = `${'a long caption '.repeat(10)}end`;
    const pictures = definePlugin({
      name: 'pictures',
      setup: (ctx) =>
        void ctx.command({ name: 'pics', description: 'x' }, async (c) => {
          await c.reply({
            text: caption,
            images: [{ data: new Uint8Array([1]) }, { data: new Uint8Array([2]) }],
            buttons: [[{ label: 'More', action: 'more' }]],
          });
          await c.replyImages([{ data: new Uint8Array([3]) }], { caption: 'short' });
        }),
    });
    const kit = await createTestBot({
      plugins: [{ plugin: pictures }],
      adapter: { limits: { maxCaptionLength: 64, maxTextLength: 100 } },
    });
    await kit.run(kit.send('/pics'));
    const sends = kit.adapter.calls.flatMap((call) => (call.kind === 'send' ? [call.message] : []));
    expect(sends.map((m) => [m.images?.length ?? 0, m.buttons?.[0]?.[0]?.action ?? ''])).toEqual([
      [2, ''],
      [0, ''],
      [0, 'pictures:more'],
      [1, ''],
    ]);
    expect(sends[0]!.text).toBeUndefined();
    const parts = [sends[1]!.text!, sends[2]!.text!];
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(100);
    expect(parts.join(' ')).toBe(caption);
    expect(sends[3]!.text).toBe('short');
  });

  it('streams into one growing message with coalesced edits and a final edit', async () => {
    const kit = await createTestBot({
      plugins: [{ plugin: demo }],
      adapter: { limits: { rate: { perChat: { count: 1, periodMs: 1000 } } } },
    });
    await kit.run(kit.send('/stream 50'));
    const [message] = kit.adapter.messages();
    expect(message!.text.trim()).toBe(Array.from({ length: 50 }, (_, i) => `w${i}`).join(' '));
    expect(message!.final).toBe(true);
    // 50 pieces over 5 s at one operation a second: a handful of edits, not 50.
    expect(message!.edits).toBeLessThanOrEqual(7);
    const sends = kit.adapter.calls.filter((c) => c.kind === 'send');
    expect(sends).toHaveLength(1);
    expect(kit.adapter.calls.some((c) => c.kind === 'typing')).toBe(true);
  });

  it('continues a long stream in new messages within the platform limit, losing nothing', async () => {
    const kit = await createTestBot({
      plugins: [{ plugin: demo }],
      adapter: { limits: { maxTextLength: 100 } },
    });
    await kit.run(kit.send('/stream 80'));
    const texts = kit.adapter.texts();
    expect(texts.length).toBeGreaterThan(3);
    for (const text of texts) expect(text.length).toBeLessThanOrEqual(100);
    expect(texts.join(' ').split(/\s+/).filter(Boolean)).toEqual(
      Array.from({ length: 80 }, (_, i) => `w${i}`),
    );
  });

  it('a stream cut mid-way keeps the text so far and says why', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    await kit.run(kit.send('/broken'));
    expect(kit.adapter.texts()).toEqual(['partial answer\n\n(answer cut short: network error)']);
  });

  it('cancelling a stream finishes its message with (cancelled)', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    const job = kit.send('/stream 100');
    await kit.clock.tick(1050);
    await kit.run(kit.send('/cancel'));
    await kit.run(job);
    const [answer] = kit.adapter.messages();
    expect(answer!.text).toMatch(/^w0 w1 .* w9\n\n\(cancelled\)$/s);
    expect(answer!.final).toBe(true);
  });

  it('a rate-limit storm delays replies but loses none and duplicates none', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    kit.adapter.fail(() => new RateLimitError(2000), 5);
    const jobs = Array.from({ length: 5 }, (_, i) => kit.send(`/echo n${i}`));
    await kit.run(Promise.all(jobs));
    expect(kit.adapter.texts().sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4'].map((n) => `Test User: ${n}`));
  });

  it('50 users streaming at once each get exactly their own answer in their own chat', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }] });
    const jobs = Array.from({ length: 50 }, (_, i) =>
      kit.send(`/stream ${5 + (i % 7)}`, {
        user: { id: `u${i}` },
        chat: { id: `c${i}`, kind: i % 2 ? 'group' : 'private' },
      }),
    );
    await kit.run(Promise.all(jobs));
    for (let i = 0; i < 50; i++) {
      const mine = kit.adapter.messages(`c${i}`);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.text.trim()).toBe(Array.from({ length: 5 + (i % 7) }, (_, j) => `w${j}`).join(' '));
    }
    const sends = kit.adapter.calls.filter((c) => c.kind === 'send');
    expect(sends).toHaveLength(50);
    // Each answer replies to the message of the user of that chat (the kit numbers messages in1, in2, ...).
    for (const send of sends) {
      expect(send.kind === 'send' && send.message.replyTo).toBe(`in${Number(send.chat.id.slice(1)) + 1}`);
    }
  });

  it('translates core strings with the bot locale', async () => {
    const kit = await createTestBot({ plugins: [{ plugin: demo }], locale: 'zh-CN' });
    await kit.run(kit.send('/cancel'));
    expect(kit.adapter.texts()).toEqual(['你在这里没有正在运行的任务。']);
  });

  it('rejects a plugin whose command collides with another or with /cancel', async () => {
    const clash = definePlugin({
      name: 'clash',
      setup: (ctx) => void ctx.command({ name: 'echo', description: 'x' }, () => {}),
    });
    await expect(createTestBot({ plugins: [{ plugin: demo }, { plugin: clash }] })).rejects.toThrow(
      'command /echo of plugin clash is taken by demo',
    );
    const cancel = definePlugin({
      name: 'c',
      setup: (ctx) => void ctx.command({ name: 'cancel', description: 'x' }, () => {}),
    });
    await expect(createTestBot({ plugins: [{ plugin: cancel }] })).rejects.toThrow('taken by the core');
    const painter = (name: string) =>
      definePlugin({
        name,
        setup: (ctx) =>
          void ctx.command({ name: `${name}_cmd`, description: 'x', keywords: ['画'] }, () => {}),
      });
    await expect(
      createTestBot({ plugins: [{ plugin: painter('one') }, { plugin: painter('two') }] }),
    ).rejects.toThrow('keyword "画" of plugin two is taken by one');
  });

  it('routes a press of a plugin’s own button to the handler it registered, and no other plugin’s', async () => {
    const pressed: string[] = [];
    const buttons = (name: string) =>
      definePlugin({
        name,
        setup: (ctx) => {
          ctx.command({ name: `${name}_ask`, description: 'x' }, async (c) => {
            await c.reply({
              text: 'Again?',
              buttons: [[{ label: 'Yes', action: 'again' }, ctx.cancelButton()]],
            });
          });
          ctx.button(
            'again',
            (press) => void pressed.push(`${name} by ${press.user.id} on ${press.messageId}`),
          );
        },
      });
    const kit = await createTestBot({ plugins: [{ plugin: buttons('one') }, { plugin: buttons('two') }] });
    await kit.run(kit.send('/two_ask'));
    const sent = kit.adapter.messages()[0]!;
    const [again, cancel] = sent.message.buttons![0]!;
    expect(again!.action).toBe('two:again');
    expect(cancel!.action).toBe('chorus:cancel');
    await kit.run(kit.press(again!.action, { messageId: sent.id, user: { id: 'u7' } }));
    expect(pressed).toEqual([`two by u7 on ${sent.id}`]);
  });

  it('undoes everything a plugin registered when the bot stops', async () => {
    const seen: string[] = [];
    const plugin = definePlugin({
      name: 'tidy',
      setup(ctx) {
        ctx.on('job/end', () => void seen.push('job/end'));
        ctx.onDispose(() => void seen.push('disposed'));
        ctx.command({ name: 'ping', description: 'pong' }, (c) => c.reply('pong').then(() => {}));
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }] });
    await kit.run(kit.send('/ping'));
    await kit.stop();
    expect(kit.bot.commands()).toEqual([]);
    expect(kit.bot.bus.listenerCount('job/end')).toBe(0);
    expect(seen).toEqual(['job/end', 'disposed']);
  });
});

describe('typing', () => {
  it('keeps one typing loop per job, however many answers stream at once', async () => {
    const plugin = definePlugin({
      name: 'fan',
      setup(ctx) {
        ctx.command({ name: 'fan', description: 'Three streams' }, async (c) => {
          const streams = [c.openStream(), c.openStream(), c.openStream()];
          await sleep(c.clock, 12_500, c.signal);
          for (const stream of streams) await stream.write('done');
          for (const stream of streams) await stream.end();
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }] });
    await kit.run(kit.send('/fan'));
    // Refreshed every 4 s for 12.5 s: at 0, 4, 8 and 12 s, not three times that.
    expect(
      kit.adapter.calls.filter((c) => c.kind === 'typing').map((c) => c.at - kit.adapter.calls[0]!.at),
    ).toEqual([0, 4000, 8000, 12000]);
  });
});

describe('a work queue (several processes)', () => {
  it('queues what adapters receive, routes what the queue hands back, and keeps a local message here', async () => {
    const pushed: IncomingMessage[] = [];
    let handler: WorkHandler | undefined;
    const queue: WorkQueue = {
      push: async (message) => void pushed.push(message),
      start: async (h) => {
        handler = h;
      },
      stop: async () => {},
    };
    const adapter = new MockAdapter();
    const bot = createBot({ adapters: [adapter], plugins: [{ plugin: demo }], queue, log: silentLogger });
    await bot.start();
    const incoming = (id: string, text: string): IncomingMessage => ({
      id,
      chat: { adapter: 'mock', platform: 'mock', id: 'c1', kind: 'private' },
      sender: { id: 'u1', name: 'Ann' },
      text,
      mentionsBot: false,
      images: [],
      date: 0,
    });
    await adapter.host.receive(incoming('1', '/echo queued'));
    // Queued, not answered: the process that holds the chat's stream answers it.
    expect(pushed.map((m) => m.id)).toEqual(['1']);
    expect(adapter.texts()).toEqual([]);
    const taken = JSON.parse(JSON.stringify(pushed[0])) as IncomingMessage;
    expect(await handler!.route(taken)).toBe(true);
    await handler!.settled(taken);
    expect(adapter.texts()).toEqual(['Ann: queued']);
    // A message whose reply handle only this process can use is handled here.
    const here = incoming('2', '/echo here');
    await adapter.host.receive(here, { local: true });
    await bot.settled(here);
    expect(pushed).toHaveLength(1);
    expect(adapter.texts()).toEqual(['Ann: queued', 'Ann: here']);
    // Stopping: the router takes nothing more, and says so, so the message stays queued.
    await bot.stop();
    expect(await handler!.route(JSON.parse(JSON.stringify(pushed[0])) as IncomingMessage)).toBe(false);
  });
});
