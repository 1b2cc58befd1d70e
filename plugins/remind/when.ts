/**
 * When a reminder is due, read from the words after `/remind`: a delay (`45s`, `10m`, `2h30m`,
 * `1d`), a time of day (`09:00`, `today 18:00`, `tomorrow 09:00`) or a date and time
 * (`2026-12-24 18:00`), local times in a time zone. Pure functions of the current time.
 */
import { CronDate } from 'croner';

/** What the first words of a reminder say. */
export type ParsedWhen =
  | { readonly kind: 'ok'; readonly at: number; readonly words: number }
  | { readonly kind: 'invalid' };

const unitMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const durationPattern = /^(?:\d{1,6}[smhdw])+$/;
const timePattern = /^([01]?\d|2[0-3])[:：]([0-5]\d)$/;
const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;
const todayWords = new Set(['today', '今天']);
const tomorrowWords = new Set(['tomorrow', '明天']);

/** `2h30m` → 9,000,000 ms; `undefined` when it is not a delay. */
export function parseDuration(word: string): number | undefined {
  const lower = word.toLowerCase();
  if (!durationPattern.test(lower)) return undefined;
  let total = 0;
  for (const [, amount, unit] of lower.matchAll(/(\d+)([smhdw])/g)) total += Number(amount) * unitMs[unit!]!;
  return total;
}

/** The date (year, month 1-12, day) it is at `at` in `timezone`. */
function localDate(at: number, timezone: string): { year: number; month: number; day: number } {
  const local = new CronDate(new Date(at), timezone);
  return { year: local.year, month: local.month + 1, day: local.day };
}

/** The instant of a local date and time in `timezone` (a time a DST change skips moves forward). */
export function zonedTime(
  date: { year: number; month: number; day: number },
  hour: number,
  minute: number,
  timezone: string,
): number {
  // Normalise overflow (31 December + 1 day) through UTC arithmetic before reading it as local time.
  const day = new Date(Date.UTC(date.year, date.month - 1, date.day));
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const iso = `${pad(day.getUTCFullYear(), 4)}-${pad(day.getUTCMonth() + 1)}-${pad(day.getUTCDate())}T${pad(hour)}:${pad(minute)}:00`;
  return new CronDate(iso, timezone).getTime();
}

/** Reads when a reminder is due from the first one or two of `words`. */
export function parseWhen(words: readonly string[], now: number, timezone: string): ParsedWhen {
  const [first = '', second = ''] = words;
  const delay = parseDuration(first);
  if (delay !== undefined) return delay > 0 ? { kind: 'ok', at: now + delay, words: 1 } : { kind: 'invalid' };

  const today = localDate(now, timezone);
  const lower = first.toLowerCase();
  const time = timePattern.exec(second);
  if ((todayWords.has(lower) || tomorrowWords.has(lower)) && time) {
    const offset = tomorrowWords.has(lower) ? 1 : 0;
    const at = zonedTime({ ...today, day: today.day + offset }, Number(time[1]), Number(time[2]), timezone);
    return { kind: 'ok', at, words: 2 };
  }
  const date = datePattern.exec(first);
  if (date && time) {
    const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const check = new Date(Date.UTC(year, month - 1, day));
    if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return { kind: 'invalid' };
    return {
      kind: 'ok',
      at: zonedTime({ year, month, day }, Number(time[1]), Number(time[2]), timezone),
      words: 2,
    };
  }
  const timeOnly = timePattern.exec(first);
  if (timeOnly) {
    const [hour, minute] = [Number(timeOnly[1]), Number(timeOnly[2])];
    let at = zonedTime(today, hour, minute, timezone);
    if (at <= now) at = zonedTime({ ...today, day: today.day + 1 }, hour, minute, timezone);
    return { kind: 'ok', at, words: 1 };
  }
  return { kind: 'invalid' };
}

/** `2026-12-24 18:00` in `timezone`. */
export function formatLocal(at: number, timezone: string): string {
  const local = new CronDate(new Date(at), timezone);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${local.year}-${pad(local.month + 1)}-${pad(local.day)} ${pad(local.hour)}:${pad(local.minute)}`;
}

/** `1h 5m`, `45s`, `3d 2h`: a delay in at most two units, for confirmations. */
export function formatDelay(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  const parts: [number, string][] = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor((seconds % 86_400) / 3600), 'h'],
    [Math.floor((seconds % 3600) / 60), 'm'],
    [seconds % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}
