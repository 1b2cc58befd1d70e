/**
 * Scheduled jobs as plugins see them: the job (plain data), the `Schedule` API a plugin calls and
 * the options of its tasks; and the checks what a plugin asks for passes before it becomes a job
 * (task names and job ids, plain JSON data, cron expressions, time zones); and the times a job
 * runs at, first and after each run. The scheduler that runs the jobs is `schedule.ts`; where
 * they are kept, `schedule-store.ts`.
 */
import { Cron } from 'croner';
import type { Context } from './context.ts';
import type { ChatAddress, UserRef } from './message.ts';
import type { Json } from './store.ts';

export type { Json } from './store.ts';

/** A job as it is kept in the store. Plain data. */
export interface ScheduledJob<Data extends Json = Json> {
  readonly id: string;
  readonly plugin: string;
  readonly task: string;
  readonly data: Data;
  /** Where the task's context replies. */
  readonly chat: ChatAddress;
  /** Who scheduled it, if a user did. `/cancel` from this user cancels a run in progress. */
  readonly user?: UserRef;
  /** When it runs next (milliseconds since the epoch). */
  readonly runAt: number;
  /** When the current run was due; a retry keeps it while `runAt` moves on. */
  readonly dueAt: number;
  /** For a repeating job: its cron expression and time zone. */
  readonly every?: { readonly cron: string; readonly timezone?: string };
  /** Failed attempts of the current run so far. */
  readonly attempt: number;
  readonly createdAt: number;
  /** Changes on every reschedule, so a run never overwrites a job that was replaced meanwhile. */
  readonly rev: string;
}

/** What a running task sees of its job. */
export interface ScheduledRun<Data extends Json = Json> extends ScheduledJob<Data> {
  /** The job was due while no bot was running, and runs now, at start. */
  readonly late: boolean;
}

/** The context of a task: a job context bound to the job's chat, plus the job. */
export type TaskContext<Data extends Json = Json> = Context & { readonly scheduled: ScheduledRun<Data> };

/** A task's handler. Runs as a job: cancellable with `/cancel`, aborted on shutdown. */
export type TaskHandler<Data extends Json = Json> = (ctx: TaskContext<Data>) => void | Promise<void>;

/** How a task is run. */
export interface TaskOptions {
  /** A job due while the bot was down: `run` it once at start (default), or `skip` that run. */
  readonly misfire?: 'run' | 'skip';
  /** Retries after a failure. Default 3. */
  readonly retries?: number;
  /** Delay before the first retry; each later one waits twice as long. Default 30 s. */
  readonly retryDelayMs?: number;
}

/** Where and for whom a job is scheduled, and an optional stable id. */
export interface ScheduleOptions {
  /** The chat the task replies in. Default: the chat of the job that schedules it (required in `setup`). */
  readonly chat?: ChatAddress;
  /** Default: the user of the job that schedules it. */
  readonly user?: UserRef;
  /**
   * A stable id (letters, digits, `_`, `-`, `.`): scheduling again under it replaces the job, so a
   * plugin can set up a daily job in `setup` on every start without piling up copies.
   */
  readonly id?: string;
}

/** Which jobs {@link Schedule.list} returns. */
export interface ScheduleFilter {
  /** Jobs replying in this chat (same adapter and chat id; any topic or thread). */
  readonly chat?: ChatAddress;
  /** Jobs scheduled by this user id. */
  readonly user?: string;
}

/** A plugin's scheduler: `ctx.schedule` in a handler (bound to its chat) or in `setup`. */
export interface Schedule {
  /** Runs `task` in `ms` milliseconds. Resolves with the job's id. */
  later(ms: number, task: string, data?: Json, options?: ScheduleOptions): Promise<string>;
  /** Runs `task` at `when` (a past time runs at once). Resolves with the job's id. */
  at(when: Date | number, task: string, data?: Json, options?: ScheduleOptions): Promise<string>;
  /**
   * Runs `task` on a cron schedule (`0 9 * * 1-5`; six fields add seconds) in `timezone`
   * (an IANA name; default the system's). Resolves with the job's id.
   */
  every(
    cron: string,
    task: string,
    data?: Json,
    options?: ScheduleOptions & { readonly timezone?: string },
  ): Promise<string>;
  /** Cancels one of this plugin's jobs. True when it existed. A run in progress finishes. */
  cancel(id: string): Promise<boolean>;
  /** This plugin's jobs, soonest first. */
  list(filter?: ScheduleFilter): Promise<ScheduledJob[]>;
}

const maxDataBytes = 64 * 1024;
const namePattern = /^[\w.-]{1,64}$/;

/** Whether `value` can name a task or a job: 1-64 letters, digits, `_`, `-` or `.`. */
export function isName(value: string): boolean {
  return namePattern.test(value);
}

/** A task's options with their defaults filled in. */
export interface TaskSettings {
  readonly misfire: 'run' | 'skip';
  readonly retries: number;
  readonly retryDelayMs: number;
}

/** The settings of task `name`, its name and options checked (a TypeError names the wrong one). */
export function taskSettings(plugin: string, name: string, options: TaskOptions): TaskSettings {
  if (!namePattern.test(name)) {
    throw new TypeError(`task name "${name}" must be 1-64 letters, digits, _, - or . (plugin ${plugin})`);
  }
  const retries = options.retries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 30_000;
  if (!Number.isInteger(retries) || retries < 0) throw new TypeError('retries must be an integer >= 0');
  if (!Number.isInteger(retryDelayMs) || retryDelayMs <= 0)
    throw new TypeError('retryDelayMs must be a positive integer');
  return { misfire: options.misfire ?? 'run', retries, retryDelayMs };
}

/**
 * Checks a job's data and options before it is kept: a chat to reply in, plain JSON data of at
 * most 64 KiB, and a well-formed id if one is given. Throws a TypeError naming what is wrong.
 */
export function checkJobRequest(
  data: Json,
  options: ScheduleOptions,
): asserts options is ScheduleOptions & { readonly chat: ChatAddress } {
  if (!options.chat) {
    throw new TypeError('a job scheduled outside a handler needs options.chat, the chat it replies in');
  }
  checkJson(data, 'data');
  if (JSON.stringify(data).length > maxDataBytes) {
    throw new TypeError(`scheduled job data must be at most ${maxDataBytes} bytes of JSON`);
  }
  if (options.id !== undefined && !namePattern.test(options.id)) {
    throw new TypeError(`job id "${options.id}" must be 1-64 letters, digits, _, - or .`);
  }
}

/** When `later(ms)` runs, asked at `now`. */
export function laterRun(ms: number, now: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`later(): ms must be >= 0, got ${ms}`);
  return now + ms;
}

/** When `at(when)` runs, asked at `now`: a past time runs at once. */
export function atRun(when: Date | number, now: number): number {
  const time = typeof when === 'number' ? when : when.getTime();
  if (!Number.isFinite(time)) throw new TypeError('at(): not a valid date');
  return Math.max(time, now);
}

/** When `every(cron)` first runs after `now`; checks the time zone and the expression. */
export function firstCronRun(cron: string, timezone: string | undefined, now: number): number {
  if (timezone !== undefined) checkZone(timezone);
  let next: number | undefined;
  try {
    next = nextCronRun(cron, timezone, now);
  } catch (error) {
    throw new TypeError(`every(): invalid cron expression "${cron}": ${(error as Error).message}`);
  }
  if (next === undefined) throw new TypeError(`every(): "${cron}" never matches again`);
  return next;
}

/**
 * A job after a run that counts (done, cancelled by a user, or out of retries), at `now`: a
 * repeating job's next occurrence, or `undefined` when the job is done.
 */
export function followingRun(job: ScheduledJob, now: number): ScheduledJob | undefined {
  if (!job.every) return undefined;
  // Missed occurrences collapse into the run just made: the next one is after now.
  const next = nextCronRun(job.every.cron, job.every.timezone, Math.max(now, job.dueAt));
  if (next === undefined) return undefined;
  return { ...job, runAt: next, dueAt: next, attempt: 0 };
}

/** The next time `cron` matches after `after`, in `timezone`; `undefined` when it never does again. */
export function nextCronRun(cron: string, timezone: string | undefined, after: number): number | undefined {
  const next = new Cron(cron, { paused: true, ...(timezone !== undefined && { timezone }) }).nextRun(
    new Date(after),
  );
  return next ? next.getTime() : undefined;
}

/** A TypeError naming the first part of `value` that is not plain JSON. */
function checkJson(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot hold`);
    return;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkJson(item, `${path}[${index}]`);
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) checkJson(item, `${path}.${key}`);
    return;
  }
  const kind = typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  throw new TypeError(`${path} is a ${kind}: scheduled job data must be plain JSON`);
}

function checkZone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new TypeError(`unknown time zone "${timezone}" (expected an IANA name such as Europe/Berlin)`);
  }
}
