import { describe, expect, it } from 'vitest';
import { definePlugin, type Json, sleep, type TaskOptions } from '../../src/index.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/store.ts';
import { createTestBot, FakeClock } from '../../src/testing.ts';

interface Fired {
  readonly id: string;
  readonly at: number;
  readonly data: Json;
  readonly late: boolean;
  readonly attempt: number;
  readonly chat: string;
  readonly threadId: string | undefined;
  readonly user: string | undefined;
}

/**
 * A plugin that schedules `ping` jobs from commands: `/in <ms> <text>`, `/at <epoch ms> <text>`,
 * `/every <timezone> <cron...>`, `/drop <id>`. Its task records each run and replies.
 */
function timerPlugin(
  options: { task?: TaskOptions; fail?: (attempt: number) => boolean; hold?: boolean; name?: string } = {},
) {
  const fired: Fired[] = [];
  const plugin = definePlugin({
    name: options.name ?? 'timer',
    setup(ctx) {
      ctx.task<{ text: string }>(
        'ping',
        async (c) => {
          const { scheduled } = c;
          fired.push({
            id: scheduled.id,
            at: c.clock.now(),
            data: scheduled.data,
            late: scheduled.late,
            attempt: scheduled.attempt,
            chat: c.chat.id,
            threadId: c.chat.threadId,
            user: scheduled.user?.id,
          });
          if (options.fail?.(scheduled.attempt))
            throw new Error(`ping failed (attempt ${scheduled.attempt})`);
          if (options.hold) await sleep(c.clock, 60_000, c.signal);
          await c.reply(`ping ${scheduled.data.text}${scheduled.late ? ' (late)' : ''}`);
        },
        options.task,
      );
      ctx.command({ name: 'in', description: 'ping later' }, async (c) => {
        const [ms = '', text = ''] = c.command?.argv ?? [];
        await c.reply(`scheduled ${await c.schedule.later(Number(ms), 'ping', { text })}`);
      });
      ctx.command({ name: 'at', description: 'ping at' }, async (c) => {
        const [at = '', text = ''] = c.command?.argv ?? [];
        await c.reply(`scheduled ${await c.schedule.at(new Date(Number(at)), 'ping', { text })}`);
      });
      ctx.command({ name: 'every', description: 'ping on a schedule' }, async (c) => {
        const [timezone = '', ...cron] = c.command?.argv ?? [];
        const id = await c.schedule.every(cron.join(' '), 'ping', { text: 'tick' }, { timezone });
        await c.reply(`scheduled ${id}`);
      });
      ctx.command({ name: 'drop', description: 'cancel a ping' }, async (c) => {
        await c.reply(String(await c.schedule.cancel(c.command?.args ?? '')));
      });
    },
  });
  return { plugin, fired };
}

const idOf = (text: string | undefined) => text!.replace('scheduled ', '');

describe('scheduled jobs on the fake clock', () => {
  it('later: fires once, exactly on time, replying in the chat and thread it was scheduled from', async () => {
    const { plugin, fired } = timerPlugin();
    const kit = await createTestBot({ plugins: [{ plugin }] });
    const start = kit.clock.now();
    await kit.send('/in 90000 stretch', { chat: { id: 'group-7', kind: 'group', threadId: 'topic-3' } });
    const id = idOf(kit.adapter.texts()[0]);
    expect(await kit.scheduled()).toMatchObject([
      { id, plugin: 'timer', task: 'ping', runAt: start + 90_000 },
    ]);
    await kit.clock.tick(89_999);
    expect(fired).toEqual([]);
    await kit.clock.tick(1);
    expect(fired).toEqual([
      {
        id,
        at: start + 90_000,
        data: { text: 'stretch' },
        late: false,
        attempt: 0,
        chat: 'group-7',
        threadId: 'topic-3',
        user: 'user-1',
      },
    ]);
    const ping = kit.adapter.calls.at(-1)!;
    expect(ping).toMatchObject({
      kind: 'send',
      chat: { adapter: 'mock', id: 'group-7', threadId: 'topic-3' },
    });
    expect(ping.kind === 'send' && ping.message).toEqual({ text: 'ping stretch' }); // a plain message, no reply
    await kit.clock.tick(3_600_000);
    expect(fired).toHaveLength(1);
    expect(await kit.scheduled()).toEqual([]);
  });

  it('at: fires at the given time; a time already past fires at once', async () => {
    const { plugin, fired } = timerPlugin();
    const kit = await createTestBot({ plugins: [{ plugin }] });
    const start = kit.clock.now();
    await kit.send(`/at ${start + 5 * 60_000} tea`);
    await kit.send(`/at ${start - 60_000} overdue`);
    await kit.clock.tick(0);
    expect(fired.map((f) => [f.data, f.at, f.late])).toEqual([[{ text: 'overdue' }, start, false]]);
    await kit.clock.tick(5 * 60_000);
    expect(fired.map((f) => [f.data, f.at])).toEqual([
      [{ text: 'overdue' }, start],
      [{ text: 'tea' }, start + 5 * 60_000],
    ]);
  });

  it('every: fires at 09:00 in its time zone each day across the spring DST change', async () => {
    const { plugin, fired } = timerPlugin();
    const clock = new FakeClock(Date.parse('2026-03-27T06:00:00Z'));
    const kit = await createTestBot({ plugins: [{ plugin }], clock });
    await kit.send('/every Europe/Berlin 0 9 * * *');
    await kit.clock.tick(4 * 86_400_000);
    // 09:00 CET is 08:00 UTC; from 29 March, 09:00 CEST is 07:00 UTC.
    expect(fired.map((f) => new Date(f.at).toISOString())).toEqual([
      '2026-03-27T08:00:00.000Z',
      '2026-03-28T08:00:00.000Z',
      '2026-03-29T07:00:00.000Z',
      '2026-03-30T07:00:00.000Z',
    ]);
    expect(new Set(fired.map((f) => f.id)).size).toBe(1);
    expect(await kit.scheduled()).toMatchObject([{ runAt: Date.parse('2026-03-31T07:00:00Z') }]);
  });

  it('every: a time the DST change skips runs once after the gap; a time it repeats runs once', async () => {
    const { plugin, fired } = timerPlugin();
    const clock = new FakeClock(Date.parse('2026-03-28T12:00:00Z'));
    const kit = await createTestBot({ plugins: [{ plugin }], clock });
    await kit.send('/every Europe/Berlin 30 2 * * *');
    await kit.clock.tick(2 * 86_400_000);
    // 29 March has no 02:30 in Berlin: the run comes at 03:00 CEST (01:00 UTC).
    expect(fired.map((f) => new Date(f.at).toISOString())).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    const autumn = timerPlugin();
    const later = await createTestBot({
      plugins: [{ plugin: autumn.plugin }],
      clock: new FakeClock(Date.parse('2026-10-24T12:00:00Z')),
    });
    await later.send('/every Europe/Berlin 30 2 * * *');
    await later.clock.tick(2 * 86_400_000);
    // 25 October has 02:30 twice (CEST, then CET): it runs on the first only.
    expect(autumn.fired.map((f) => new Date(f.at).toISOString())).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('cancel: a cancelled job never fires; unknown ids and other plugins’ jobs are not touched', async () => {
    const { plugin, fired } = timerPlugin();
    const other = definePlugin({
      name: 'other',
      setup(ctx) {
        ctx.command({ name: 'steal', description: 'cancel by id' }, async (c) => {
          await c.reply(`other: ${await c.schedule.cancel(c.command?.args ?? '')}`);
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }, { plugin: other }] });
    await kit.send('/in 1000 a');
    await kit.send('/in 2000 b');
    const [a, b] = kit.adapter.texts().map(idOf);
    await kit.send(`/steal ${b}`);
    await kit.send(`/drop ${a}`);
    await kit.send('/drop nosuchid');
    await kit.send('/drop ../../etc');
    expect(kit.adapter.texts().slice(2)).toEqual(['other: false', 'true', 'false', 'false']);
    await kit.clock.tick(5000);
    expect(fired.map((f) => f.id)).toEqual([b]);
  });

  it('list: filters a plugin’s jobs by chat and by user', async () => {
    const plugin = definePlugin({
      name: 'lister',
      setup(ctx) {
        ctx.task('noop', () => {});
        ctx.command({ name: 'add', description: 'add' }, async (c) => {
          await c.schedule.later(60_000, 'noop');
        });
        ctx.command({ name: 'mine', description: 'mine' }, async (c) => {
          const here = await c.schedule.list({ chat: c.chat, user: c.user.id });
          const everywhere = await c.schedule.list({ user: c.user.id });
          const all = await c.schedule.list();
          await c.reply(`${here.length}/${everywhere.length}/${all.length}`);
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }] });
    await kit.send('/add', { user: { id: 'ann' }, chat: { id: 'c1' } });
    await kit.send('/add', { user: { id: 'ann' }, chat: { id: 'c1', threadId: 't9' } });
    await kit.send('/add', { user: { id: 'ann' }, chat: { id: 'c2' } });
    await kit.send('/add', { user: { id: 'bob' }, chat: { id: 'c1' } });
    await kit.send('/mine', { user: { id: 'ann' }, chat: { id: 'c1' } });
    await kit.send('/mine', { user: { id: 'bob' }, chat: { id: 'c2' } });
    expect(kit.adapter.texts()).toEqual(['2/3/4', '0/1/4']);
  });

  it('refuses data that is not plain JSON, unknown tasks, and jobs from setup without a chat', async () => {
    const errors: string[] = [];
    const plugin = definePlugin({
      name: 'strict',
      async setup(ctx) {
        ctx.task('noop', () => {});
        for (const attempt of [
          () => ctx.schedule.later(1000, 'noop'),
          () =>
            ctx.schedule.later(1000, 'nosuchtask', null, {
              chat: { adapter: 'mock', platform: 'mock', id: 'c', kind: 'private' },
            }),
        ]) {
          await attempt().catch((error: Error) => errors.push(error.message));
        }
        ctx.command({ name: 'bad', description: 'bad' }, async (c) => {
          for (const data of [{ when: new Date(0) }, { n: Number.NaN }, [() => 1]]) {
            await c.schedule
              .later(1000, 'noop', data as never)
              .catch((error: Error) => errors.push(error.message));
          }
          await c.schedule.every('61 * * * *', 'noop').catch((error: Error) => errors.push(error.name));
          await c.schedule
            .every('0 9 * * *', 'noop', null, { timezone: 'Mars/Olympus' })
            .catch((error: Error) => errors.push(error.message));
        });
      },
    });
    const kit = await createTestBot({ plugins: [{ plugin }] });
    await kit.send('/bad');
    expect(errors).toEqual([
      'a job scheduled outside a handler needs options.chat, the chat it replies in',
      'plugin strict has no task "nosuchtask" (register it with ctx.task in setup)',
      'data.when is a Date: scheduled job data must be plain JSON',
      'data.n is NaN, which JSON cannot hold',
      'data[0] is a function: scheduled job data must be plain JSON',
      'TypeError',
      'unknown time zone "Mars/Olympus" (expected an IANA name such as Europe/Berlin)',
    ]);
    expect(await kit.scheduled()).toEqual([]);
  });

  it('a stable id from setup replaces the job instead of adding one on every start', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const chat = { adapter: 'mock', platform: 'mock', id: 'news', kind: 'group' } as const;
    const plugin = definePlugin({
      name: 'daily',
      async setup(ctx) {
        ctx.task('digest', async (c) => {
          await c.reply('digest');
        });
        await ctx.schedule.every('0 8 * * *', 'digest', null, { chat, id: 'morning', timezone: 'UTC' });
      },
    });
    for (let start = 0; start < 3; start++) {
      const kit = await createTestBot({ plugins: [{ plugin }], store, clock });
      await kit.stop();
    }
    const kit = await createTestBot({ plugins: [{ plugin }], store, clock });
    expect((await kit.scheduled()).map((job) => job.id)).toEqual(['morning']);
    await kit.clock.tick(86_400_000);
    expect(kit.adapter.texts('news')).toEqual(['digest']);
  });
});

describe('scheduled jobs across restarts', () => {
  it('a second bot on the same store fires each pending job once, on time', async () => {
    const clock = new FakeClock(Date.parse('2026-05-01T10:00:00Z'));
    const store = new MemoryStore({ clock });
    const first = timerPlugin();
    const kit1 = await createTestBot({ plugins: [{ plugin: first.plugin }], store, clock });
    const start = clock.now();
    await kit1.send('/in 60000 one');
    await kit1.send(`/at ${start + 120_000} two`);
    await kit1.send('/every UTC */5 * * * *');
    await kit1.stop();
    await clock.tick(30_000);
    const second = timerPlugin();
    const kit2 = await createTestBot({ plugins: [{ plugin: second.plugin }], store, clock });
    await clock.tick(10 * 60_000);
    expect(first.fired).toEqual([]);
    expect(second.fired.map((f) => [f.data, f.at - start, f.late])).toEqual([
      [{ text: 'one' }, 60_000, false],
      [{ text: 'two' }, 120_000, false],
      [{ text: 'tick' }, 300_000, false],
      [{ text: 'tick' }, 600_000, false],
    ]);
    expect(kit2.adapter.texts()).toEqual(['ping one', 'ping two', 'ping tick', 'ping tick']);
  });

  it('jobs due while the bot was down run once at start, marked late; a cron job catches up once', async () => {
    const clock = new FakeClock(Date.parse('2026-05-01T10:00:00Z'));
    const store = new MemoryStore({ clock });
    const first = timerPlugin();
    const kit1 = await createTestBot({ plugins: [{ plugin: first.plugin }], store, clock });
    await kit1.send('/in 60000 one');
    await kit1.send('/in 120000 two');
    await kit1.send('/every UTC 0 * * * *');
    await kit1.stop();
    await clock.tick(5 * 3_600_000 + 60_000); // down for five hours
    const second = timerPlugin();
    const kit2 = await createTestBot({ plugins: [{ plugin: second.plugin }], store, clock });
    await clock.tick(0);
    expect(second.fired.map((f) => [f.data, f.late])).toEqual([
      [{ text: 'one' }, true],
      [{ text: 'two' }, true],
      [{ text: 'tick' }, true],
    ]);
    expect(kit2.adapter.texts()).toContain('ping one (late)');
    await clock.tick(3_600_000);
    expect(second.fired.map((f) => new Date(f.at).toISOString()).at(-1)).toBe('2026-05-01T16:00:00.000Z');
    expect(second.fired.at(-1)?.late).toBe(false);
  });

  it('misfire: skip drops a missed run: a one-shot job goes, a cron job waits for its next time', async () => {
    const clock = new FakeClock(Date.parse('2026-05-01T10:30:00Z'));
    const store = new MemoryStore({ clock });
    const first = timerPlugin({ task: { misfire: 'skip' } });
    const kit1 = await createTestBot({ plugins: [{ plugin: first.plugin }], store, clock });
    await kit1.send('/in 60000 one');
    await kit1.send('/every UTC 0 * * * *');
    await kit1.stop();
    await clock.tick(3 * 3_600_000);
    const second = timerPlugin({ task: { misfire: 'skip' } });
    const kit2 = await createTestBot({ plugins: [{ plugin: second.plugin }], store, clock });
    await clock.tick(0);
    expect(second.fired).toEqual([]);
    expect((await kit2.scheduled()).map((job) => new Date(job.runAt).toISOString())).toEqual([
      '2026-05-01T14:00:00.000Z',
    ]);
    await clock.tick(30 * 60_000);
    expect(second.fired.map((f) => [new Date(f.at).toISOString(), f.late])).toEqual([
      ['2026-05-01T14:00:00.000Z', false],
    ]);
  });

  it('a plugin switched off keeps its jobs until it comes back', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const { plugin, fired } = timerPlugin();
    const kit1 = await createTestBot({ plugins: [{ plugin }], store, clock });
    await kit1.send('/in 60000 kept');
    await kit1.stop();
    const without = await createTestBot({ plugins: [], store, clock });
    await clock.tick(10 * 60_000);
    expect(without.adapter.texts()).toEqual([]);
    expect(await without.scheduled()).toMatchObject([{ plugin: 'timer', data: { text: 'kept' } }]);
    await without.stop();
    const back = await createTestBot({ plugins: [{ plugin }], store, clock });
    await clock.tick(0);
    expect(fired.map((f) => [f.data, f.late])).toEqual([[{ text: 'kept' }, true]]);
    expect(back.adapter.texts()).toEqual(['ping kept (late)']);
    expect(await back.scheduled()).toEqual([]);
  });

  it('two bots running on one store at once fire each job exactly once, and one takes over when the other stops', async () => {
    const clock = new FakeClock(Date.parse('2026-05-01T10:00:00Z'));
    const store = new MemoryStore({ clock });
    const a = timerPlugin();
    const b = timerPlugin();
    const options = { store, clock, scheduler: { pollMs: 1000 } };
    const kitA = await createTestBot({ plugins: [{ plugin: a.plugin }], ...options });
    const kitB = await createTestBot({ plugins: [{ plugin: b.plugin }], ...options });
    for (let i = 0; i < 10; i++) await (i % 2 ? kitA : kitB).send(`/in ${5000 + i * 100} job${i}`);
    await kitA.send('/every UTC 0 * * * * *'); // six fields: every minute, at second 0
    await clock.tick(3 * 60_000);
    await kitA.stop();
    await clock.tick(3 * 60_000);
    const text = (f: Fired) => (f.data as { text: string }).text;
    const all = [...a.fired, ...b.fired];
    expect(
      all
        .filter((f) => text(f) !== 'tick')
        .map(text)
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, i) => `job${i}`));
    const ticks = all.filter((f) => text(f) === 'tick').map((f) => new Date(f.at).toISOString());
    expect(ticks.sort()).toEqual([
      '2026-05-01T10:01:00.000Z',
      '2026-05-01T10:02:00.000Z',
      '2026-05-01T10:03:00.000Z',
      '2026-05-01T10:04:00.000Z',
      '2026-05-01T10:05:00.000Z',
      '2026-05-01T10:06:00.000Z',
    ]);
    expect(b.fired.filter((f) => text(f) === 'tick').length).toBeGreaterThanOrEqual(3); // B took over
  });

  it('a job whose lock a crashed process still holds runs once that lock runs out', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const { plugin, fired } = timerPlugin();
    const kit1 = await createTestBot({ plugins: [{ plugin }], store, clock });
    await kit1.send('/in 1000 held');
    const [job] = await kit1.scheduled();
    await kit1.stop();
    await store.lock(`schedule-lock:timer:${job!.id}`, 120_000); // taken by a process that died
    await createTestBot({ plugins: [{ plugin }], store, clock, scheduler: { leaseMs: 120_000 } });
    await clock.tick(60_000);
    expect(fired).toEqual([]);
    await clock.tick(61_000);
    expect(fired.map((f) => f.data)).toEqual([{ text: 'held' }]);
    await clock.tick(10 * 60_000);
    expect(fired).toHaveLength(1);
  });
});

describe('failing and cancelled runs', () => {
  it('a failing task is logged and retried with a growing delay, a bounded number of times', async () => {
    const lines: string[] = [];
    const { plugin, fired } = timerPlugin({
      fail: () => true,
      task: { retries: 2, retryDelayMs: 10_000 },
    });
    const kit = await createTestBot({
      plugins: [{ plugin }],
      log: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
    });
    const start = kit.clock.now();
    await kit.send('/in 1000 boom');
    await kit.clock.tick(3_600_000);
    expect(fired.map((f) => [f.at - start, f.attempt])).toEqual([
      [1000, 0],
      [11_000, 1],
      [31_000, 2],
    ]);
    expect(lines.filter((line) => line.includes('will retry'))).toHaveLength(2);
    expect(lines.filter((line) => line.includes('giving up'))).toHaveLength(1);
    expect(lines.join('\n')).toContain('ping failed (attempt 0)');
    expect(kit.adapter.texts()).toEqual([`scheduled ${fired[0]!.id}`]); // nothing said in the chat
    expect(await kit.scheduled()).toEqual([]);
  });

  it('a task that fails once succeeds on its retry', async () => {
    const { plugin, fired } = timerPlugin({ fail: (attempt) => attempt === 0, task: { retryDelayMs: 5000 } });
    const kit = await createTestBot({ plugins: [{ plugin }] });
    await kit.send('/in 1000 flaky');
    await kit.clock.tick(10_000);
    expect(fired.map((f) => f.attempt)).toEqual([0, 1]);
    expect(kit.adapter.texts().at(-1)).toBe('ping flaky');
    expect(await kit.scheduled()).toEqual([]);
  });

  it('/cancel stops a run in progress for good; shutdown leaves it due for the next start', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const held = timerPlugin({ hold: true });
    const kit = await createTestBot({ plugins: [{ plugin: held.plugin }], store, clock });
    await kit.send('/in 1000 cancelme');
    await clock.tick(1000);
    expect(await kit.bot.jobs()).toMatchObject([{ plugin: 'timer', command: 'ping', userId: 'user-1' }]);
    await kit.send('/cancel');
    await clock.tick(0);
    expect(kit.adapter.texts().at(-1)).toBe('Cancelled 1 job(s).');
    expect(await kit.scheduled()).toEqual([]);

    await kit.send('/in 1000 interrupted');
    await clock.tick(1000);
    expect(held.fired).toHaveLength(2);
    await kit.stop();
    expect(await kit.scheduled()).toMatchObject([{ data: { text: 'interrupted' } }]);
    await clock.tick(5000);
    const again = timerPlugin();
    const kit2 = await createTestBot({ plugins: [{ plugin: again.plugin }], store, clock });
    await clock.tick(0);
    expect(again.fired.map((f) => [f.data, f.late])).toEqual([[{ text: 'interrupted' }, true]]);
    expect(await kit2.scheduled()).toEqual([]);
  });
});
