import { describe, expect, it } from 'vitest';
import { plugin as remind } from '../../plugins/remind/index.ts';
import { formatDelay, parseDuration, parseWhen, zonedTime } from '../../plugins/remind/when.ts';
import { MemoryStore } from '../../src/store.ts';
import { createTestBot, FakeClock } from '../../src/testing.ts';

const june = Date.parse('2026-06-01T20:00:00Z'); // 04:00 on 2 June in Shanghai, 22:00 on 1 June in Berlin

async function bot(
  config: Record<string, unknown> = {},
  options: { clock?: FakeClock; store?: MemoryStore } = {},
) {
  const clock = options.clock ?? new FakeClock(june);
  return createTestBot({
    plugins: [{ plugin: remind, config: { timezone: 'UTC', ...config } }],
    clock,
    store: options.store ?? new MemoryStore({ clock }),
  });
}

const idIn = (text: string | undefined) => /Id: (\w+)$/.exec(text ?? '')?.[1] ?? '';

describe('remind plugin', () => {
  it('/remind 10m stretch: answers with the time, then reminds in the same chat and topic, once', async () => {
    const kit = await bot();
    const topic = { chat: { id: 'group-1', kind: 'group' as const, threadId: 'topic-9' } };
    await kit.send('/remind 10m stretch your legs', topic);
    expect(kit.adapter.texts()).toEqual([
      `⏰ I will remind you at 2026-06-01 20:10 (UTC), in 10m. Id: ${idIn(kit.adapter.texts()[0])}`,
    ]);
    await kit.clock.tick(10 * 60_000 - 1);
    expect(kit.adapter.texts()).toHaveLength(1);
    await kit.clock.tick(1);
    const sent = kit.adapter.messages().at(-1)!;
    expect(sent.text).toBe('⏰ Reminder for Test User: stretch your legs');
    expect(sent.chat).toMatchObject({ adapter: 'mock', id: 'group-1', threadId: 'topic-9' });
    expect(sent.message.format).toBe('plain');
    await kit.clock.tick(24 * 3_600_000);
    expect(kit.adapter.texts()).toHaveLength(2);
  });

  it('takes 45s, 2h30m, tomorrow 09:00 and a date, in the configured or the user’s time zone', async () => {
    const kit = await bot({ timezone: 'Asia/Shanghai', userTimezones: { berliner: 'Europe/Berlin' } });
    await kit.send('/remind 45s a');
    await kit.send('/remind 2h30m b');
    await kit.send('/remind tomorrow 09:00 c');
    await kit.send('/remind 2026-12-24 18:00 d');
    await kit.send('/remind 2026-12-24 18:00 e', { user: { id: 'berliner', name: 'B' } });
    await kit.send('/remind 明天 9:30 f');
    const runAts = (await kit.scheduled()).map((job) => [
      (job.data as { text: string }).text,
      new Date(job.runAt).toISOString(),
    ]);
    expect(runAts).toEqual([
      ['a', '2026-06-01T20:00:45.000Z'],
      ['b', '2026-06-01T22:30:00.000Z'],
      ['c', '2026-06-03T01:00:00.000Z'], // 09:00 on 3 June in Shanghai (it is 2 June there now)
      ['f', '2026-06-03T01:30:00.000Z'],
      ['d', '2026-12-24T10:00:00.000Z'],
      ['e', '2026-12-24T17:00:00.000Z'], // 18:00 in Berlin
    ]);
    expect(kit.adapter.texts()[2]).toMatch(
      /^⏰ I will remind you at 2026-06-03 09:00 \(Asia\/Shanghai\), in 1d 5h\. Id: /,
    );
  });

  it('explains its usage, and refuses times past, too far ahead, impossible dates and long texts', async () => {
    const kit = await bot({ maxDays: 30, maxLength: 10 });
    for (const text of [
      '/remind',
      '/remind soon stretch',
      '/remind 10m',
      '/remind 0s nothing',
      '/remind 2026-02-30 10:00 no such day',
      '/remind 2026-01-01 10:00 new year',
      '/remind 2026-12-24 18:00 presents',
      '/remind 1m this is far too long',
    ]) {
      await kit.send(text);
    }
    const usage =
      'Usage: /remind <when> <text>. <when> is a delay (45s, 10m, 2h30m, 1d), a time (09:00, tomorrow 09:00) or a date and time (2026-12-24 18:00), in UTC.';
    expect(kit.adapter.texts()).toEqual([
      usage,
      usage,
      usage,
      usage,
      usage,
      'That time has passed already (2026-01-01 10:00, UTC).',
      'That is too far ahead: at most 30 days.',
      'That reminder is too long: at most 10 characters.',
    ]);
    expect(await kit.scheduled()).toEqual([]);
  });

  it('/reminders lists only yours in this chat; /forget drops only yours', async () => {
    const kit = await bot();
    const ann = { user: { id: 'ann', name: 'Ann' }, chat: { id: 'c1', kind: 'group' as const } };
    const bob = { user: { id: 'bob', name: 'Bob' }, chat: { id: 'c1', kind: 'group' as const } };
    await kit.send('/remind 1h tea', ann);
    await kit.send('/remind 2h coffee', ann);
    await kit.send('/remind 3h elsewhere', { ...ann, chat: { id: 'c2', kind: 'group' } });
    await kit.send('/remind 1h bob’s', bob);
    const [tea, coffee, , bobs] = kit.adapter.texts().map(idIn);
    await kit.send('/reminders', ann);
    expect(kit.adapter.texts().at(-1)).toBe(
      [
        `Your reminders here (UTC):`,
        `${tea} · 2026-06-01 21:00 · tea`,
        `${coffee} · 2026-06-01 22:00 · coffee`,
      ].join('\n'),
    );
    await kit.send(`/forget ${bobs}`, ann);
    expect(kit.adapter.texts().at(-1)).toBe(`You have no reminder ${bobs} here. /reminders lists yours.`);
    await kit.send(`/forget ${tea}`, ann);
    expect(kit.adapter.texts().at(-1)).toBe(`Forgot reminder ${tea}.`);
    await kit.send('/forget', ann);
    expect(kit.adapter.texts().at(-1)).toBe('Usage: /forget <id> (/reminders lists the ids)');
    await kit.clock.tick(3 * 3_600_000);
    expect(kit.adapter.texts('c1').filter((text) => text.startsWith('⏰ Reminder'))).toEqual([
      '⏰ Reminder for Bob: bob’s',
      '⏰ Reminder for Ann: coffee',
    ]);
    await kit.send('/reminders', ann);
    expect(kit.adapter.texts().at(-1)).toBe('You have no pending reminders here.');
  });

  it('allows at most maxPerUser pending reminders per user, even when they arrive at once', async () => {
    const kit = await bot({ maxPerUser: 2 });
    await Promise.all(Array.from({ length: 5 }, (_, i) => kit.send(`/remind ${i + 1}m r${i}`)));
    expect(await kit.scheduled()).toHaveLength(2);
    expect(kit.adapter.texts().filter((text) => text.startsWith('You already have 2 pending'))).toHaveLength(
      3,
    );
    await kit.send('/remind 1h someone else', { user: { id: 'other' } });
    expect(await kit.scheduled()).toHaveLength(3);
    await kit.clock.tick(5 * 60_000);
    await kit.send('/remind 1m again');
    expect(kit.adapter.texts().at(-1)).toMatch(/^⏰ I will remind you/);
  });

  it('survives a restart: a second bot on the same store reminds once, saying when it is late', async () => {
    const clock = new FakeClock(june);
    const store = new MemoryStore({ clock });
    const first = await bot({}, { clock, store });
    await first.send('/remind 10m on time');
    await first.send('/remind 1m missed');
    await first.stop();
    await clock.tick(5 * 60_000);
    const second = await bot({}, { clock, store });
    await clock.tick(60 * 60_000);
    expect(first.adapter.texts().filter((text) => text.startsWith('⏰ Reminder'))).toEqual([]);
    expect(second.adapter.texts()).toEqual([
      '⏰ Reminder for Test User (late: it was due at 2026-06-01 20:01): missed',
      '⏰ Reminder for Test User: on time',
    ]);
  });

  it('speaks Chinese when the bot does', async () => {
    const clock = new FakeClock(june);
    const kit = await createTestBot({
      plugins: [{ plugin: remind, config: { timezone: 'Asia/Shanghai' } }],
      clock,
      locale: 'zh-CN',
    });
    await kit.send('/remind 10m 喝水');
    await kit.clock.tick(10 * 60_000);
    expect(kit.adapter.texts()[0]).toMatch(
      /^⏰ 我会在 2026-06-02 04:10（Asia\/Shanghai）提醒你，还有 10m。编号：\w+$/,
    );
    expect(kit.adapter.texts()[1]).toBe('⏰ 提醒 Test User：喝水');
  });

  it('refuses an unknown time zone in its config', async () => {
    await expect(bot({ timezone: 'Mars/Olympus' })).rejects.toThrow(
      'plugins.remind.timezone: an IANA time zone such as Europe/Berlin or Asia/Shanghai',
    );
  });
});

describe('reading when', () => {
  it('reads delays in seconds, minutes, hours, days and weeks, combined', () => {
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('2h30m')).toBe(9_000_000);
    expect(parseDuration('1w1d')).toBe(8 * 86_400_000);
    expect(parseDuration('10')).toBeUndefined();
    expect(parseDuration('m')).toBeUndefined();
    expect(parseDuration('10x')).toBeUndefined();
  });

  it('reads a bare time as its next occurrence, today or tomorrow', () => {
    const now = Date.parse('2026-06-01T10:00:00Z');
    expect(parseWhen(['12:00', 'x'], now, 'UTC')).toEqual({
      kind: 'ok',
      at: Date.parse('2026-06-01T12:00:00Z'),
      words: 1,
    });
    expect(parseWhen(['09:00', 'x'], now, 'UTC')).toEqual({
      kind: 'ok',
      at: Date.parse('2026-06-02T09:00:00Z'),
      words: 1,
    });
    expect(parseWhen(['24:00', 'x'], now, 'UTC')).toEqual({ kind: 'invalid' });
  });

  it('crosses month and year ends, and moves a time a DST change skips forward', () => {
    expect(zonedTime({ year: 2026, month: 12, day: 32 }, 9, 0, 'UTC')).toBe(
      Date.parse('2027-01-01T09:00:00Z'),
    );
    // 02:30 does not exist in Berlin on 29 March 2026: it becomes 03:30 CEST.
    expect(zonedTime({ year: 2026, month: 3, day: 29 }, 2, 30, 'Europe/Berlin')).toBe(
      Date.parse('2026-03-29T01:30:00Z'),
    );
  });

  it('formats delays in at most two units', () => {
    expect(formatDelay(45_000)).toBe('45s');
    expect(formatDelay(9_000_000)).toBe('2h 30m');
    expect(formatDelay(90_061_000)).toBe('1d 1h');
    expect(formatDelay(86_400_000 + 60_000)).toBe('1d');
  });
});
