/**
 * Finds what the config names: a plugin under `plugins:` or an adapter type under `adapters:`.
 * Each is looked for, in order, as a folder in the bot's working directory (`plugins/<name>/`,
 * `adapters/<type>/`), as one of Chorus's own folders, and as an npm package installed in the bot's
 * project. Plugins and adapters are found the same way, and the core imports neither.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AdapterDefinition } from '../adapter.ts';
import { ConfigError } from '../errors.ts';
import { closest, type Plugin } from '../plugin.ts';

/**
 * Chorus's own folder, where the built-in plugins and adapters live: the repository (from source),
 * or `dist/` of the installed package (compiled, as `dist/plugins/<name>/index.js`).
 */
export const chorusRoot = resolve(fileURLToPath(import.meta.url), '../../..');

/** What is being looked for: its folder, the export that holds it, and how to recognise it. */
interface Kind<T> {
  /** `plugins` or `adapters`: the folder and the config section. */
  readonly section: 'plugins' | 'adapters';
  /** `plugin` or `adapter`: the config's word for one, and the export's name. */
  readonly noun: 'plugin' | 'adapter';
  readonly example: string;
  readonly accepts: (value: unknown) => value is T;
}

const pluginKind: Kind<Plugin<unknown>> = {
  section: 'plugins',
  noun: 'plugin',
  example: 'export const plugin = definePlugin(...)',
  accepts: (value): value is Plugin<unknown> =>
    typeof value === 'object' && value !== null && typeof (value as Plugin).setup === 'function',
};

const adapterKind: Kind<AdapterDefinition<unknown>> = {
  section: 'adapters',
  noun: 'adapter',
  example: 'export const adapter = defineAdapter(...)',
  accepts: (value): value is AdapterDefinition<unknown> =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AdapterDefinition).create === 'function' &&
    typeof (value as AdapterDefinition).type === 'string',
};

/** Where to look. */
export interface LoaderOptions {
  /** The bot's project: its `plugins/` and `adapters/` folders and its `node_modules`. */
  readonly cwd: string;
  /** Chorus's own folder. Default: the one this file is in. */
  readonly builtinRoot?: string;
  /**
   * Import the code afresh as version `version` (a new number each time): the entry and every
   * file it imports from the entry's folder are read again. Code already imported stays in memory.
   */
  readonly version?: number;
}

let hooksRegistered = false;

/** The URL a plugin or adapter entry is imported from: fresh for a new `version`. */
function entryUrl(entry: string, version: number | undefined): string {
  const url = pathToFileURL(entry);
  if (version === undefined) return url.href;
  if (!hooksRegistered) {
    const self = fileURLToPath(import.meta.url);
    register(new URL(`./reload-hooks${extname(self)}`, import.meta.url));
    hooksRegistered = true;
  }
  // Files compiled to CommonJS (a folder without `"type": "module"`) are required, not imported:
  // forgetting them makes the next require read them again.
  const folder = `${dirname(entry)}${sep}`;
  const { cache } = createRequire(import.meta.url);
  for (const file of Object.keys(cache)) {
    if (file.startsWith(folder) && !file.includes(`${sep}node_modules${sep}`)) delete cache[file];
  }
  url.searchParams.set('chorus-reload', String(version));
  url.searchParams.set('chorus-scope', pathToFileURL(`${dirname(entry)}/`).href);
  return url.href;
}

/** Loads the plugin that `plugins.<name>` names. Throws `ConfigError` naming the key. */
export function loadPlugin(name: string, options: LoaderOptions): Promise<Plugin<unknown>> {
  return load(pluginKind, name, `plugins.${name}`, options);
}

/** Loads the adapter type that `adapters.<name>` (or its `type:`) names. Throws `ConfigError` naming the key. */
export function loadAdapter(
  type: string,
  key: string,
  options: LoaderOptions,
): Promise<AdapterDefinition<unknown>> {
  return load(adapterKind, type, key, options);
}

async function load<T>(kind: Kind<T>, name: string, key: string, options: LoaderOptions): Promise<T> {
  const roots = [options.cwd, options.builtinRoot ?? chorusRoot];
  const entry =
    (isFolderName(name)
      ? roots
          .flatMap((root) => ['index.ts', 'index.js'].map((file) => resolve(root, kind.section, name, file)))
          .find((file) => existsSync(file))
      : undefined) ?? resolvePackage(name, options.cwd);
  if (!entry) {
    const known = available(kind.section, roots);
    const hint = closest(name, known);
    throw new ConfigError([
      `${key}: unknown ${kind.noun} "${name}": no folder ${kind.section}/${name} and no installed npm package "${name}"` +
        ` (${hint ? `did you mean "${hint}"? ` : ''}available: ${known.join(', ') || 'none'})`,
    ]);
  }
  const module = (await import(entryUrl(entry, options.version))) as Record<string, unknown>;
  const value = module[kind.noun] ?? module.default;
  if (!kind.accepts(value)) {
    throw new ConfigError([`${key}: ${entry} exports no ${kind.noun} (expected \`${kind.example}\`)`]);
  }
  return value;
}

/** A name that can only be a folder of ours: no path separators, no dots, no scope. */
function isFolderName(name: string): boolean {
  return /^[\w-]+$/.test(name);
}

/** The folder names under `section` in each root, for "did you mean" hints. */
function available(section: string, roots: readonly string[]): string[] {
  const names = new Set<string>();
  for (const root of roots) {
    const dir = join(root, section);
    if (!existsSync(dir)) continue;
    for (const item of readdirSync(dir, { withFileTypes: true })) {
      if (
        item.isDirectory() &&
        ['index.ts', 'index.js'].some((file) => existsSync(join(dir, item.name, file)))
      ) {
        names.add(item.name);
      }
    }
  }
  return [...names].sort();
}

/**
 * The entry file of npm package `name` installed in `node_modules` of `from` or a folder above it
 * (the bot's project, not Chorus's own folder), from its `exports` or `main`.
 */
function resolvePackage(name: string, from: string): string | undefined {
  if (!/^(@[\w.-]+\/)?[\w.-]+$/.test(name)) return undefined;
  for (let dir = from; ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', name);
    const manifest = join(root, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; main?: string };
      let entry: unknown = pkg.exports;
      if (entry && typeof entry === 'object' && '.' in entry) entry = (entry as Record<string, unknown>)['.'];
      while (entry && typeof entry === 'object') {
        const conditions = entry as Record<string, unknown>;
        entry = conditions.import ?? conditions.node ?? conditions.default;
      }
      return join(root, typeof entry === 'string' ? entry : (pkg.main ?? 'index.js'));
    }
    if (dirname(dir) === dir) return undefined;
  }
}
