/**
 * The plugin host: validates each plugin's config, runs `setup` with a `PluginContext`, keeps what
 * plugins register (commands, keyword triggers, matchers, buttons, bus listeners, strings), and
 * undoes all of it when the plugins stop. The bot asks it what handles a message.
 */
import type { EventBus } from './bus.ts';
import type { Clock } from './clock.ts';
import { type CommandSpec, isCommandName } from './commands.ts';
import { ChorusError, ConfigError } from './errors.ts';
import type { Http } from './http.ts';
import type { Translator } from './i18n.ts';
import type { Logger, Redactor } from './logger.ts';
import type { Button } from './message.ts';
import {
  type ButtonHandler,
  type CommandHandler,
  type MessageMatcher,
  type Plugin,
  type PluginContext,
  validateConfig,
} from './plugin.ts';
import type { RouteStep } from './router.ts';
import type { Scheduler } from './schedule.ts';
import type { TaskHandler } from './schedule-jobs.ts';
import { namespacedSlots, type Slots } from './slots.ts';
import { namespacedStore, type Store } from './store.ts';

/** A plugin and its (not yet validated) config section. */
export interface PluginEntry {
  readonly plugin: Plugin<unknown>;
  readonly config?: unknown;
}

/** A registered command. */
export interface CommandEntry {
  readonly plugin: string;
  readonly spec: CommandSpec;
  readonly handler: CommandHandler;
}

/** What the host gives plugins. */
export interface HostServices {
  readonly bus: EventBus;
  readonly log: Logger;
  readonly clock: Clock;
  readonly http: Http;
  /** The client plugin `name` gets as `ctx.http`. Default: `http` itself. */
  readonly httpFor?: (plugin: string) => Http;
  readonly redactor: Redactor;
  readonly translator: Translator;
  readonly locale: string;
  /** The button that cancels the presser's jobs. */
  readonly cancelButton: (label?: string) => Button;
  readonly scheduler: Scheduler;
  /** The process's store; each plugin sees its own namespace of it. */
  readonly store: Store;
  /** Slots shared by every process of the bot; each plugin sees its own namespace of them. */
  readonly slots?: Slots | undefined;
}

interface LoadedPlugin {
  readonly name: string;
  readonly plugin: Plugin<unknown>;
  /** The validated config it was set up with. */
  readonly config: unknown;
  readonly disposers: (() => void | Promise<void>)[];
}

interface MatcherEntry {
  readonly plugin: string;
  readonly matcher: MessageMatcher;
  readonly handler: CommandHandler;
  readonly owner: LoadedPlugin;
}

/** Runs the plugins and keeps what they register. */
export class PluginHost {
  readonly #services: HostServices;
  readonly #commands = new Map<string, CommandEntry>();
  readonly #keywords = new Map<string, CommandEntry>();
  readonly #matchers: MatcherEntry[] = [];
  readonly #buttons = new Map<string, { readonly plugin: string; readonly handler: ButtonHandler }>();
  readonly #steps: { readonly plugin: string; readonly step: RouteStep }[] = [];
  readonly #plugins: LoadedPlugin[] = [];
  #stepsVersion = 0;

  constructor(services: HostServices) {
    this.#services = services;
  }

  /** Validates every plugin's config first, then sets them up in order. One ConfigError lists every problem. */
  async start(entries: readonly PluginEntry[]): Promise<void> {
    const issues: string[] = [];
    const configs: unknown[] = [];
    const names = new Set<string>();
    for (const { plugin, config } of entries) {
      if (names.has(plugin.name)) issues.push(`plugins.${plugin.name}: loaded twice`);
      names.add(plugin.name);
      try {
        configs.push(await validateConfig(plugin.config, config, `plugins.${plugin.name}`));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        issues.push(...error.issues);
      }
    }
    if (issues.length > 0) throw new ConfigError(issues);
    for (const [index, entry] of entries.entries()) {
      await this.#setup(entry.plugin, configs[index], this.#plugins.length);
    }
  }

  /** Validates one plugin's config section. Throws `ConfigError` naming its keys. */
  validate(entry: PluginEntry): Promise<unknown> {
    return validateConfig(entry.plugin.config, entry.config, `plugins.${entry.plugin.name}`);
  }

  /** Whether a plugin of that name is set up. */
  has(name: string): boolean {
    return this.#plugins.some((loaded) => loaded.name === name);
  }

  /**
   * Swaps the plugin called `name` for `next` (set up with the already validated `config`), adds it
   * when none runs, or, without `next`, stops it. Everything the old one registered is undone first.
   * When `next`'s setup throws, what it registered so far is undone, the old plugin is set up again
   * with its old config, and the error is thrown.
   */
  async replace(name: string, next: Plugin<unknown> | undefined, config?: unknown): Promise<void> {
    let index = this.#plugins.findIndex((loaded) => loaded.name === name);
    const previous = index >= 0 ? this.#plugins[index] : undefined;
    if (previous) {
      await this.#dispose(previous);
      this.#plugins.splice(index, 1);
    } else index = this.#plugins.length;
    if (!next) return;
    try {
      await this.#setup(next, config, index);
    } catch (error) {
      const failed = this.#plugins[index];
      if (failed) await this.#dispose(failed);
      this.#plugins.splice(index, 1);
      if (previous) {
        try {
          await this.#setup(previous.plugin, previous.config, index);
        } catch (again) {
          const half = this.#plugins[index];
          if (half) await this.#dispose(half);
          this.#plugins.splice(index, 1);
          this.#services.log.error('plugin could not be set up again, it is off', {
            plugin: name,
            error: again,
          });
        }
      }
      throw error;
    }
  }

  /** Stops the plugins, last first, undoing everything each registered. */
  async stop(): Promise<void> {
    for (const plugin of this.#plugins.splice(0).reverse()) await this.#dispose(plugin);
  }

  async #dispose(plugin: LoadedPlugin): Promise<void> {
    for (const dispose of plugin.disposers.splice(0).reverse()) {
      try {
        await dispose();
      } catch (error) {
        this.#services.log.warn('plugin dispose failed', { plugin: plugin.name, error });
      }
    }
  }

  /** The command registered under `name` (or an alias). */
  command(name: string): CommandEntry | undefined {
    return this.#commands.get(name);
  }

  /** Keyword triggers with their commands. */
  keywords(): IterableIterator<[string, CommandEntry]> {
    return this.#keywords.entries();
  }

  /** Matchers in registration order. */
  matchers(): readonly { plugin: string; matcher: MessageMatcher; handler: CommandHandler }[] {
    return this.#matchers;
  }

  /** The plugins' routing steps, in the order they were added. */
  steps(): readonly RouteStep[] {
    return this.#steps.map((entry) => entry.step);
  }

  /** Changes whenever a routing step is added or removed, so the router knows to compose again. */
  get stepsVersion(): number {
    return this.#stepsVersion;
  }

  /** The handler of a button's action (`<plugin>:<action>`), with the plugin that registered it. */
  button(action: string): { readonly plugin: string; readonly handler: ButtonHandler } | undefined {
    return this.#buttons.get(action);
  }

  /** Every command, once each, with its plugin. */
  commands(): readonly { readonly plugin: string; readonly spec: CommandSpec }[] {
    return [...new Set(this.#commands.values())].map(({ plugin, spec }) => ({ plugin, spec }));
  }

  async #setup(plugin: Plugin<unknown>, config: unknown, index: number): Promise<void> {
    const { bus, translator } = this.#services;
    const loaded: LoadedPlugin = { name: plugin.name, plugin, config, disposers: [] };
    this.#plugins.splice(index, 0, loaded);
    const track = (undo: () => void) => {
      loaded.disposers.push(undo);
      return undo;
    };
    const ctx: PluginContext = {
      name: plugin.name,
      log: this.#services.log.child(plugin.name),
      clock: this.#services.clock,
      http: this.#services.httpFor?.(plugin.name) ?? this.#services.http,
      command: (spec, handler) => track(this.#addCommand({ plugin: plugin.name, spec, handler })),
      match: (matcher, handler) => {
        const entry: MatcherEntry = { plugin: plugin.name, matcher, handler, owner: loaded };
        // Matchers are tried in plugin order, so a plugin set up again keeps its place.
        const rank = (owner: LoadedPlugin) => this.#plugins.indexOf(owner);
        const after = this.#matchers.findIndex((other) => rank(other.owner) > rank(loaded));
        this.#matchers.splice(after < 0 ? this.#matchers.length : after, 0, entry);
        return track(() => {
          const index = this.#matchers.indexOf(entry);
          if (index >= 0) this.#matchers.splice(index, 1);
        });
      },
      use: (step) => {
        const entry = { plugin: plugin.name, step };
        this.#steps.push(entry);
        this.#stepsVersion++;
        return track(() => {
          const index = this.#steps.indexOf(entry);
          if (index >= 0) this.#steps.splice(index, 1);
          this.#stepsVersion++;
        });
      },
      on: (event, listener) => track(bus.on(event, listener)),
      emit: (event, payload) => bus.emit(event, payload),
      button: (action, handler) => {
        const key = `${plugin.name}:${action}`;
        if (this.#buttons.has(key))
          throw new ChorusError('BUTTON_CONFLICT', `button ${key} is registered twice`);
        this.#buttons.set(key, { plugin: plugin.name, handler });
        return track(() => this.#buttons.delete(key));
      },
      cancelButton: this.#services.cancelButton,
      strings: (tables) => {
        for (const [locale, strings] of Object.entries(tables)) track(translator.add(locale, strings));
      },
      secret: (...values) => {
        for (const value of values) this.#services.redactor.add(value);
      },
      onDispose: (dispose) => {
        loaded.disposers.push(dispose);
      },
      commands: () => this.commands(),
      task: (name, handler, options) =>
        track(this.#services.scheduler.register(plugin.name, name, handler as TaskHandler, options)),
      schedule: this.#services.scheduler.for(plugin.name),
      store: namespacedStore(this.#services.store, `plugin:${plugin.name}:`),
      ...(this.#services.slots && { slots: namespacedSlots(this.#services.slots, `plugin:${plugin.name}:`) }),
    };
    await plugin.setup(ctx, config);
    this.#services.log.debug('plugin ready', { plugin: plugin.name });
  }

  #addCommand(entry: CommandEntry): () => void {
    const { spec } = entry;
    const names = [spec.name, ...(spec.aliases ?? [])];
    for (const name of names) {
      if (!isCommandName(name)) {
        throw new TypeError(
          `command name "${name}" must be 1-32 characters of a-z, 0-9 and _ (plugin ${entry.plugin})`,
        );
      }
      if (name === 'cancel' || this.#commands.has(name)) {
        const owner = name === 'cancel' ? 'the core' : this.#commands.get(name)!.plugin;
        throw new ChorusError(
          'COMMAND_CONFLICT',
          `command /${name} of plugin ${entry.plugin} is taken by ${owner}`,
        );
      }
    }
    for (const keyword of spec.keywords ?? []) {
      const owner = this.#keywords.get(keyword);
      if (owner) {
        throw new ChorusError(
          'COMMAND_CONFLICT',
          `keyword "${keyword}" of plugin ${entry.plugin} is taken by ${owner.plugin}`,
        );
      }
    }
    for (const name of names) this.#commands.set(name, entry);
    for (const keyword of spec.keywords ?? []) this.#keywords.set(keyword, entry);
    return () => {
      for (const name of names) if (this.#commands.get(name) === entry) this.#commands.delete(name);
      for (const keyword of spec.keywords ?? [])
        if (this.#keywords.get(keyword) === entry) this.#keywords.delete(keyword);
    };
  }
}
