/**
 * `npm start`: reads the config, builds the adapters and plugins it names, runs the bot until
 * SIGINT/SIGTERM (or until the console's input ends), then shuts down gracefully.
 * A config problem prints one line per problem and exits with status 2, without a stack trace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Adapter } from './adapter.ts';
import { createBot, type PluginEntry } from './bot.ts';
import { type ChorusConfig, loadConfig } from './config.ts';
import { ChorusError, ConfigError } from './errors.ts';
import { HttpClient } from './http.ts';
import { createLogger, Redactor } from './logger.ts';
import { type ConfigSchema, closest, type Plugin, validateConfig } from './plugin.ts';
import { openSqliteStore } from './store.ts';

/** The config used when `config/chorus.yaml` does not exist: offline, on the console. */
export const embeddedConfig = `
adapters:
  console: {}
plugins:
  help: {}
  draw:
    backends:
      - { name: demo-fast, type: demo, latencyMs: 600, n: 1 }
      - { name: demo-steady, type: demo, latencyMs: 1500, n: 4 }
      - { name: demo-flaky, type: demo, latencyMs: 2500, n: 2, failRate: 0.3 }
  ask:
    backends:
      - { name: demo, type: demo, tokensPerSecond: 40 }
`;

interface AdapterKind {
  readonly load: () => Promise<{ config: ConfigSchema; create: (name: string, config: never) => Adapter }>;
}

/** Adapter types by the name used in `adapters:` (or in an instance's `type:`). Loaded on demand. */
const adapterKinds: Record<string, AdapterKind> = {
  console: {
    load: async () => {
      const { consoleConfig, createConsoleAdapter } = await import('../adapters/console/index.ts');
      return {
        config: consoleConfig,
        create: (name, config: Record<string, string>) => createConsoleAdapter({ name, ...config }),
      };
    },
  },
};

const projectRoot = resolve(fileURLToPath(import.meta.url), '../..');

/** Built-in plugins loaded even when the config does not list them; `name: false` turns one off. */
const defaultPlugins = ['remind'];

async function buildAdapters(config: ChorusConfig): Promise<Adapter[]> {
  const adapters: Adapter[] = [];
  const issues: string[] = [];
  for (const [name, section] of Object.entries(config.adapters)) {
    const { type = name, ...rest } = (section ?? {}) as { type?: string };
    const kind = adapterKinds[type];
    if (!kind) {
      const known = Object.keys(adapterKinds);
      const hint = closest(type, known);
      issues.push(
        `adapters.${name}: unknown adapter "${type}" (${hint ? `did you mean "${hint}"? ` : ''}available: ${known.join(', ')})`,
      );
      continue;
    }
    const { config: schema, create } = await kind.load();
    try {
      adapters.push(create(name, (await validateConfig(schema, rest, `adapters.${name}`)) as never));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return adapters;
}

/**
 * The entry file of npm package `name` installed in `node_modules` of `from` or a folder above it
 * (the bot's project, not Chorus's own folder), from its `exports` or `main`.
 */
function resolvePackage(name: string, from: string): string | undefined {
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

/** Finds a plugin: `plugins/<name>` in the working directory, then Chorus's own, then an npm package. */
async function loadPlugin(name: string): Promise<Plugin<unknown>> {
  const local =
    [process.cwd(), projectRoot]
      .flatMap((root) => ['index.ts', 'index.js'].map((file) => resolve(root, 'plugins', name, file)))
      .find((file) => existsSync(file)) ?? resolvePackage(name, process.cwd());
  let module: { plugin?: unknown; default?: unknown };
  try {
    module = await import(local ? pathToFileURL(local).href : name);
  } catch (error) {
    if (!local && (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new ConfigError([
        `plugins.${name}: no folder plugins/${name} and no installed npm package "${name}"`,
      ]);
    }
    throw error;
  }
  const plugin = (module.plugin ?? module.default) as Plugin<unknown> | undefined;
  if (!plugin || typeof plugin.setup !== 'function') {
    throw new ConfigError([
      `plugins.${name}: the module exports no plugin (expected \`export const plugin = definePlugin(...)\`)`,
    ]);
  }
  return plugin;
}

// One redactor for the whole run, so an error that ends it is scrubbed of the secrets the config read.
const redactor = new Redactor();

async function main(argv: readonly string[]): Promise<number> {
  const configIndex = argv.indexOf('--config');
  if (argv.includes('--help')) {
    process.stdout.write(
      'usage: chorus [--config FILE]\n  default config: config/chorus.yaml, or $CHORUS_CONFIG\n',
    );
    return 0;
  }
  if (configIndex >= 0 && !argv[configIndex + 1]) throw new ConfigError(['--config needs a file name']);
  const { config, path } = await loadConfig({
    path: configIndex >= 0 ? argv[configIndex + 1] : undefined,
    fallback: embeddedConfig,
    redactor,
  });
  const log = createLogger({ level: config.log.level, redactor });
  log.debug('config loaded', { path: path ?? 'built-in default' });

  const adapters = await buildAdapters(config);
  const plugins: PluginEntry[] = [];
  const pluginIssues: string[] = [];
  const sections = { ...config.plugins };
  for (const name of defaultPlugins) if (!(name in sections)) sections[name] = {};
  for (const [name, section] of Object.entries(sections)) {
    if (section === false) continue;
    try {
      plugins.push({
        plugin: await loadPlugin(name),
        config: section === true || section === null ? {} : section,
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      pluginIssues.push(...error.issues);
    }
  }
  if (pluginIssues.length > 0) throw new ConfigError(pluginIssues);

  const http = new HttpClient({
    proxy: config.http.proxy, // unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment
    connectTimeoutMs: config.http.connectTimeoutMs,
    firstByteTimeoutMs: config.http.firstByteTimeoutMs,
    idleTimeoutMs: config.http.idleTimeoutMs,
  });
  const store = await openSqliteStore(resolve(config.state.path));
  const bot = createBot({ adapters, plugins, locale: config.locale, log, redactor, http, store });
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn('second signal, exiting now', { signal });
      process.exit(130);
    }
    log.info('signal received, shutting down', { signal });
    void bot.stop();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  await bot.start();
  await bot.stopped;
  await store.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      for (const issue of error.issues)
        process.stderr.write(`chorus: config error: ${redactor.redact(issue)}\n`);
      process.exit(2);
    }
    const text =
      error instanceof ChorusError ? `${error.name}(${error.code}): ${error.message}` : String(error);
    process.stderr.write(`chorus: ${redactor.redact(text)}\n`);
    if (!(error instanceof ChorusError) && error instanceof Error && error.stack) {
      process.stderr.write(`${redactor.redact(error.stack)}\n`);
    }
    process.exit(1);
  },
);
