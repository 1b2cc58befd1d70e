/**
 * Plugin reloads: swapping a running plugin for a new version (of its code or its config) while
 * the bot goes on. Reloads run one at a time; from the call on, new messages and button presses
 * wait (none is lost); the plugin's scheduled jobs wait too; its running jobs get a grace time,
 * then are cancelled; the command menus are told again when the commands changed.
 */
import type { AdapterSet } from './adapter-set.ts';
import { ChorusError, ConfigError } from './errors.ts';
import type { PluginEntry, PluginHost } from './host.ts';
import type { Intake } from './intake.ts';
import type { JobRunner } from './job-runner.ts';
import type { Scheduler } from './schedule.ts';

/** The parts of the bot a reload touches. */
export interface PluginReloaderOptions {
  readonly plugins: PluginHost;
  readonly intake: Intake;
  readonly jobs: JobRunner;
  readonly scheduler: Scheduler;
  readonly adapters: AdapterSet;
  /** The bot's state: a plugin is reloaded only while the bot runs. */
  readonly state: () => 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
}

/** Runs plugin reloads, one at a time. */
export class PluginReloader {
  readonly #o: PluginReloaderOptions;
  /** Reloads run one at a time. */
  #reloads: Promise<unknown> = Promise.resolve();

  constructor(options: PluginReloaderOptions) {
    this.#o = options;
  }

  /**
   * Swaps the plugin called `name` for `entry`, adds it, or stops it when `entry` is undefined,
   * once the reloads before it are done (see `Bot.reloadPlugin`). The plugin's running jobs get
   * `graceMs` to finish.
   */
  reload(name: string, entry: PluginEntry | undefined, graceMs: number): Promise<void> {
    // Held from the call on, so a message that comes after it meets the new version.
    const release = this.#o.intake.hold();
    const run = this.#reloads.then(() => this.#reloadNow(name, entry, graceMs)).finally(release);
    this.#reloads = run.catch(() => {});
    return run;
  }

  async #reloadNow(name: string, entry: PluginEntry | undefined, graceMs: number): Promise<void> {
    const { plugins, scheduler } = this.#o;
    const state = this.#o.state();
    if (state !== 'running')
      throw new ChorusError('BOT_STATE', `cannot reload a plugin of a bot that is ${state}`);
    if (entry && entry.plugin.name !== name) {
      throw new ConfigError([`plugins.${name}: the plugin found is called "${entry.plugin.name}"`]);
    }
    const config = entry ? await plugins.validate(entry) : undefined;
    scheduler.pause(name);
    const commandsBefore = JSON.stringify(plugins.commands());
    try {
      await this.#o.jobs.endJobsOf(name, graceMs);
      await plugins.replace(name, entry?.plugin, config);
    } finally {
      await scheduler.resume(name);
    }
    if (JSON.stringify(plugins.commands()) !== commandsBefore) await this.#o.adapters.registerCommands();
  }
}
