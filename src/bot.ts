/**
 * The bot: adapters, bus, command router, jobs, plugins and outboxes wired together.
 *
 * A message travels: adapter (its host made by `AdapterSet`) → `bus.emit('message')` → `Intake`
 * (waits while the bot starts or a plugin is swapped) → the router (commands, keywords, matchers)
 * → a job (`JobRunner`) with its own context and AbortSignal → the plugin's handler →
 * `ctx.reply`/`stream` → the chat's outbox → the adapter the message came from. This file
 * composes those parts and owns the bot's life: start, plugin reloads, shutdown.
 */
import type { Adapter } from './adapter.ts';
import { AdapterSet, type AdapterState } from './adapter-set.ts';
import { watchHttp } from './backend-calls.ts';
import { type Budget, MemoryBudget } from './budget.ts';
import { EventBus } from './bus.ts';
import { type Clock, sleep, systemClock } from './clock.ts';
import type { CommandSpec } from './commands.ts';
import { CancelledError, ChorusError } from './errors.ts';
import { type PluginEntry, PluginHost } from './host.ts';
import { type Http, missingHttp } from './http.ts';
import type { HttpMounts } from './http-routes.ts';
import { Translator } from './i18n.ts';
import { Intake } from './intake.ts';
import { JobRunner } from './job-runner.ts';
import { type JobRecord, type Jobs, MemoryJobs } from './jobs.ts';
import { createLogger, type Logger, Redactor } from './logger.ts';
import type { BotIdentity, IncomingMessage } from './message.ts';
import type { Metrics } from './metrics.ts';
import type { Outbox } from './outbox.ts';
import { PluginReloader } from './reload.ts';
import { Scheduler } from './schedule.ts';
import type { ScheduledJob, ScheduleFilter } from './schedule-jobs.ts';
import type { Slots } from './slots.ts';
import { MemoryStore, type Store } from './store.ts';
import type { WorkQueue } from './work.ts';

export type { AdapterState } from './adapter-set.ts';
export type { PluginEntry } from './host.ts';

/** Options of {@link createBot}. */
export interface BotOptions {
  readonly adapters: readonly Adapter[];
  readonly plugins?: readonly PluginEntry[];
  /** Locale of the bot's own strings. Default `en`. */
  readonly locale?: string;
  readonly log?: Logger;
  /** Secrets to keep out of logs and messages. */
  readonly redactor?: Redactor;
  readonly clock?: Clock;
  /** The HTTP client plugins get as `ctx.http` (the runtime's `HttpClient`). Default: one that refuses every request. */
  readonly http?: Http;
  /** How long shutdown waits for cancelled jobs and queued messages. Default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /**
   * Where scheduled jobs, plugins' state (`ctx.store`) and adapters' state (`host.store`) are kept.
   * Default: in memory (lost on exit). The bot does not close it.
   */
  readonly store?: Store;
  /** `pollMs`: re-read the store for jobs other processes scheduled (several bots on one store). */
  readonly scheduler?: { readonly pollMs?: number; readonly leaseMs?: number };
  /** Where the running jobs are known, so `/cancel` reaches them. Default: this process's memory. */
  readonly jobs?: Jobs;
  /** Where the send budgets are kept, shared by every adapter's outbox. Default: this process's memory. */
  readonly budget?: Budget;
  /**
   * Slots shared by every process of the bot (Redis), handed to plugins as `ctx.slots` for their
   * limiters. Default: none, and each limiter counts in its own process.
   */
  readonly slots?: Slots;
  /** The process's HTTP server, given to adapters for their webhooks. The bot does not close it. */
  readonly httpServer?: HttpMounts;
  /**
   * Where incoming messages wait to be handled when several processes make one bot (Redis). Set,
   * adapters' messages go to it, and this process handles its share of it. Default: none, every
   * message is handled by the process that received it.
   */
  readonly queue?: WorkQueue;
  /**
   * Where messages, sends, jobs and backend requests are counted (the runtime serves them as
   * Prometheus metrics). Default: nothing is counted.
   */
  readonly metrics?: Metrics;
}

/** Whether the bot takes messages, and what it still waits for: what `/readyz` answers. */
export interface Readiness {
  readonly ready: boolean;
  /** The bot's own state. */
  readonly state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
  /** What is not ready: `adapter:<name>` and `plugin:<name>`. Empty once ready. */
  readonly waiting: readonly string[];
}

/** Options of {@link Bot.reloadPlugin}. */
export interface ReloadOptions {
  /** How long the plugin's running jobs may take to finish before they are cancelled. Default 3 s. */
  readonly graceMs?: number;
}

/** The name of the core's own button action that cancels the presser's jobs. */
export const cancelAction = 'chorus:cancel';

/** A running bot. */
export class Bot {
  readonly bus: EventBus;
  readonly log: Logger;
  readonly clock: Clock;
  readonly http: Http;
  readonly translator = new Translator();
  readonly redactor: Redactor;
  readonly locale: string;
  readonly store: Store;

  readonly #adapters: AdapterSet;
  readonly #host: PluginHost;
  readonly #scheduler: Scheduler;
  readonly #jobs: JobRunner;
  readonly #intake: Intake;
  readonly #reloader: PluginReloader;
  /** Each plugin's logger, made once. */
  readonly #pluginLogs = new Map<string, Logger>();
  #resolveAccepting!: () => void;
  /** Resolves once the plugins are set up and the adapters started: messages wait for it. */
  readonly #accepting = new Promise<void>((resolve) => {
    this.#resolveAccepting = resolve;
  });
  readonly #pluginEntries: readonly PluginEntry[];
  readonly #shutdownTimeoutMs: number;
  readonly #queue: WorkQueue | undefined;
  readonly #metrics: Metrics | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;
  #resolveStopped!: () => void;
  /** Resolves once the bot has stopped, however the stop began. */
  readonly stopped = new Promise<void>((resolve) => {
    this.#resolveStopped = resolve;
  });

  constructor(options: BotOptions) {
    this.redactor = options.redactor ?? new Redactor();
    this.log = options.log ?? createLogger({ redactor: this.redactor });
    this.clock = options.clock ?? systemClock;
    this.http = options.http ?? missingHttp;
    this.locale = options.locale ?? 'en';
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.#pluginEntries = options.plugins ?? [];
    this.#queue = options.queue;
    this.#metrics = options.metrics;
    this.bus = new EventBus(this.log.child('bus'));
    this.store = options.store ?? new MemoryStore({ clock: this.clock });
    this.#scheduler = new Scheduler({
      store: this.store,
      clock: this.clock,
      log: this.log.child('schedule'),
      run: (job, handler) => this.#jobs.runScheduled(job, handler),
      canReach: (chat) => this.#adapters.has(chat.adapter),
      ...options.scheduler,
    });
    // What every part below works with.
    const { bus, log, clock, translator, redactor, locale } = this;
    const parts = { bus, log, clock, translator, redactor, locale };
    this.#host = new PluginHost({
      ...parts,
      http: this.http,
      httpFor: (plugin) => this.#httpFor(plugin),
      cancelButton: (label) => ({
        label: label ?? this.translator.t(this.locale, 'button.cancel'),
        action: cancelAction,
        style: 'danger',
      }),
      scheduler: this.#scheduler,
      store: this.store,
      slots: options.slots,
    });
    this.#adapters = new AdapterSet(options.adapters, {
      ...parts,
      budget: options.budget ?? new MemoryBudget({ clock: this.clock }),
      store: this.store,
      metrics: this.#metrics,
      httpServer: options.httpServer,
      queue: this.#queue,
      commands: () => [
        ...this.commands().map((entry) => entry.spec),
        { name: 'cancel', description: translator.t(locale, 'cancel.description') },
      ],
      inputEnded: () => {
        void this.stop({ drain: true });
      },
    });
    this.#jobs = new JobRunner({
      jobs: options.jobs ?? new MemoryJobs(),
      ...parts,
      adapters: this.#adapters,
      scheduler: this.#scheduler,
      metrics: this.#metrics,
      pluginLog: (plugin) => this.#pluginLog(plugin),
      bounded: (promise, what) => this.#bounded(promise, what),
    });
    this.#intake = new Intake({
      ...parts,
      adapters: this.#adapters,
      plugins: this.#host,
      jobs: this.#jobs,
      state: () => this.#state,
      accepting: this.#accepting,
      cancelAction,
      cancel: (adapter, chatId, userId) => this.cancelJobs(adapter, chatId, userId),
    });
    this.#reloader = new PluginReloader({
      plugins: this.#host,
      intake: this.#intake,
      jobs: this.#jobs,
      scheduler: this.#scheduler,
      adapters: this.#adapters,
      state: () => this.#state,
    });
    this.bus.on('message', (message) => this.#intake.take(message));
    this.bus.on('button', (press) => this.#intake.press(press));
  }

  /** Validates every plugin's config, sets the plugins up, then starts the adapters. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new ChorusError('BOT_STATE', `cannot start a bot that is ${this.#state}`);
    this.#state = 'starting';
    await this.#host.start(this.#pluginEntries);
    await this.#adapters.start();
    this.#state = 'running';
    await this.#scheduler.start();
    this.#resolveAccepting();
    await this.#queue?.start({
      route: async (message) => {
        await this.bus.emit('message', message);
        return !this.#intake.refused(message);
      },
      settled: (message) => this.settled(message),
    });
  }

  /**
   * Resolves once everything `message` set off (its job, or a short reply) has ended. An adapter's
   * `receive` resolves earlier, as soon as the router has taken the message.
   */
  settled(message: IncomingMessage): Promise<void> {
    return this.#jobs.settled(message);
  }

  /**
   * Stops the bot: takes no more messages; with `drain`, lets running jobs finish, otherwise aborts
   * them (their status messages are finished as stopped); flushes the outboxes; stops plugins and
   * adapters. Calling it again returns the same promise.
   */
  stop(options: { drain?: boolean } = {}): Promise<void> {
    this.#stopping ??= this.#shutdown(options.drain ?? false);
    return this.#stopping;
  }

  /**
   * Swaps the running plugin called `name` for `entry` (a new version of its code or config), adds
   * it if none runs, or stops it when `entry` is undefined; the adapters go on. The config is
   * checked first: a bad one changes nothing. While the swap runs, new messages wait (none is lost);
   * the plugin's running jobs get `graceMs` to finish, then are cancelled ("Stopped: the plugin was
   * reloaded."), and its scheduled jobs wait and run with the new version. When the new setup
   * throws, the old version is set up again and the error is thrown.
   */
  reloadPlugin(name: string, entry: PluginEntry | undefined, options: ReloadOptions = {}): Promise<void> {
    return this.#reloader.reload(name, entry, options.graceMs ?? 3_000);
  }

  /**
   * Whether the bot is ready to take messages: running, every adapter connected and every plugin
   * set up. While it starts and once it stops, `waiting` says what is not.
   */
  readiness(): Readiness {
    const waiting: string[] = [];
    for (const [name, state] of this.#adapters.states()) if (state !== 'up') waiting.push(`adapter:${name}`);
    if (this.#state === 'new' || this.#state === 'starting') {
      for (const { plugin } of this.#pluginEntries)
        if (!this.#host.has(plugin.name)) waiting.push(`plugin:${plugin.name}`);
    }
    // Shutdown first stops the adapters' intake while the bot still runs what came before.
    const state = this.#stopping && this.#state === 'running' ? 'stopping' : this.#state;
    return { ready: state === 'running' && waiting.length === 0, state, waiting };
  }

  /** Where each adapter is, by name. */
  adapterStates(): ReadonlyMap<string, AdapterState> {
    return this.#adapters.states();
  }

  /** The jobs running now. */
  jobs(): Promise<readonly JobRecord[]> {
    return this.#jobs.list();
  }

  /** The scheduled jobs in the store (of every plugin, loaded or not), soonest first. */
  scheduled(filter: ScheduleFilter & { readonly plugin?: string } = {}): Promise<ScheduledJob[]> {
    return this.#scheduler.list(filter);
  }

  /** Every registered command, with its plugin. */
  commands(): readonly { readonly plugin: string; readonly spec: CommandSpec }[] {
    return this.#host.commands();
  }

  /** The bot's identity on an adapter, once started. */
  identity(adapter: string): BotIdentity | undefined {
    return this.#adapters.identity(adapter);
  }

  /** The outbox of an adapter (for tests and stats). */
  outbox(adapter: string): Outbox | undefined {
    return this.#adapters.outbox(adapter);
  }

  /** Cancels `userId`'s jobs in a chat, wherever they run. Resolves with how many there were. */
  cancelJobs(
    adapter: string,
    chatId: string,
    userId: string,
    reason = new CancelledError('cancelled by user'),
  ): Promise<number> {
    return this.#jobs.cancel({ adapter, chatId, userId }, reason);
  }

  async #shutdown(drain: boolean): Promise<void> {
    // Intake stops first: an update that arrives from now on stays with the platform, unconfirmed.
    await this.#adapters.stopReceiving();
    this.#resolveAccepting();
    // Messages not yet started stay in the queue for the other processes.
    const queueStopped = this.#queue?.stop();
    this.#state = 'stopping';
    this.log.info(drain ? 'stopping after running jobs' : 'stopping');
    this.#scheduler.halt();
    await this.#jobs.stop(drain);
    if (queueStopped) await this.#bounded(queueStopped, 'the work queue');
    await this.#bounded(this.#scheduler.idle(), 'scheduled jobs');
    await this.#bounded(this.#adapters.idle(), 'outboxes');
    await this.#host.stop();
    await this.#adapters.stop();
    await this.http.close().catch(() => {});
    this.#state = 'stopped';
    this.log.info('stopped');
    this.#resolveStopped();
  }

  async #bounded(promise: Promise<unknown>, what: string): Promise<void> {
    const controller = new AbortController();
    const timedOut = await Promise.race([
      promise.then(() => false),
      sleep(this.clock, this.#shutdownTimeoutMs, controller.signal).then(() => true),
    ]);
    controller.abort();
    if (timedOut) this.log.warn(`shutdown: gave up waiting for ${what}`, { ms: this.#shutdownTimeoutMs });
  }

  /** A plugin's HTTP client: the bot's, with each backend request measured and traced. */
  #httpFor(plugin: string): Http {
    return watchHttp(this.http, {
      plugin,
      clock: this.clock,
      metrics: this.#metrics,
      log: this.#pluginLog(plugin),
    });
  }

  #pluginLog(plugin: string): Logger {
    let log = this.#pluginLogs.get(plugin);
    if (!log) {
      log = this.log.child(plugin);
      this.#pluginLogs.set(plugin, log);
    }
    return log;
  }
}

/** Creates a bot. Call `start()` to run it. */
export function createBot(options: BotOptions): Bot {
  return new Bot(options);
}
