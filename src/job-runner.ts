/**
 * The job runner: runs a plugin's handler as a job (registered with the `Jobs` seam, a `Context`
 * bound to the chat, the user and the job's cancellation, counted, traced, its status messages
 * finished whatever happens), and keeps track of the work that is still running, so that
 * `/cancel`, a plugin's reload, `Bot.settled` and shutdown can each reach what they need.
 */
import type { AdapterSet } from './adapter-set.ts';
import type { EventBus, JobEvent } from './bus.ts';
import { Channel } from './channel.ts';
import { type Clock, sleep } from './clock.ts';
import type { ParsedCommand } from './commands.ts';
import { createContext, describeFailure } from './context.ts';
import { CancelledError, cancelledBy, isCancellation } from './errors.ts';
import type { Translator } from './i18n.ts';
import type { JobFilter, JobRecord, Jobs } from './jobs.ts';
import type { Logger, Redactor } from './logger.ts';
import type { ButtonPress, ChatAddress, IncomingMessage, UserRef } from './message.ts';
import type { JobOutcome, Metrics } from './metrics.ts';
import type { ButtonHandler, CommandHandler } from './plugin.ts';
import type { Scheduler } from './schedule.ts';
import type { ScheduledRun, TaskContext, TaskHandler } from './schedule-jobs.ts';
import { contextWith, endSpan, runIn, startSpan } from './tracing.ts';

/** What the {@link JobRunner} works with: the bot's parts a job touches. */
export interface JobRunnerOptions {
  /** The running jobs, wherever they run: `/cancel` goes through it. */
  readonly jobs: Jobs;
  /** Where a job's chat is: its adapter, outbox and the bot's identity there. */
  readonly adapters: AdapterSet;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly clock: Clock;
  readonly translator: Translator;
  readonly redactor: Redactor;
  readonly locale: string;
  /** What a job's context schedules with (`ctx.schedule`). */
  readonly scheduler: Scheduler;
  readonly metrics: Metrics | undefined;
  /** Each plugin's logger. */
  readonly pluginLog: (plugin: string) => Logger;
  /** Waits for `promise` at most the bot's shutdown timeout, saying so in the log when it gives up. */
  readonly bounded: (promise: Promise<unknown>, what: string) => Promise<void>;
}

/** How a job ended; `reloaded` is a cancel by its plugin's reload. */
export type RunOutcome = 'done' | 'failed' | 'cancelled' | 'reloaded';

/** A job of this process, as reloads and shutdown see it. */
interface LocalJob {
  readonly event: JobEvent;
  readonly abort: JobAbort;
  /** Made when someone waits for the job to end (a reload); the job calls `end` as it ends. */
  ended?: Promise<void>;
  end?: () => void;
}

/** Runs jobs and tracks the work still running. */
export class JobRunner {
  readonly #o: JobRunnerOptions;
  /** This process's running jobs, for reloads and shutdown. */
  readonly #local = new Map<string, LocalJob>();
  /** Everything still running (jobs, short replies, button handlers): shutdown waits for it. */
  readonly #running = new Set<Promise<void>>();
  /** What each message set off (its jobs, or a short reply), for `Bot.settled`. */
  readonly #work = new Map<IncomingMessage, Promise<unknown>>();
  #jobSeq = 0;
  /** Makes this bot's job ids its own among every process sharing one `Jobs`. */
  readonly #jobPrefix = `${crypto.randomUUID().slice(0, 8)}-`;

  constructor(options: JobRunnerOptions) {
    this.#o = options;
  }

  /**
   * Keeps `promise` among the running work until it settles (shutdown waits for it); with
   * `message`, it is also what {@link JobRunner.settled} waits for until then.
   */
  track<T>(promise: Promise<T>, message?: IncomingMessage): Promise<T> {
    if (message) this.#work.set(message, promise);
    const untrack = () => this.#untrack(settled, message);
    const settled: Promise<void> = promise.then(untrack, untrack);
    this.#running.add(settled);
    return promise;
  }

  #untrack(settled: Promise<void>, message: IncomingMessage | undefined): void {
    this.#running.delete(settled);
    if (message) this.#work.delete(message);
  }

  /** Resolves once the work `message` set off has ended (at once when there is none). */
  async settled(message: IncomingMessage): Promise<void> {
    await this.#work.get(message);
  }

  /** The running jobs, wherever they run. */
  list(): Promise<readonly JobRecord[]> {
    return this.#o.jobs.list();
  }

  /** Cancels the jobs that match, wherever they run. Resolves with how many there were. */
  cancel(filter: JobFilter, reason: unknown): Promise<number> {
    return this.#o.jobs.cancel(filter, reason);
  }

  /** Lets `plugin`'s running jobs finish for `graceMs`, then cancels the rest and waits for them. */
  async endJobsOf(plugin: string, graceMs: number): Promise<void> {
    const jobs = [...this.#local.values()].filter((job) => job.event.plugin === plugin);
    if (jobs.length === 0) return;
    const allEnded = Promise.all(
      jobs.map((job) => {
        job.ended ??= new Promise<void>((resolve) => {
          job.end = resolve;
        });
        return job.ended;
      }),
    );
    const controller = new AbortController();
    await Promise.race([allEnded, sleep(this.#o.clock, graceMs, controller.signal).catch(() => {})]);
    controller.abort();
    const running = jobs.filter((job) => this.#local.has(job.event.jobId));
    for (const job of running)
      job.abort.abort(new CancelledError('the plugin was reloaded', { by: 'reload' }));
    if (running.length > 0) {
      this.#o.log.info('cancelled running jobs of a reloading plugin', { plugin, jobs: running.length });
    }
    await this.#o.bounded(allEnded, `jobs of ${plugin}`);
  }

  /**
   * Waits for the running work to end: with `drain`, as long as it takes; otherwise this
   * process's jobs are cancelled first and the wait is bounded. On a shared `Jobs` (several
   * processes), the other processes' jobs go on.
   */
  stop(drain: boolean): Promise<unknown> {
    if (!drain) {
      const reason = new CancelledError('the bot is shutting down', { by: 'shutdown' });
      for (const job of this.#local.values()) job.abort.abort(reason);
    }
    const jobsDone = Promise.allSettled([...this.#running]);
    return drain ? jobsDone : this.#o.bounded(jobsDone, 'jobs');
  }

  /** Runs a due scheduled job as a job bound to its chat; plain messages, no reply, no failure note. */
  runScheduled(
    job: ScheduledRun,
    handler: TaskHandler,
  ): Promise<'done' | 'failed' | 'cancelled' | 'interrupted'> {
    const message = this.#standIn('', job.chat, job.user ?? { id: '', name: '' });
    return this.track(
      this.run(job.plugin, job.task, message, undefined, (ctx) => handler(ctx as TaskContext), {
        standalone: true,
        scheduled: job,
      }).then((outcome) => (outcome === 'reloaded' ? 'interrupted' : outcome)),
    );
  }

  /**
   * Runs a button's handler as a job of `plugin` answering the press: in the press's chat, for
   * the user who pressed, replying to the message that carried the button.
   */
  runPress(plugin: string, press: ButtonPress, handler: ButtonHandler): Promise<RunOutcome> {
    const message = this.#standIn(press.messageId, press.chat, press.user);
    return this.track(
      this.run(plugin, `button ${press.action}`, message, undefined, (ctx) => handler(press, ctx)),
    );
  }

  /** The message a job answers when no message started it: a scheduled run, a button press. */
  #standIn(id: string, chat: ChatAddress, sender: UserRef): IncomingMessage {
    return { id, chat, sender, text: '', mentionsBot: false, images: [], date: this.#o.clock.now() };
  }

  /**
   * Runs `handler` as a job of `plugin` answering `message` in its chat. A failure with no status
   * message to show it gets a note in the chat, but for a `standalone` job (a scheduled run, which
   * answers no message). The caller tracks the returned promise.
   */
  async run(
    plugin: string,
    command: string,
    message: IncomingMessage,
    parsed: ParsedCommand | undefined,
    handler: CommandHandler,
    options: { readonly standalone?: boolean; readonly scheduled?: ScheduledRun } = {},
  ): Promise<RunOutcome> {
    const o = this.#o;
    const adapter = o.adapters.get(message.chat.adapter)!;
    const jobId = this.#jobPrefix + ++this.#jobSeq;
    const abort = new JobAbort();
    const log = o.pluginLog(plugin);
    const event: JobEvent = { jobId, plugin, command, chat: message.chat, userId: message.sender.id };
    const ctx = createContext({
      jobId,
      plugin,
      message,
      command: parsed,
      abort,
      bot: o.adapters.identity(adapter.name) ?? { id: '', username: '', name: '' },
      channel: new Channel({
        outbox: o.adapters.outbox(adapter.name)!,
        chat: message.chat,
        // A scheduled run answers no message: its replies are plain messages in the chat.
        replyTo: options.standalone ? undefined : (message.replyHandle ?? message.id),
        limits: adapter.limits,
        drafts: adapter.sendDraft !== undefined && message.chat.kind === 'private',
        plugin,
      }),
      canType: adapter.sendTyping !== undefined,
      images: adapter,
      translator: o.translator,
      redactor: o.redactor,
      locale: o.locale,
      log,
      clock: o.clock,
      schedule: o.scheduler,
      ...(options.scheduled && { scheduled: options.scheduled }),
    });
    const local: LocalJob = { event, abort };
    this.#local.set(jobId, local);
    let outcome: 'done' | 'failed' | 'cancelled' = 'done';
    let reason: unknown;
    const counts = o.metrics?.job(plugin, command);
    const debug = log.enabled?.('debug') ?? true;
    const span = startSpan(`job ${plugin}/${command}`);
    if (span.isRecording()) {
      span.setAttributes({
        'chorus.plugin': plugin,
        'chorus.command': command,
        'chorus.adapter': adapter.name,
        'chorus.platform': adapter.platform,
        'chorus.chat.kind': message.chat.kind,
        'chorus.job.scheduled': options.scheduled !== undefined,
      });
    }
    const traced = contextWith(span);
    try {
      const added = o.jobs.add(event, abort.cancel);
      if (added) await added;
      const startedAt = o.clock.now();
      if (debug) log.debug('job started', { job: jobId, command, adapter: adapter.name });
      if (o.bus.listenerCount('job/start') > 0) await o.bus.emit('job/start', event);
      try {
        await (traced ? runIn(traced, () => handler(ctx)) : handler(ctx));
        if (abort.aborted) outcome = 'cancelled';
      } catch (error) {
        if (abort.aborted || isCancellation(error)) {
          outcome = 'cancelled';
        } else {
          outcome = 'failed';
          log.error('job failed', { command, error });
        }
        reason = abort.aborted ? abort.reason : error;
      }
      const finishing = ctx.finishAll(outcome, reason);
      const finished = typeof finishing === 'number' ? finishing : await finishing;
      if (outcome === 'failed' && finished === 0 && !options.standalone) {
        await o.adapters.say(
          message,
          o.translator.t(o.locale, 'job.failed', {
            reason: describeFailure(reason, o.redactor, (key, params) =>
              o.translator.t(o.locale, key, params),
            ),
          }),
        );
      }
      const removed = o.jobs.remove(jobId);
      if (removed) await removed;
      const ms = o.clock.now() - startedAt;
      if (counts) {
        counts[outcome === 'done' ? 'ok' : outcome]++;
        counts.duration.observe(ms / 1000);
      }
      if (debug) log.debug('job ended', { job: jobId, command, outcome, ms });
      if (o.bus.listenerCount('job/end') > 0) await o.bus.emit('job/end', { ...event, outcome, ms });
    } finally {
      this.#local.delete(jobId);
      local.end?.();
      endSpan(span, jobOutcome(outcome), 'chorus.job.outcome');
    }
    const reloaded = outcome === 'cancelled' && cancelledBy(reason) === 'reload';
    return reloaded ? 'reloaded' : outcome;
  }
}

function jobOutcome(outcome: 'done' | 'failed' | 'cancelled'): JobOutcome {
  return outcome === 'done' ? 'ok' : outcome;
}

/**
 * A job's cancellation, with its AbortSignal made only when someone asks for it: most jobs never
 * look, and an AbortController is among the dearest things a job would otherwise make.
 */
class JobAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts the job (what the Jobs seam calls on a cancel). */
  readonly cancel = this.abort.bind(this);

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
