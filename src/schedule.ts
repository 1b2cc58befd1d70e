/**
 * Scheduled jobs: plugins run a named task later, at a time, or on a cron schedule, and the job
 * outlives a restart because it is kept in the `Store`. A task is a handler a plugin registers in
 * `setup`; a job names the task and carries plain JSON data and the chat it replies to.
 *
 * Firing: one timer on the bot's clock waits for the earliest job. A due job is run under a store
 * lock, and re-read under it, so exactly one process runs it even when several share a store.
 * A job due while no bot ran is "late": at start it runs once (or is skipped, per the task's
 * `misfire`). A failing task is retried with a growing delay a bounded number of times. Jobs of a
 * plugin (or adapter) that is not loaded wait in the store untouched until it is back.
 */
import { Cron } from 'croner';
import type { Clock, TimerHandle } from './clock.ts';
import type { Context } from './context.ts';
import type { Logger } from './logger.ts';
import type { ChatAddress, UserRef } from './message.ts';
import type { Json, Store, StoreLock } from './store.ts';

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

/**
 * Runs one due job as a bot job and says how it ended. `interrupted`: stopped by the bot itself
 * (its plugin is being reloaded), so the job stays due and runs again.
 */
export type RunScheduled = (
  job: ScheduledRun,
  handler: TaskHandler,
) => Promise<'done' | 'failed' | 'cancelled' | 'interrupted'>;

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  /** Runs a due job (the bot makes it a job with a context bound to the job's chat). */
  readonly run: RunScheduled;
  /** Whether this bot can reach the job's chat (its adapter is loaded). Default: always. */
  readonly canReach?: (chat: ChatAddress) => boolean;
  /** Re-reads the store this often, for jobs other processes scheduled. Default: never (one process). */
  readonly pollMs?: number;
  /** How long a run holds its job's lock before it must extend it. Default 5 min. */
  readonly leaseMs?: number;
}

interface TaskEntry {
  readonly handler: TaskHandler;
  readonly misfire: 'run' | 'skip';
  readonly retries: number;
  readonly retryDelayMs: number;
}

const prefix = 'schedule:';
const lockPrefix = 'schedule-lock:';
const maxTimerMs = 2 ** 31 - 1;
const maxDataBytes = 64 * 1024;
const maxRetryDelayMs = 6 * 3_600_000;
const idAlphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
const namePattern = /^[\w.-]{1,64}$/;

const keyOf = (plugin: string, id: string) => `${prefix}${plugin}:${id}`;

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

/** Keeps the jobs, fires them on time, and hands out each plugin's {@link Schedule}. */
export class Scheduler {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #run: RunScheduled;
  readonly #canReach: (chat: ChatAddress) => boolean;
  readonly #pollMs: number | undefined;
  readonly #leaseMs: number;
  readonly #tasks = new Map<string, TaskEntry>();
  /** Jobs this process can run, by store key. */
  readonly #armed = new Map<string, ScheduledJob>();
  /** Keys being fired now, and those cancelled while firing. */
  readonly #firing = new Set<string>();
  readonly #cancelledWhileFiring = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Plugins whose jobs wait (their plugin is being reloaded). */
  readonly #paused = new Set<string>();
  #timer: TimerHandle | undefined;
  #timerAt: number | undefined;
  #nextPollAt: number | undefined;
  #startedAt: number | undefined;
  #state: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: SchedulerOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#run = options.run;
    this.#canReach = options.canReach ?? (() => true);
    this.#pollMs = options.pollMs;
    this.#leaseMs = options.leaseMs ?? 300_000;
  }

  /** Registers a plugin's task. Returns a function that unregisters it. */
  register(plugin: string, name: string, handler: TaskHandler, options: TaskOptions = {}): () => void {
    if (!namePattern.test(name)) {
      throw new TypeError(`task name "${name}" must be 1-64 letters, digits, _, - or . (plugin ${plugin})`);
    }
    const key = `${plugin}:${name}`;
    if (this.#tasks.has(key)) throw new TypeError(`task ${name} of plugin ${plugin} is registered twice`);
    const retries = options.retries ?? 3;
    const retryDelayMs = options.retryDelayMs ?? 30_000;
    if (!Number.isInteger(retries) || retries < 0) throw new TypeError('retries must be an integer >= 0');
    if (!Number.isInteger(retryDelayMs) || retryDelayMs <= 0)
      throw new TypeError('retryDelayMs must be a positive integer');
    const entry: TaskEntry = { handler, misfire: options.misfire ?? 'run', retries, retryDelayMs };
    this.#tasks.set(key, entry);
    return () => {
      if (this.#tasks.get(key) === entry) this.#tasks.delete(key);
    };
  }

  /** The {@link Schedule} of `plugin`; `bound` gives the default chat and user (a handler's own). */
  for(plugin: string, bound: { readonly chat?: ChatAddress; readonly user?: UserRef } = {}): Schedule {
    const add = (
      task: string,
      data: Json,
      options: ScheduleOptions,
      runAt: number,
      every?: ScheduledJob['every'],
    ) => this.#add(plugin, task, data, { ...bound, ...options }, runAt, every);
    return {
      later: async (ms, task, data = null, options = {}) => {
        if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`later(): ms must be >= 0, got ${ms}`);
        return add(task, data, options, this.#clock.now() + ms);
      },
      at: async (when, task, data = null, options = {}) => {
        const time = typeof when === 'number' ? when : when.getTime();
        if (!Number.isFinite(time)) throw new TypeError('at(): not a valid date');
        return add(task, data, options, Math.max(time, this.#clock.now()));
      },
      every: async (cron, task, data = null, options = {}) => {
        const timezone = options.timezone;
        if (timezone !== undefined) checkZone(timezone);
        let next: number | undefined;
        try {
          next = nextCronRun(cron, timezone, this.#clock.now());
        } catch (error) {
          throw new TypeError(`every(): invalid cron expression "${cron}": ${(error as Error).message}`);
        }
        if (next === undefined) throw new TypeError(`every(): "${cron}" never matches again`);
        return add(task, data, options, next, { cron, ...(timezone !== undefined && { timezone }) });
      },
      cancel: (id) => this.#cancel(plugin, id),
      list: async (filter = {}) => (await this.#list(`${prefix}${plugin}:`)).filter(matches(filter)),
    };
  }

  /** Every job in the store, soonest first (the test kit shows them). */
  list(filter: ScheduleFilter & { readonly plugin?: string } = {}): Promise<ScheduledJob[]> {
    const scope = filter.plugin === undefined ? prefix : `${prefix}${filter.plugin}:`;
    return this.#list(scope).then((jobs) => jobs.filter(matches(filter)));
  }

  /** Loads the jobs this bot can run and starts firing them; late ones fire now. */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    this.#startedAt = this.#clock.now();
    await this.#reload();
    const waiting = new Map<string, number>();
    for (const job of await this.#list(prefix)) {
      if (!this.#armed.has(keyOf(job.plugin, job.id))) {
        const why = this.#tasks.has(`${job.plugin}:${job.task}`)
          ? `adapter ${job.chat.adapter}`
          : `task ${job.plugin}:${job.task}`;
        waiting.set(why, (waiting.get(why) ?? 0) + 1);
      }
    }
    for (const [why, count] of waiting) {
      this.#log.info('scheduled jobs wait for what is not loaded', { waitingFor: why, jobs: count });
    }
    if (this.#pollMs !== undefined) this.#nextPollAt = this.#clock.now() + this.#pollMs;
    this.#tick();
  }

  /** Fires nothing more. Runs in progress go on until the bot aborts them; see {@link idle}. */
  halt(): void {
    this.#state = 'stopped';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Fires none of `plugin`'s jobs until {@link resume}; runs in progress go on. */
  pause(plugin: string): void {
    this.#paused.add(plugin);
  }

  /** Reads the store again (the plugin's tasks may have changed) and fires its due jobs. */
  async resume(plugin: string): Promise<void> {
    this.#paused.delete(plugin);
    if (this.#state !== 'running') return;
    await this.#reload();
    this.#tick();
  }

  /** Resolves once every run in progress has settled its job in the store. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #add(
    plugin: string,
    task: string,
    data: Json,
    options: ScheduleOptions,
    runAt: number,
    every: ScheduledJob['every'] | undefined,
  ): Promise<string> {
    if (!this.#tasks.has(`${plugin}:${task}`)) {
      throw new TypeError(`plugin ${plugin} has no task "${task}" (register it with ctx.task in setup)`);
    }
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
    const id = options.id ?? newId();
    const now = this.#clock.now();
    const job: ScheduledJob = {
      id,
      plugin,
      task,
      data,
      chat: options.chat,
      ...(options.user && { user: options.user }),
      runAt,
      dueAt: runAt,
      ...(every && { every }),
      attempt: 0,
      createdAt: now,
      rev: newId(),
    };
    const key = keyOf(plugin, id);
    await this.#store.set(key, job as unknown as Json);
    this.#arm(key, job);
    this.#tick();
    return id;
  }

  async #cancel(plugin: string, id: string): Promise<boolean> {
    if (typeof id !== 'string' || !namePattern.test(id)) return false;
    const key = keyOf(plugin, id);
    if (this.#firing.has(key)) this.#cancelledWhileFiring.add(key);
    this.#armed.delete(key);
    const existed = await this.#store.delete(key);
    this.#tick();
    return existed;
  }

  async #list(scope: string): Promise<ScheduledJob[]> {
    const entries = await this.#store.list<Json>(scope);
    return entries
      .map((entry) => entry.value as unknown as ScheduledJob)
      .sort((a, b) => a.runAt - b.runAt || a.id.localeCompare(b.id));
  }

  /** Arms `job` if this process can run it. */
  #arm(key: string, job: ScheduledJob): void {
    if (this.#tasks.has(`${job.plugin}:${job.task}`) && this.#canReach(job.chat)) this.#armed.set(key, job);
    else this.#armed.delete(key);
  }

  async #reload(): Promise<void> {
    const seen = new Set<string>();
    for (const job of await this.#list(prefix)) {
      const key = keyOf(job.plugin, job.id);
      seen.add(key);
      if (!this.#firing.has(key)) this.#arm(key, job);
    }
    for (const key of this.#armed.keys())
      if (!seen.has(key) && !this.#firing.has(key)) this.#armed.delete(key);
  }

  /** Fires what is due, then sets the one timer for what comes next. */
  #tick(): void {
    if (this.#state !== 'running') return;
    const now = this.#clock.now();
    if (this.#nextPollAt !== undefined && now >= this.#nextPollAt) {
      this.#nextPollAt = now + this.#pollMs!;
      this.#track(this.#reload().then(() => this.#tick()));
    }
    let next = this.#nextPollAt;
    for (const [key, job] of this.#armed) {
      if (this.#firing.has(key) || this.#paused.has(job.plugin)) continue;
      if (job.runAt <= now) this.#track(this.#fire(key, job));
      else if (next === undefined || job.runAt < next) next = job.runAt;
    }
    if (next === this.#timerAt && this.#timer !== undefined) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next === undefined) return;
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = undefined;
        this.#tick();
      },
      Math.min(Math.max(0, next - now), maxTimerMs),
    );
  }

  #track(promise: Promise<void>): void {
    const tracked = promise.catch((error: unknown) => this.#log.error('scheduler failed', { error }));
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  async #fire(key: string, armedJob: ScheduledJob): Promise<void> {
    this.#firing.add(key);
    this.#cancelledWhileFiring.delete(key);
    let lock: StoreLock | undefined;
    try {
      lock = await this.#store.lock(`${lockPrefix}${key.slice(prefix.length)}`, this.#leaseMs);
      if (!lock) {
        // Another process runs it now (or one that crashed held it): look again once its lease ends.
        this.#armed.set(key, { ...armedJob, runAt: this.#clock.now() + this.#leaseMs });
        return;
      }
      const job = await this.#store.get<Json>(key).then((value) => value as unknown as ScheduledJob);
      if (!job) {
        this.#armed.delete(key);
        return;
      }
      if (job.runAt > this.#clock.now()) {
        this.#arm(key, job); // replaced, or already run by another process
        return;
      }
      const task = this.#tasks.get(`${job.plugin}:${job.task}`);
      if (!task || this.#state !== 'running') {
        this.#armed.delete(key);
        return;
      }
      const late = job.runAt < this.#startedAt!;
      if (late && task.misfire === 'skip') {
        this.#log.info('skipped a job due while the bot was down', { plugin: job.plugin, task: job.task });
        await this.#settle(key, job, this.#advance(job));
        return;
      }
      if (late)
        this.#log.info('running a job due while the bot was down', { plugin: job.plugin, task: job.task });
      const outcome = await this.#runHolding(lock, { ...job, late }, task);
      if (outcome === 'interrupted' || (outcome === 'cancelled' && this.#state !== 'running')) {
        return; // stopped by shutdown or a reload: it stays due and runs at the next start or resume
      }
      if (outcome === 'failed') {
        await this.#settle(key, job, this.#retry(job, task));
        return;
      }
      await this.#settle(key, job, this.#advance(job));
    } catch (error) {
      // The store failed: try this job again a little later rather than in a tight loop.
      this.#log.error('could not run a scheduled job', { plugin: armedJob.plugin, id: armedJob.id, error });
      if (this.#armed.has(key)) this.#armed.set(key, { ...armedJob, runAt: this.#clock.now() + 5_000 });
    } finally {
      await lock
        ?.release()
        .catch((error: unknown) => this.#log.warn('could not release a job lock', { error }));
      this.#firing.delete(key);
      this.#cancelledWhileFiring.delete(key);
      this.#tick();
    }
  }

  /** Runs the task, extending the lock while it runs. */
  async #runHolding(
    lock: StoreLock,
    job: ScheduledRun,
    task: TaskEntry,
  ): Promise<'done' | 'failed' | 'cancelled' | 'interrupted'> {
    let renewal: TimerHandle | undefined;
    const renew = () => {
      renewal = this.#clock.setTimeout(() => {
        void lock.extend(this.#leaseMs).then(
          (held) => {
            if (!held) this.#log.warn('lost the lock of a running job', { plugin: job.plugin, id: job.id });
            else renew();
          },
          (error: unknown) => this.#log.warn('could not extend a job lock', { error }),
        );
      }, this.#leaseMs / 3);
    };
    renew();
    try {
      return await this.#run(job, task.handler);
    } finally {
      if (renewal !== undefined) this.#clock.clearTimeout(renewal);
    }
  }

  /** The job after a run that counts (done, cancelled by a user, or out of retries): next time or gone. */
  #advance(job: ScheduledJob): ScheduledJob | undefined {
    if (!job.every) return undefined;
    const now = this.#clock.now();
    // Missed occurrences collapse into the run just made: the next one is after now.
    const next = nextCronRun(job.every.cron, job.every.timezone, Math.max(now, job.dueAt));
    if (next === undefined) return undefined;
    return { ...job, runAt: next, dueAt: next, attempt: 0 };
  }

  #retry(job: ScheduledJob, task: TaskEntry): ScheduledJob | undefined {
    const attempt = job.attempt + 1;
    if (attempt > task.retries) {
      this.#log.error('scheduled task failed, giving up', {
        plugin: job.plugin,
        task: job.task,
        attempts: attempt,
      });
      return this.#advance(job);
    }
    const delay = Math.min(task.retryDelayMs * 2 ** (attempt - 1), maxRetryDelayMs);
    const retryAt = this.#clock.now() + delay;
    this.#log.warn('scheduled task failed, will retry', {
      plugin: job.plugin,
      task: job.task,
      attempt,
      inMs: delay,
    });
    const following = this.#advance(job);
    // A repeating job whose next occurrence comes first simply goes on with it.
    if (following && following.runAt <= retryAt) return following;
    return { ...job, runAt: retryAt, attempt };
  }

  /** Writes what follows a run, unless the job was cancelled or replaced while it ran. */
  async #settle(key: string, ran: ScheduledJob, next: ScheduledJob | undefined): Promise<void> {
    if (this.#cancelledWhileFiring.has(key)) return;
    const current = await this.#store.get<Json>(key).then((value) => value as unknown as ScheduledJob);
    if (!current || current.rev !== ran.rev) {
      if (current) this.#arm(key, current);
      return;
    }
    if (next) {
      const written = { ...next, rev: newId() };
      await this.#store.set(key, written as unknown as Json);
      this.#arm(key, written);
    } else {
      await this.#store.delete(key);
      this.#armed.delete(key);
    }
  }
}

function matches(filter: ScheduleFilter): (job: ScheduledJob) => boolean {
  return (job) =>
    (filter.chat === undefined ||
      (job.chat.adapter === filter.chat.adapter && job.chat.id === filter.chat.id)) &&
    (filter.user === undefined || job.user?.id === filter.user);
}

/** A short id that is easy to read out and type: 8 characters, no 0/o or 1/l. */
function newId(): string {
  let id = '';
  // Bytes past the last whole multiple of the alphabet are skipped, so every letter is equally likely.
  const limit = 256 - (256 % idAlphabet.length);
  while (id.length < 8) {
    for (const byte of crypto.getRandomValues(new Uint8Array(8))) {
      if (byte < limit && id.length < 8) id += idAlphabet[byte % idAlphabet.length];
    }
  }
  return id;
}
