/**
 * The `remind` plugin: `/remind 10m stretch`, `/remind tomorrow 09:00 call Ann`,
 * `/remind 2026-12-24 18:00 presents`. Each reminder is a scheduled job, so it survives restarts,
 * and it is sent in the chat (topic, thread) it was set in, through the adapter it came from.
 * `/reminders` lists the user's pending reminders in that chat, `/forget <id>` drops one.
 */
import { type Context, createKeyedLimiter, definePlugin, type ScheduledJob } from 'chorus-bot';
import { z } from 'zod';
import { strings } from './strings.ts';
import { formatDelay, formatLocal, parseWhen } from './when.ts';

const zone = z.string().refine(
  (name) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: name });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'an IANA time zone such as Europe/Berlin or Asia/Shanghai' },
);

/** The `plugins.remind` config section. */
export const remindConfig = z.strictObject({
  /** Pending reminders one user may have (per adapter). */
  maxPerUser: z.number().int().positive().default(25),
  /** The time zone of times like `09:00`. Default: the system's. */
  timezone: zone.optional(),
  /** Time zones of single users, by user id, over `timezone`. */
  userTimezones: z.record(z.string(), zone).default({}),
  /** How far ahead a reminder may be set. */
  maxDays: z.number().int().positive().default(366),
  /** Longest reminder text, in characters. */
  maxLength: z.number().int().positive().default(1000),
});

/** A reminder job's data. */
type Reminder = { readonly text: string };

/** The `remind` plugin. */
export const plugin = definePlugin({
  name: 'remind',
  config: remindConfig,
  setup(ctx, config) {
    ctx.strings(strings);
    const systemZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const zoneOf = (userId: string) => config.userTimezones[userId] ?? config.timezone ?? systemZone;
    // One /remind at a time per user, so the count a limit check reads is still true when it writes.
    const perUser = createKeyedLimiter(1);
    const mine = async (c: Context): Promise<ScheduledJob[]> =>
      c.schedule.list({ chat: c.chat, user: c.user.id });

    ctx.task<Reminder>('remind', async (c) => {
      const { data, late, dueAt, user } = c.scheduled;
      const name = user?.name ?? '';
      const text = late
        ? c.t('remind.fireLate', { name, text: data.text, time: formatLocal(dueAt, zoneOf(user?.id ?? '')) })
        : c.t('remind.fire', { name, text: data.text });
      await c.reply({ text, format: 'plain' });
    });

    ctx.command(
      {
        name: 'remind',
        description: { en: 'Remind me later', 'zh-CN': '稍后提醒我' },
        usage: '<when> <text>',
      },
      async (c) => {
        const timezone = zoneOf(c.user.id);
        const argv = c.command?.argv ?? [];
        const now = c.clock.now();
        const when = parseWhen(argv, now, timezone);
        const text = when.kind === 'ok' ? argv.slice(when.words).join(' ').trim() : '';
        if (when.kind !== 'ok' || !text) {
          await c.reply(c.t('remind.usage', { timezone }));
          return;
        }
        if (when.at <= now) {
          await c.reply(c.t('remind.past', { time: formatLocal(when.at, timezone), timezone }));
          return;
        }
        if (when.at - now > config.maxDays * 86_400_000) {
          await c.reply(c.t('remind.tooFar', { days: config.maxDays }));
          return;
        }
        if ([...text].length > config.maxLength) {
          await c.reply(c.t('remind.tooLong', { max: config.maxLength }));
          return;
        }
        const release = await perUser.acquire(`${c.chat.adapter}:${c.user.id}`, c.signal);
        try {
          const pending = (await c.schedule.list({ user: c.user.id })).filter(
            (job) => job.chat.adapter === c.chat.adapter,
          );
          if (pending.length >= config.maxPerUser) {
            await c.reply(c.t('remind.limit', { max: config.maxPerUser }));
            return;
          }
          const id = await c.schedule.at(when.at, 'remind', { text });
          await c.reply(
            c.t('remind.set', {
              time: formatLocal(when.at, timezone),
              timezone,
              delay: formatDelay(when.at - now),
              id,
            }),
          );
        } finally {
          release();
        }
      },
    );

    ctx.command(
      { name: 'reminders', description: { en: 'List your reminders here', 'zh-CN': '列出你在这里的提醒' } },
      async (c) => {
        const timezone = zoneOf(c.user.id);
        const jobs = await mine(c);
        if (jobs.length === 0) {
          await c.reply(c.t('remind.none'));
          return;
        }
        const lines = jobs.map((job) =>
          c.t('remind.item', {
            id: job.id,
            time: formatLocal(job.runAt, timezone),
            text: (job.data as Reminder).text,
          }),
        );
        await c.reply({ text: [c.t('remind.list', { timezone }), ...lines].join('\n'), format: 'plain' });
      },
    );

    ctx.command(
      {
        name: 'forget',
        description: { en: 'Forget one of your reminders', 'zh-CN': '删除你的一个提醒' },
        usage: '<id>',
      },
      async (c) => {
        const id = (c.command?.argv[0] ?? '').toLowerCase();
        if (!id) {
          await c.reply(c.t('remind.forgetUsage'));
          return;
        }
        // Only the user's own reminders in this chat: ids are short, and others' are not theirs to drop.
        const job = (await mine(c)).find((candidate) => candidate.id === id);
        if (!job || !(await c.schedule.cancel(job.id))) {
          await c.reply({ text: c.t('remind.unknown', { id: id.slice(0, 64) }), format: 'plain' });
          return;
        }
        await c.reply(c.t('remind.forgotten', { id }));
      },
    );
  },
});
