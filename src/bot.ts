/**
 * The bot: adapters, bus, command router, jobs, plugins and outboxes wired together.
 *
 * A message travels: adapter → `bus.emit('message')` → router (commands, keywords, matchers) →
 * a job with its own context and AbortSignal → the plugin's handler → `ctx.reply`/`stream` →
 * the chat's outbox → the adapter the message came from.
 */
import type { Adapter, AdapterHost } from './adapter.ts';
import { watchHttp } from './backend-calls.ts';
import { type Budget, MemoryBudget } from './budget.ts';
import { EventBus, type JobEvent } from './bus.ts';
import { Channel } from './channel.ts';
import { type Clock, sleep, systemClock } from './clock.ts';
import type { CommandSpec, ParsedCommand } from './commands.ts';
import { createContext, describeFailure } from './context.ts';
import { CancelledError, ChorusError, ConfigError, cancelledBy, isCancellation } from './errors.ts';
import { type PluginEntry, PluginHost } from './host.ts';
import { type Http, missingHttp } from './http.ts';
import type { HttpMounts } from './http-routes.ts';
import { Translator } from './i18n.ts';
import { type JobRecord, type Jobs, MemoryJobs } from './jobs.ts';
import { createLogger, type Logger, Redactor } from './logger.ts';
import type { BotIdentity, ButtonPress, IncomingMessage } from './message.ts';
import type { JobOutcome, Metrics } from './metrics.ts';
import { Outbox } from './outbox.ts';
import type { CommandHandler } from './plugin.ts';
import { pipeline, type Route, type RouterDeps } from './router.ts';
import {
  type ScheduledJob,
  type ScheduledRun,
  type ScheduleFilter,
  Scheduler,
  type TaskContext,
  type TaskHandler,
} from './schedule.ts';
import type { Slots } from './slots.ts';
import { MemoryStore, namespacedStore, type Store } from './store.ts';
import { wellFormed } from './text.ts';
import { contextWith, endSpan, runIn, startSpan } from './tracing.ts';
import type { WorkQueue } from './work.ts';

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

/**
 * Where an adapter is: `down` (not started, or stopped), `starting`, `up` (connected),
 * `reconnecting` (its connection dropped after start, as the adapter reports), or `stopping` (no
 * longer taking messages, still sending).
 */
export type AdapterState = 'down' | 'starting' | 'up' | 'reconnecting' | 'stopping';

/** Whether the bot takes messages, and what it still waits for: what `/readyz` answers. */
export interface Readiness {
  readonly ready: boolean;
  /** The bot's own state. */
  readonly state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
  /** What is not ready: `adapter:<name>` and `plugin:<name>`. Empty once ready. */
  readonly waiting: readonly string[];
}

/** A job of this process, as reloads and shutdown see it. */
interface LocalJob {
  readonly event: JobEvent;
  readonly abort: JobAbort;
  /** Made when someone waits for the job to end (a reload); the job calls `end` as it ends. */
  ended?: Promise<void>;
  end?: () => void;
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

  readonly #adapters = new Map<string, Adapter>();
  readonly #outboxes = new Map<string, Outbox>();
  readonly #identities = new Map<string, BotIdentity>();
  readonly #host: PluginHost;
  readonly #scheduler: Scheduler;
  /** The running jobs, wherever they run: `/cancel` goes through it. */
  readonly #jobs: Jobs;
  /** This process's running jobs, for reloads. */
  readonly #local = new Map<string, LocalJob>();
  /** The routing pipeline, composed again when plugins add or remove steps. */
  #pipeline: { readonly version: number; readonly run: (route: Route) => Promise<void> } | undefined;
  readonly #routerDeps: RouterDeps;
  readonly #routeActions: RouteActions = {
    run: (message, plugin, name, handler, command) => this.#runJob(plugin, name, message, command, handler),
    say: (message, text) => this.#say(message, text),
    t: (key, params) => this.translator.t(this.locale, key, params),
  };
  readonly #running = new Set<Promise<void>>();
  /** What each message set off (its jobs, or a short reply), for {@link Bot.settled}. */
  readonly #work = new Map<IncomingMessage, Promise<unknown>>();
  /** Each plugin's logger, made once. */
  readonly #pluginLogs = new Map<string, Logger>();
  #resolveAccepting!: () => void;
  /** Resolves once the plugins are set up and the adapters started: messages wait for it. */
  readonly #accepting = new Promise<void>((resolve) => {
    this.#resolveAccepting = resolve;
  });
  readonly #pluginEntries: readonly PluginEntry[];
  readonly #shutdownTimeoutMs: number;
  readonly #httpServer: HttpMounts | undefined;
  readonly #queue: WorkQueue | undefined;
  /** Messages the router did not take because the bot was stopping: they stay queued. */
  readonly #refused = new WeakSet<IncomingMessage>();
  readonly #metrics: Metrics | undefined;
  readonly #adapterStates = new Map<string, AdapterState>();
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;
  #jobSeq = 0;
  /** Makes this bot's job ids its own among every process sharing one `Jobs`. */
  readonly #jobPrefix = `${crypto.randomUUID().slice(0, 8)}-`;
  /** While plugins are swapped, messages and button presses wait for this. */
  #swapping: Promise<void> | undefined;
  #openIntake: (() => void) | undefined;
  #swapsPending = 0;
  /** Reloads run one at a time. */
  #reloads: Promise<unknown> = Promise.resolve();
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
    this.#httpServer = options.httpServer;
    this.#queue = options.queue;
    this.#metrics = options.metrics;
    this.bus = new EventBus(this.log.child('bus'));
    this.store = options.store ?? new MemoryStore({ clock: this.clock });
    this.#jobs = options.jobs ?? new MemoryJobs();
    const budget = options.budget ?? new MemoryBudget({ clock: this.clock });
    this.#scheduler = new Scheduler({
      store: this.store,
      clock: this.clock,
      log: this.log.child('schedule'),
      run: (job, handler) => this.#runScheduled(job, handler),
      canReach: (chat) => this.#adapters.has(chat.adapter),
      ...options.scheduler,
    });
    this.#host = new PluginHost({
      bus: this.bus,
      log: this.log,
      clock: this.clock,
      http: this.http,
      httpFor: (plugin) => this.#httpFor(plugin),
      redactor: this.redactor,
      translator: this.translator,
      locale: this.locale,
      cancelButton: (label) => ({
        label: label ?? this.translator.t(this.locale, 'button.cancel'),
        action: cancelAction,
        style: 'danger',
      }),
      scheduler: this.#scheduler,
      store: this.store,
      slots: options.slots,
    });
    for (const adapter of options.adapters) {
      if (this.#adapters.has(adapter.name))
        throw new ConfigError([`adapters.${adapter.name}: defined twice`]);
      this.#adapters.set(adapter.name, adapter);
      this.#adapterStates.set(adapter.name, 'down');
      this.#outboxes.set(
        adapter.name,
        new Outbox(adapter, {
          clock: this.clock,
          budget,
          log: this.log.child(`outbox:${adapter.name}`),
          metrics: this.#metrics?.adapter(adapter.name),
        }),
      );
    }
    this.#routerDeps = {
      adapter: (name) => {
        const adapter = this.#adapters.get(name);
        return (
          adapter && { prefixes: adapter.commandPrefixes, botUsername: this.#identities.get(name)?.username }
        );
      },
      admits: (message) => this.#adapters.get(message.chat.adapter)?.admits?.(message) ?? true,
      command: (name) => this.#host.command(name),
      keywords: () => this.#host.keywords(),
      matchers: () => this.#host.matchers(),
      cancel: (message) => this.cancelJobs(message.chat.adapter, message.chat.id, message.sender.id),
    };
    this.bus.on('message', (message) => this.#take(message));
    this.bus.on('button', (press) => this.#press(press));
  }

  /** Validates every plugin's config, sets the plugins up, then starts the adapters. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new ChorusError('BOT_STATE', `cannot start a bot that is ${this.#state}`);
    this.#state = 'starting';
    await this.#host.start(this.#pluginEntries);
    const specs: CommandSpec[] = [
      ...this.commands().map((entry) => entry.spec),
      { name: 'cancel', description: this.translator.t(this.locale, 'cancel.description') },
    ];
    for (const adapter of this.#adapters.values()) {
      this.#adapterStates.set(adapter.name, 'starting');
      let self: BotIdentity;
      try {
        self = await adapter.start(this.#hostFor(adapter));
      } catch (error) {
        this.#adapterStates.set(adapter.name, 'down');
        throw error;
      }
      this.#adapterStates.set(adapter.name, 'up');
      this.#identities.set(adapter.name, self);
      this.log.info('adapter ready', { adapter: adapter.name, bot: self.username });
      await this.bus.emit('adapter/ready', { adapter: adapter.name, self });
      if (adapter.registerCommands) {
        await adapter
          .registerCommands(specs)
          .catch((error: unknown) =>
            this.log.warn('could not register commands', { adapter: adapter.name, error }),
          );
      }
    }
    this.#state = 'running';
    await this.#scheduler.start();
    this.#resolveAccepting();
    await this.#queue?.start({
      route: async (message) => {
        await this.bus.emit('message', message);
        return !this.#refused.has(message);
      },
      settled: (message) => this.settled(message),
    });
  }

  /**
   * Resolves once everything `message` set off (its job, or a short reply) has ended. An adapter's
   * `receive` resolves earlier, as soon as the router has taken the message.
   */
  async settled(message: IncomingMessage): Promise<void> {
    await this.#work.get(message);
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
    // Held from the call on, so a message that comes after it meets the new version.
    if (this.#swapsPending++ === 0) {
      this.#swapping = new Promise<void>((resolve) => {
        this.#openIntake = resolve;
      });
    }
    const run = this.#reloads
      .then(() => this.#reloadNow(name, entry, options.graceMs ?? 3_000))
      .finally(() => {
        if (--this.#swapsPending > 0) return;
        this.#swapping = undefined;
        this.#openIntake?.();
      });
    this.#reloads = run.catch(() => {});
    return run;
  }

  async #reloadNow(name: string, entry: PluginEntry | undefined, graceMs: number): Promise<void> {
    if (this.#state !== 'running')
      throw new ChorusError('BOT_STATE', `cannot reload a plugin of a bot that is ${this.#state}`);
    if (entry && entry.plugin.name !== name) {
      throw new ConfigError([`plugins.${name}: the plugin found is called "${entry.plugin.name}"`]);
    }
    const config = entry ? await this.#host.validate(entry) : undefined;
    this.#scheduler.pause(name);
    const commandsBefore = JSON.stringify(this.commands());
    try {
      await this.#endJobsOf(name, graceMs);
      await this.#host.replace(name, entry?.plugin, config);
    } finally {
      await this.#scheduler.resume(name);
    }
    if (JSON.stringify(this.commands()) !== commandsBefore) await this.#registerCommands();
  }

  /** Lets `plugin`'s running jobs finish for `graceMs`, then cancels the rest and waits for them. */
  async #endJobsOf(plugin: string, graceMs: number): Promise<void> {
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
    await Promise.race([allEnded, sleep(this.clock, graceMs, controller.signal).catch(() => {})]);
    controller.abort();
    const running = jobs.filter((job) => this.#local.has(job.event.jobId));
    for (const job of running)
      job.abort.abort(new CancelledError('the plugin was reloaded', { by: 'reload' }));
    if (running.length > 0) {
      this.log.info('cancelled running jobs of a reloading plugin', { plugin, jobs: running.length });
    }
    await this.#bounded(allEnded, `jobs of ${plugin}`);
  }

  /** Tells each adapter that can show a command menu what the commands are. */
  async #registerCommands(): Promise<void> {
    const specs: CommandSpec[] = [
      ...this.commands().map((entry) => entry.spec),
      { name: 'cancel', description: this.translator.t(this.locale, 'cancel.description') },
    ];
    for (const adapter of this.#adapters.values()) {
      if (!adapter.registerCommands) continue;
      await adapter
        .registerCommands(specs)
        .catch((error: unknown) =>
          this.log.warn('could not register commands', { adapter: adapter.name, error }),
        );
    }
  }

  /**
   * Whether the bot is ready to take messages: running, every adapter connected and every plugin
   * set up. While it starts and once it stops, `waiting` says what is not.
   */
  readiness(): Readiness {
    const waiting: string[] = [];
    for (const [name, state] of this.#adapterStates) if (state !== 'up') waiting.push(`adapter:${name}`);
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
    return this.#adapterStates;
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
    return this.#identities.get(adapter);
  }

  /** The outbox of an adapter (for tests and stats). */
  outbox(adapter: string): Outbox | undefined {
    return this.#outboxes.get(adapter);
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
    for (const [name, state] of this.#adapterStates)
      if (state !== 'down') this.#adapterStates.set(name, 'stopping');
    await Promise.all(
      [...this.#adapters.values()].map((adapter) =>
        adapter
          .stopReceiving?.()
          .catch((error: unknown) =>
            this.log.warn('adapter intake stop failed', { adapter: adapter.name, error }),
          ),
      ),
    );
    this.#resolveAccepting();
    // Messages not yet started stay in the queue for the other processes.
    const queueStopped = this.#queue?.stop();
    this.#state = 'stopping';
    this.log.info(drain ? 'stopping after running jobs' : 'stopping');
    this.#scheduler.halt();
    if (!drain) {
      // Only this process's jobs: on a shared Jobs (several processes), the others' go on.
      const reason = new CancelledError('the bot is shutting down', { by: 'shutdown' });
      for (const job of this.#local.values()) job.abort.abort(reason);
    }
    const jobsDone = Promise.allSettled([...this.#running]);
    if (drain) await jobsDone;
    else await this.#bounded(jobsDone, 'jobs');
    if (queueStopped) await this.#bounded(queueStopped, 'the work queue');
    await this.#bounded(this.#scheduler.idle(), 'scheduled jobs');
    await this.#bounded(Promise.all([...this.#outboxes.values()].map((outbox) => outbox.idle())), 'outboxes');
    await this.#host.stop();
    for (const adapter of this.#adapters.values()) {
      await adapter
        .stop()
        .catch((error: unknown) => this.log.warn('adapter stop failed', { adapter: adapter.name, error }));
      this.#adapterStates.set(adapter.name, 'down');
    }
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

  #hostFor(adapter: Adapter): AdapterHost {
    const counts = this.#metrics?.adapter(adapter.name);
    return {
      log: this.log.child(adapter.name),
      store: namespacedStore(this.store, `adapter:${adapter.platform}:`),
      receive: (message, options) => {
        if (counts) counts.received++;
        return this.#queue && !options?.local ? this.#queue.push(message) : this.bus.emit('message', message);
      },
      press: (press) => this.bus.emit('button', press),
      rateLimited: counts
        ? () => {
            counts.rateLimited++;
          }
        : () => {},
      connection: (up) => {
        const state = this.#adapterStates.get(adapter.name);
        // Only between start and shutdown: those own the state otherwise.
        if (up && state === 'reconnecting') {
          this.#adapterStates.set(adapter.name, 'up');
          this.log.info('adapter connected again', { adapter: adapter.name });
        } else if (!up && state === 'up') {
          this.#adapterStates.set(adapter.name, 'reconnecting');
          this.log.warn('adapter connection lost', { adapter: adapter.name });
        }
      },
      inputEnded: () => {
        void this.stop({ drain: true });
      },
      ...(this.#httpServer && { httpServer: this.#httpServer }),
      ...(this.#queue && { shared: true }),
    };
  }

  /**
   * Takes a message: waits while the bot starts (so nothing that arrives early is lost), then
   * hands it to the router. Resolves once the router has started what the message asks for; the
   * work itself goes on, tracked for shutdown and {@link Bot.settled}.
   */
  async #take(incoming: IncomingMessage): Promise<void> {
    if (this.#state === 'new' || this.#state === 'starting') await this.#accepting;
    while (this.#swapping) await this.#swapping;
    if (this.#state !== 'running') {
      this.#refused.add(incoming);
      return;
    }
    if (!this.#adapters.has(incoming.chat.adapter)) {
      this.log.warn('message from an unknown adapter', { adapter: incoming.chat.adapter });
      return;
    }
    // Half a surrogate pair breaks every encoder downstream (URLs, JSON for a backend).
    const text = wellFormed(incoming.text);
    const message = text === incoming.text ? incoming : { ...incoming, text };
    const route = new MessageRoute(message, this.#routeActions);
    try {
      await this.#route(route);
    } catch (error) {
      this.log.error('routing failed', { error });
    }
    // Kept under the message the adapter handed over, which is what callers of `settled` hold.
    const work = route.work();
    const adapter = this.#adapters.get(incoming.chat.adapter)!;
    if (!work) {
      adapter.settled?.(incoming);
      return;
    }
    this.#work.set(incoming, work);
    this.#track(work, incoming);
    if (adapter.settled) {
      const settled = () => adapter.settled!(incoming);
      work.then(settled, settled);
    }
  }

  #route(route: Route): Promise<void> {
    const version = this.#host.stepsVersion;
    if (this.#pipeline?.version !== version) {
      this.#pipeline = { version, run: pipeline(this.#routerDeps, this.#host.steps()) };
    }
    return this.#pipeline.run(route);
  }

  async #press(press: ButtonPress): Promise<void> {
    while (this.#swapping) await this.#swapping;
    if (this.#state !== 'running') return;
    if (press.action === cancelAction) {
      await this.cancelJobs(press.chat.adapter, press.chat.id, press.user.id);
      return;
    }
    const handler = this.#host.button(press.action);
    if (!handler) {
      this.log.debug('button with no handler', { action: press.action });
      return;
    }
    // Tracked like a job, so shutdown waits for it; a handler that throws is logged, not lost.
    await this.#track(
      Promise.resolve()
        .then(() => handler(press))
        .catch((error: unknown) => this.log.error('button handler failed', { action: press.action, error })),
    );
  }

  async #say(message: IncomingMessage, text: string): Promise<void> {
    await this.#outboxes
      .get(message.chat.adapter)
      ?.send(message.chat, { text, replyTo: message.replyHandle ?? message.id })
      .catch((error: unknown) => this.log.warn('reply failed', { error }));
  }

  /**
   * Keeps `promise` among the running work until it settles (shutdown waits for it); `message`'s
   * entry for {@link Bot.settled} goes with it.
   */
  #track<T>(promise: Promise<T>, message?: IncomingMessage): Promise<T> {
    const untrack = () => this.#untrack(settled, message);
    const settled: Promise<void> = promise.then(untrack, untrack);
    this.#running.add(settled);
    return promise;
  }

  #untrack(settled: Promise<void>, message: IncomingMessage | undefined): void {
    this.#running.delete(settled);
    if (message) this.#work.delete(message);
  }

  /** Runs a due scheduled job as a job bound to its chat; plain messages, no reply, no failure note. */
  #runScheduled(
    job: ScheduledRun,
    handler: TaskHandler,
  ): Promise<'done' | 'failed' | 'cancelled' | 'interrupted'> {
    const message: IncomingMessage = {
      id: '',
      chat: job.chat,
      sender: job.user ?? { id: '', name: '' },
      text: '',
      mentionsBot: false,
      images: [],
      date: this.clock.now(),
    };
    return this.#track(
      this.#runJob(job.plugin, job.task, message, undefined, (ctx) => handler(ctx as TaskContext), {
        standalone: true,
        scheduled: job,
      }).then((outcome) => (outcome === 'reloaded' ? 'interrupted' : outcome)),
    );
  }

  async #runJob(
    plugin: string,
    command: string,
    message: IncomingMessage,
    parsed: ParsedCommand | undefined,
    handler: CommandHandler,
    options: { readonly standalone?: boolean; readonly scheduled?: ScheduledRun } = {},
  ): Promise<'done' | 'failed' | 'cancelled' | 'reloaded'> {
    const adapter = this.#adapters.get(message.chat.adapter)!;
    const jobId = this.#jobPrefix + ++this.#jobSeq;
    const abort = new JobAbort();
    const log = this.#pluginLog(plugin);
    const event: JobEvent = { jobId, plugin, command, chat: message.chat, userId: message.sender.id };
    const ctx = createContext({
      jobId,
      plugin,
      message,
      command: parsed,
      abort,
      bot: this.#identities.get(adapter.name) ?? { id: '', username: '', name: '' },
      channel: new Channel({
        outbox: this.#outboxes.get(adapter.name)!,
        chat: message.chat,
        // A scheduled run answers no message: its replies are plain messages in the chat.
        replyTo: options.standalone ? undefined : (message.replyHandle ?? message.id),
        limits: adapter.limits,
        drafts: adapter.sendDraft !== undefined && message.chat.kind === 'private',
        plugin,
      }),
      canType: adapter.sendTyping !== undefined,
      images: adapter,
      translator: this.translator,
      redactor: this.redactor,
      locale: this.locale,
      log,
      clock: this.clock,
      schedule: this.#scheduler,
      ...(options.scheduled && { scheduled: options.scheduled }),
    });
    const local: LocalJob = { event, abort };
    this.#local.set(jobId, local);
    let outcome: 'done' | 'failed' | 'cancelled' = 'done';
    let reason: unknown;
    const counts = this.#metrics?.job(plugin, command);
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
      const added = this.#jobs.add(event, abort.cancel);
      if (added) await added;
      const startedAt = this.clock.now();
      if (debug) log.debug('job started', { job: jobId, command, adapter: adapter.name });
      if (this.bus.listenerCount('job/start') > 0) await this.bus.emit('job/start', event);
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
        await this.#say(
          message,
          this.translator.t(this.locale, 'job.failed', {
            reason: describeFailure(reason, this.redactor, (key, params) =>
              this.translator.t(this.locale, key, params),
            ),
          }),
        );
      }
      const removed = this.#jobs.remove(jobId);
      if (removed) await removed;
      const ms = this.clock.now() - startedAt;
      if (counts) {
        counts[outcome === 'done' ? 'ok' : outcome]++;
        counts.duration.observe(ms / 1000);
      }
      if (debug) log.debug('job ended', { job: jobId, command, outcome, ms });
      if (this.bus.listenerCount('job/end') > 0) await this.bus.emit('job/end', { ...event, outcome, ms });
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

/** Creates a bot. Call `start()` to run it. */
export function createBot(options: BotOptions): Bot {
  return new Bot(options);
}

/** What a route can start: a job, or a short reply of the core's own. */
interface RouteActions {
  run(
    message: IncomingMessage,
    plugin: string,
    name: string,
    handler: CommandHandler,
    command: ParsedCommand | undefined,
  ): Promise<unknown>;
  say(message: IncomingMessage, text: string): Promise<unknown>;
  t(key: string, params?: Readonly<Record<string, string | number>>): string;
}

/** A message on its way through the routing steps; what they start is its work. */
class MessageRoute implements Route {
  command: ParsedCommand | undefined = undefined;
  #work: Promise<unknown>[] | undefined;

  constructor(
    readonly message: IncomingMessage,
    private readonly actions: RouteActions,
  ) {}

  run(plugin: string, name: string, handler: CommandHandler, command?: ParsedCommand): void {
    this.#add(this.actions.run(this.message, plugin, name, handler, command));
  }

  say(text: string): void {
    this.#add(this.actions.say(this.message, text));
  }

  #add(work: Promise<unknown>): void {
    if (this.#work) this.#work.push(work);
    else this.#work = [work];
  }

  t(key: string, params?: Readonly<Record<string, string | number>>): string {
    return this.actions.t(key, params);
  }

  /** Everything the steps started, as one promise; `undefined` when they started nothing. */
  work(): Promise<unknown> | undefined {
    if (!this.#work) return undefined;
    return this.#work.length === 1 ? this.#work[0] : Promise.all(this.#work);
  }
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
