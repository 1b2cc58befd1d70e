/**
 * The intake: how a message and a button press get from the bus to what handles them. A message
 * waits while the bot starts or a plugin is swapped, has its text cleaned, and goes through the
 * routing pipeline (`src/router.ts`); what the routing steps start (a job, a short reply) is
 * tracked by the job runner, and the adapter hears once it has all ended.
 */
import type { AdapterSet } from './adapter-set.ts';
import type { ParsedCommand } from './commands.ts';
import type { PluginHost } from './host.ts';
import type { Translator } from './i18n.ts';
import type { JobRunner } from './job-runner.ts';
import type { Logger } from './logger.ts';
import type { ButtonPress, IncomingMessage } from './message.ts';
import type { CommandHandler } from './plugin.ts';
import { pipeline, type Route, type RouterDeps } from './router.ts';
import { wellFormed } from './text.ts';

/** What the {@link Intake} hands messages and presses to, and asks of the bot. */
export interface IntakeOptions {
  readonly log: Logger;
  readonly adapters: AdapterSet;
  /** The plugins: their commands, triggers, matchers, routing steps and buttons. */
  readonly plugins: PluginHost;
  readonly jobs: JobRunner;
  readonly translator: Translator;
  readonly locale: string;
  /** The bot's state: messages wait while it starts, and are refused unless it runs. */
  readonly state: () => 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
  /** Resolves once the bot has started, or begun to stop: messages that come earlier wait for it. */
  readonly accepting: Promise<void>;
  /** The name of the core's own button action that cancels the presser's jobs. */
  readonly cancelAction: string;
  /** Cancels `userId`'s jobs in a chat (`/cancel`, the Cancel button); resolves with how many. */
  readonly cancel: (adapter: string, chatId: string, userId: string) => Promise<number>;
}

/** Takes messages and button presses from the bus. */
export class Intake {
  readonly #o: IntakeOptions;
  readonly #routerDeps: RouterDeps;
  readonly #actions: RouteActions;
  /** The routing pipeline, composed again when plugins add or remove steps. */
  #pipeline: { readonly version: number; readonly run: (route: Route) => Promise<void> } | undefined;
  /** Messages the router did not take because the bot was stopping: they stay queued. */
  readonly #refused = new WeakSet<IncomingMessage>();
  /** While plugins are swapped, messages and button presses wait for this. */
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;
  #holds = 0;

  constructor(options: IntakeOptions) {
    this.#o = options;
    const { adapters, plugins, jobs, translator, locale } = options;
    this.#routerDeps = {
      adapter: (name) => {
        const adapter = adapters.get(name);
        return (
          adapter && { prefixes: adapter.commandPrefixes, botUsername: adapters.identity(name)?.username }
        );
      },
      admits: (message) => adapters.get(message.chat.adapter)?.admits?.(message) ?? true,
      command: (name) => plugins.command(name),
      keywords: () => plugins.keywords(),
      matchers: () => plugins.matchers(),
      cancel: (message) => options.cancel(message.chat.adapter, message.chat.id, message.sender.id),
    };
    this.#actions = {
      run: (message, plugin, name, handler, command) => jobs.run(plugin, name, message, command, handler),
      say: (message, text) => adapters.say(message, text),
      t: (key, params) => translator.t(locale, key, params),
    };
  }

  /**
   * Holds messages and button presses from now on, until every hold is released: what a plugin's
   * reload takes, so a message that comes after the call meets the new version. Returns the
   * release; call it once.
   */
  hold(): () => void {
    if (this.#holds++ === 0) {
      this.#held = new Promise<void>((resolve) => {
        this.#release = resolve;
      });
    }
    return () => {
      if (--this.#holds > 0) return;
      this.#held = undefined;
      this.#release?.();
    };
  }

  /** Whether the router refused `message` because the bot was not running (it stays queued). */
  refused(message: IncomingMessage): boolean {
    return this.#refused.has(message);
  }

  /**
   * Takes a message: waits while the bot starts (so nothing that arrives early is lost), then
   * hands it to the router. Resolves once the router has started what the message asks for; the
   * work itself goes on, tracked for shutdown and `Bot.settled`.
   */
  async take(incoming: IncomingMessage): Promise<void> {
    const { state, adapters, log } = this.#o;
    if (state() === 'new' || state() === 'starting') await this.#o.accepting;
    while (this.#held) await this.#held;
    if (state() !== 'running') {
      this.#refused.add(incoming);
      return;
    }
    if (!adapters.has(incoming.chat.adapter)) {
      log.warn('message from an unknown adapter', { adapter: incoming.chat.adapter });
      return;
    }
    // Half a surrogate pair breaks every encoder downstream (URLs, JSON for a backend).
    const text = wellFormed(incoming.text);
    const message = text === incoming.text ? incoming : { ...incoming, text };
    const route = new MessageRoute(message, this.#actions);
    try {
      await this.#route(route);
    } catch (error) {
      log.error('routing failed', { error });
    }
    // Kept under the message the adapter handed over, which is what callers of `settled` hold.
    const work = route.work();
    if (work) this.#o.jobs.track(work, incoming);
    adapters.settle(incoming, work);
  }

  #route(route: Route): Promise<void> {
    const { plugins } = this.#o;
    const version = plugins.stepsVersion;
    if (this.#pipeline?.version !== version) {
      this.#pipeline = { version, run: pipeline(this.#routerDeps, plugins.steps()) };
    }
    return this.#pipeline.run(route);
  }

  /** Takes a button press: the core's Cancel button, or the plugin's handler of its action. */
  async press(press: ButtonPress): Promise<void> {
    const { log } = this.#o;
    while (this.#held) await this.#held;
    if (this.#o.state() !== 'running') return;
    if (press.action === this.#o.cancelAction) {
      await this.#o.cancel(press.chat.adapter, press.chat.id, press.user.id);
      return;
    }
    const button = this.#o.plugins.button(press.action);
    if (!button) {
      log.debug('button with no handler', { action: press.action });
      return;
    }
    await this.#o.jobs.runPress(button.plugin, press, button.handler);
  }
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
