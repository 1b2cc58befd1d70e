/**
 * The scheduler: it keeps the jobs this process can run armed, fires them on the bot's clock, and
 * decides what follows a run. A task is a handler a plugin registers in `setup`; a job names the
 * task and carries plain JSON data and the chat it replies to (`schedule-jobs.ts`), and outlives a
 * restart because it is kept in the `Store` (`schedule-store.ts`).
 *
 * Firing: one timer on the bot's clock waits for the earliest job. A due job is run under a store
 * lock, and re-read under it, so exactly one process runs it even when several share a store.
 * A job due while no bot ran is "late": at start it runs once (or is skipped, per the task's
 * `misfire`). A failing task is retried with a growing delay a bounded number of times. Jobs of a
 * plugin (or adapter) that is not loaded wait in the store untouched until it is back.
 */
import type { Clock, TimerHandle } from './clock.ts';
import type { Logger } from './logger.ts';
import type { ChatAddress, UserRef } from './message.ts';
import {
  atRun,
  checkJobRequest,
  firstCronRun,
  followingRun,
  isName,
  laterRun,
  type Schedule,
  type ScheduledJob,
  type ScheduledRun,
  type ScheduleFilter,
  type ScheduleOptions,
  type TaskHandler,
  type TaskOptions,
  type TaskSettings,
  taskSettings,
} from './schedule-jobs.ts';
import { holdWhile, matches, newId, ScheduleStore } from './schedule-store.ts';
import type { Json, Store, StoreLock } from './store.ts';

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

interface TaskEntry extends TaskSettings {
  readonly handler: TaskHandler;
}

const maxTimerMs = 2 ** 31 - 1;
const maxRetryDelayMs = 6 * 3_600_000;

/** Keeps the jobs, fires them on time, and hands out each plugin's {@link Schedule}. */
export class Scheduler {
  readonly #jobs: ScheduleStore;
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
    this.#jobs = new ScheduleStore(options.store);
    this.#clock = options.clock;
    this.#log = options.log;
    this.#run = options.run;
    this.#canReach = options.canReach ?? (() => true);
    this.#pollMs = options.pollMs;
    this.#leaseMs = options.leaseMs ?? 300_000;
  }

  /** Registers a plugin's task. Returns a function that unregisters it. */
  register(plugin: string, name: string, handler: TaskHandler, options: TaskOptions = {}): () => void {
    const key = `${plugin}:${name}`;
    // A name that is not valid is never registered, so it fails the check in taskSettings.
    if (this.#tasks.has(key)) throw new TypeError(`task ${name} of plugin ${plugin} is registered twice`);
    const entry: TaskEntry = { handler, ...taskSettings(plugin, name, options) };
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
      later: async (ms, task, data = null, options = {}) =>
        add(task, data, options, laterRun(ms, this.#clock.now())),
      at: async (when, task, data = null, options = {}) =>
        add(task, data, options, atRun(when, this.#clock.now())),
      every: async (cron, task, data = null, options = {}) => {
        const timezone = options.timezone;
        const next = firstCronRun(cron, timezone, this.#clock.now());
        return add(task, data, options, next, { cron, ...(timezone !== undefined && { timezone }) });
      },
      cancel: (id) => this.#cancel(plugin, id),
      list: async (filter = {}) => (await this.#jobs.list(plugin)).filter(matches(filter)),
    };
  }

  /** Every job in the store, soonest first (the test kit shows them). */
  list(filter: ScheduleFilter & { readonly plugin?: string } = {}): Promise<ScheduledJob[]> {
    return this.#jobs.list(filter.plugin).then((jobs) => jobs.filter(matches(filter)));
  }

  /** Loads the jobs this bot can run and starts firing them; late ones fire now. */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    this.#startedAt = this.#clock.now();
    await this.#reload();
    const waiting = new Map<string, number>();
    for (const job of await this.#jobs.list()) {
      if (!this.#armed.has(this.#jobs.keyOf(job.plugin, job.id))) {
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
    checkJobRequest(data, options);
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
    const key = this.#jobs.keyOf(plugin, id);
    await this.#jobs.set(key, job);
    this.#arm(key, job);
    this.#tick();
    return id;
  }

  async #cancel(plugin: string, id: string): Promise<boolean> {
    if (typeof id !== 'string' || !isName(id)) return false;
    const key = this.#jobs.keyOf(plugin, id);
    if (this.#firing.has(key)) this.#cancelledWhileFiring.add(key);
    this.#armed.delete(key);
    const existed = await this.#jobs.delete(key);
    this.#tick();
    return existed;
  }

  /** Arms `job` if this process can run it. */
  #arm(key: string, job: ScheduledJob): void {
    if (this.#tasks.has(`${job.plugin}:${job.task}`) && this.#canReach(job.chat)) this.#armed.set(key, job);
    else this.#armed.delete(key);
  }

  async #reload(): Promise<void> {
    const seen = new Set<string>();
    for (const job of await this.#jobs.list()) {
      const key = this.#jobs.keyOf(job.plugin, job.id);
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
      lock = await this.#jobs.lock(key, this.#leaseMs);
      if (!lock) {
        // Another process runs it now (or one that crashed held it): look again once its lease ends.
        this.#armed.set(key, { ...armedJob, runAt: this.#clock.now() + this.#leaseMs });
        return;
      }
      const job = await this.#jobs.get(key);
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
        await this.#settle(key, job, followingRun(job, this.#clock.now()));
        return;
      }
      if (late)
        this.#log.info('running a job due while the bot was down', { plugin: job.plugin, task: job.task });
      const run = { ...job, late };
      const outcome = await holdWhile(lock, this.#leaseMs, this.#clock, this.#log, run, () =>
        this.#run(run, task.handler),
      );
      if (outcome === 'interrupted' || (outcome === 'cancelled' && this.#state !== 'running')) {
        return; // stopped by shutdown or a reload: it stays due and runs at the next start or resume
      }
      if (outcome === 'failed') {
        await this.#settle(key, job, this.#retry(job, task));
        return;
      }
      await this.#settle(key, job, followingRun(job, this.#clock.now()));
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

  #retry(job: ScheduledJob, task: TaskEntry): ScheduledJob | undefined {
    const attempt = job.attempt + 1;
    if (attempt > task.retries) {
      this.#log.error('scheduled task failed, giving up', {
        plugin: job.plugin,
        task: job.task,
        attempts: attempt,
      });
      return followingRun(job, this.#clock.now());
    }
    const delay = Math.min(task.retryDelayMs * 2 ** (attempt - 1), maxRetryDelayMs);
    const retryAt = this.#clock.now() + delay;
    this.#log.warn('scheduled task failed, will retry', {
      plugin: job.plugin,
      task: job.task,
      attempt,
      inMs: delay,
    });
    const following = followingRun(job, this.#clock.now());
    // A repeating job whose next occurrence comes first simply goes on with it.
    if (following && following.runAt <= retryAt) return following;
    return { ...job, runAt: retryAt, attempt };
  }

  /** Writes what follows a run, unless the job was cancelled or replaced while it ran. */
  async #settle(key: string, ran: ScheduledJob, next: ScheduledJob | undefined): Promise<void> {
    if (this.#cancelledWhileFiring.has(key)) return;
    const current = await this.#jobs.get(key);
    if (!current || current.rev !== ran.rev) {
      if (current) this.#arm(key, current);
      return;
    }
    if (next) {
      const written = { ...next, rev: newId() };
      await this.#jobs.set(key, written);
      this.#arm(key, written);
    } else {
      await this.#jobs.delete(key);
      this.#armed.delete(key);
    }
  }
}
