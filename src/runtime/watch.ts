/**
 * `chorus --watch` (`npm run dev`): reloads plugins while the bot runs. A change under the working
 * directory's `plugins/<name>/` imports that plugin's code afresh and swaps it in
 * ({@link Bot.reloadPlugin}); a change of the config file reloads the plugins whose sections
 * changed, adds and stops plugins, and says when a change needs a restart (adapters, `http`,
 * `log`...). The adapters keep running throughout: no reconnect, no update lost. A version that
 * fails to load (syntax error, a throwing setup, a bad config) is logged and the running one stays.
 */
import { type Dirent, existsSync, type FSWatcher, readdirSync, watch } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Bot, PluginEntry } from '../bot.ts';
import { type Clock, systemClock, type TimerHandle } from '../clock.ts';
import { ConfigError } from '../errors.ts';
import type { Logger, Redactor } from '../logger.ts';
import type { Plugin } from '../plugin.ts';
import { readConfig } from './config.ts';
import { loadPlugin } from './loader.ts';

/** Options of {@link Reloader} and {@link watchForChanges}. */
export interface ReloaderOptions {
  readonly bot: Bot;
  /** The bot's project: where `plugins/` is and local plugins are found. */
  readonly cwd: string;
  /** The config file the bot was started with; undefined for the built-in default (not watched). */
  readonly configPath: string | undefined;
  /** The config as read at start (`readConfig().raw`). */
  readonly raw: Readonly<Record<string, unknown>>;
  /** The plugins running now. */
  readonly plugins: readonly PluginEntry[];
  /** Plugins that run unless the config turns them off with `false`. */
  readonly defaults: Readonly<Record<string, unknown>>;
  readonly log: Logger;
  readonly redactor?: Redactor;
  /** How long a reloading plugin's running jobs may take before they are cancelled. Default 3 s. */
  readonly graceMs?: number;
  /** Imports a plugin's code as a new `version`. Default: {@link loadPlugin} from `cwd`. */
  readonly load?: (name: string, version: number) => Promise<Plugin<unknown>>;
}

/** The plugin sections a config turns on, by name, with the defaults filled in. */
function pluginSections(section: unknown, defaults: Readonly<Record<string, unknown>>): Map<string, unknown> {
  const sections = new Map<string, unknown>();
  const merged = { ...defaults, ...(section && typeof section === 'object' ? section : {}) };
  for (const [name, value] of Object.entries(merged)) {
    if (value === false) continue;
    sections.set(name, value === true || value === null ? {} : value);
  }
  return sections;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Applies changes of plugin code and of the config to a running bot. */
export class Reloader {
  readonly #options: ReloaderOptions;
  readonly #log: Logger;
  /** What runs: each plugin's code and config section. */
  readonly #running = new Map<string, { plugin: Plugin<unknown>; section: unknown }>();
  #raw: Readonly<Record<string, unknown>>;
  #version = 0;

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#log = options.log.child('reload');
    this.#raw = options.raw;
    const sections = pluginSections(options.raw.plugins, options.defaults);
    for (const { plugin } of options.plugins) {
      this.#running.set(plugin.name, { plugin, section: sections.get(plugin.name) ?? {} });
    }
  }

  /** The plugins running now, by name. */
  running(): string[] {
    return [...this.#running.keys()];
  }

  /** Imports the code of the named plugins afresh and swaps each in. Names not running are skipped. */
  async codeChanged(names: Iterable<string>): Promise<void> {
    for (const name of names) {
      const current = this.#running.get(name);
      if (!current) continue;
      const plugin = await this.#import(name);
      if (plugin) await this.#swap(name, plugin, current.section);
    }
  }

  /** Reads the config file again and applies what changed in it. */
  async configChanged(): Promise<void> {
    const path = this.#options.configPath;
    if (!path) return;
    let raw: Readonly<Record<string, unknown>>;
    try {
      const reading = await readConfig({
        path,
        ...(this.#options.redactor && { redactor: this.#options.redactor }),
      });
      if (reading.issues.length > 0) throw new ConfigError(reading.issues);
      raw = reading.raw as Readonly<Record<string, unknown>>;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const issue of error.issues) {
        this.#log.error('config error: the running config stays', { issue });
      }
      return;
    }
    const restart = Object.keys({ ...this.#raw, ...raw }).filter(
      (key) => key !== 'plugins' && !same(this.#raw[key], raw[key]),
    );
    if (restart.length > 0) {
      this.#log.warn('config changed where a reload cannot apply it: restart the bot to use it', {
        keys: restart.join(', '),
      });
    }
    this.#raw = { ...raw };
    const sections = pluginSections(raw.plugins, this.#options.defaults);
    for (const name of this.#running.keys()) {
      if (sections.has(name)) continue;
      try {
        await this.#options.bot.reloadPlugin(name, undefined);
        this.#running.delete(name);
        this.#log.info('plugin stopped', { plugin: name });
      } catch (error) {
        this.#log.error('plugin could not be stopped', { plugin: name, error });
      }
    }
    for (const [name, section] of sections) {
      const current = this.#running.get(name);
      if (current && same(current.section, section)) continue;
      const plugin = current?.plugin ?? (await this.#import(name));
      if (plugin) await this.#swap(name, plugin, section);
    }
  }

  async #import(name: string): Promise<Plugin<unknown> | undefined> {
    const version = ++this.#version;
    try {
      const load =
        this.#options.load ??
        ((n: string, v: number) => loadPlugin(n, { cwd: this.#options.cwd, version: v }));
      return await load(name, version);
    } catch (error) {
      this.#log.error('plugin could not be loaded: the running version stays', { plugin: name, error });
      return undefined;
    }
  }

  async #swap(name: string, plugin: Plugin<unknown>, section: unknown): Promise<void> {
    const graceMs = this.#options.graceMs;
    try {
      await this.#options.bot.reloadPlugin(
        name,
        { plugin, config: section },
        graceMs === undefined ? {} : { graceMs },
      );
      this.#running.set(name, { plugin, section });
      this.#log.info('plugin reloaded', { plugin: name });
    } catch (error) {
      const running = this.#running.has(name);
      this.#log.error(
        running ? 'plugin reload failed: the running version stays' : 'plugin could not be started',
        { plugin: name, error },
      );
    }
  }
}

/** Options of {@link watchForChanges}. */
export interface WatchOptions extends ReloaderOptions {
  /** Quiet time after the last change before reloading (editors write in several steps). Default 150 ms. */
  readonly debounceMs?: number;
  readonly clock?: Clock;
}

/** What {@link watchForChanges} returns. */
export interface Watching {
  /** Stops watching; a reload in progress finishes. */
  close(): void;
  /** Resolves once the changes seen so far are applied. */
  idle(): Promise<void>;
}

/**
 * A file under `plugins/` that is part of a plugin's code: not an editor's backup or swap file,
 * not a test, not in node_modules. Returns the plugin's name.
 */
export function pluginOfChange(file: string): string | undefined {
  const parts = file.split(sep).join('/').split('/');
  const name = parts[0];
  const leaf = parts.at(-1) ?? '';
  if (!name || parts.length < 2 || parts.includes('node_modules')) return undefined;
  if (leaf.startsWith('.') || leaf.endsWith('~') || /\.(test|spec)\.[cm]?[jt]sx?$/.test(leaf))
    return undefined;
  if (!/^[\w-]+$/.test(name)) return undefined;
  return name;
}

/**
 * Watches every folder under `root` (but `node_modules` and dot folders), each with a watch of its
 * own, and calls `changed` with the path of what changed, relative to `root`. Not `recursive: true`:
 * on Linux, Node 20 builds that from per-file watches, which stop reporting a file once an editor
 * has replaced it (saved by writing a new file and renaming it over the old one). A folder's own
 * watch sees every such save. New folders are watched as they appear.
 */
export function watchTree(
  root: string,
  changed: (file: string) => void,
  failed: (error: unknown) => void,
): { close(): void } | undefined {
  const watching = new Map<string, FSWatcher>();
  const add = (dir: string) => {
    if (watching.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (event, name) => {
        if (!name) return;
        const path = join(dir, name.toString());
        changed(relative(root, path));
        if (event === 'rename') scan(path);
      });
    } catch {
      return; // gone again, or not a folder
    }
    watcher.on('error', (error) => {
      watching.delete(dir);
      watcher.close();
      if (dir === root) failed(error);
    });
    watching.set(dir, watcher);
  };
  const scan = (dir: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    add(dir);
    for (const entry of entries) {
      if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) {
        scan(join(dir, entry.name));
      }
    }
  };
  if (!existsSync(root)) return undefined;
  scan(root);
  return {
    close() {
      for (const watcher of watching.values()) watcher.close();
      watching.clear();
    },
  };
}

/** Watches `plugins/` and the config file, and reloads what changes. */
export function watchForChanges(options: WatchOptions): Watching {
  const reloader = new Reloader(options);
  const log = options.log.child('reload');
  const clock = options.clock ?? systemClock;
  const debounceMs = options.debounceMs ?? 150;
  const changedPlugins = new Set<string>();
  let configChanged = false;
  let timer: TimerHandle | undefined;
  let work: Promise<void> = Promise.resolve();
  const watchers: { close(): void }[] = [];

  const apply = async () => {
    const names = [...changedPlugins];
    changedPlugins.clear();
    const config = configChanged;
    configChanged = false;
    if (config) await reloader.configChanged();
    if (names.length > 0) await reloader.codeChanged(names);
  };
  const soon = () => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      timer = undefined;
      work = work.then(apply).catch((error: unknown) => log.error('reload failed', { error }));
    }, debounceMs);
  };

  const pluginsDir = join(options.cwd, 'plugins');
  const tree = watchTree(
    pluginsDir,
    (file) => {
      const name = pluginOfChange(file);
      if (!name) return;
      changedPlugins.add(name);
      soon();
    },
    (error) => log.warn('stopped watching a plugin folder', { dir: pluginsDir, error }),
  );
  if (tree) watchers.push(tree);
  else log.info('no plugins folder to watch', { dir: pluginsDir });
  if (options.configPath) {
    const file = basename(options.configPath);
    // The folder, not the file: editors save by writing a new file and renaming it over the old one.
    const watcher = watch(dirname(options.configPath), (_event, changed) => {
      if (changed?.toString() !== file) return;
      configChanged = true;
      soon();
    });
    watcher.on('error', (error) => log.warn('stopped watching the config', { error }));
    watchers.push(watcher);
  }
  log.info('watching for changes', {
    plugins: pluginsDir,
    config: options.configPath ?? 'built-in default (not watched)',
  });

  return {
    close() {
      if (timer !== undefined) clock.clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
    idle: () => work,
  };
}
