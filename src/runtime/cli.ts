#!/usr/bin/env node
/**
 * The `chorus` command. `chorus start` (the default, and `npm start` in this repository) reads the
 * config, builds the adapters and plugins it names, runs the bot until SIGINT/SIGTERM (or until
 * the console's input ends), then shuts down gracefully. `chorus init DIR` writes a new bot
 * project. A config problem prints one line per problem and exits with status 2, without a stack
 * trace.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AdapterDefinition } from '../adapter.ts';
import { createBot, type PluginEntry } from '../bot.ts';
import { AdapterError, ChorusError, ConfigError } from '../errors.ts';
import { createLogger, Redactor } from '../logger.ts';
import { Metrics } from '../metrics.ts';
import { validateConfig } from '../plugin.ts';
import { parseArgs, type StartArgs, UsageError, usage } from './cli-args.ts';
import { readConfig } from './config.ts';
import { HttpClient } from './http.ts';
import { HttpServer } from './http-server.ts';
import { InitError, initProject, packageRoot } from './init.ts';
import { type LoaderOptions, loadAdapter, loadPlugin } from './loader.ts';
import { mountObservability } from './observability.ts';
import { RedisBudget } from './redis/budget.ts';
import { connectRedis, describeRedisUrl } from './redis/connection.ts';
import { openRedisJobs } from './redis/jobs.ts';
import { RedisWorkQueue } from './redis/queue.ts';
import { RedisSlots } from './redis/slots.ts';
import { RedisStore } from './redis/store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { watchForChanges } from './watch.ts';

/**
 * The config used when `config/chorus.yaml` does not exist: offline, on the console and on a chat
 * page at http://127.0.0.1:8787/ (another free port when that one is taken).
 */
export const embeddedConfig = `
adapters:
  console: {}
  web: { port: 8787, onPortTaken: free-port }
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

/**
 * An unset variable leaves its key empty, which that key's schema then refuses too: only the first
 * problem of a key is worth reading.
 */
function withoutEchoes(issues: readonly string[]): string[] {
  const unset = new Set(
    issues.filter((issue) => issue.includes(': environment variable ')).map((issue) => issue.split(': ')[0]),
  );
  return issues.filter(
    (issue) => issue.includes(': environment variable ') || !unset.has(issue.split(': ')[0]),
  );
}

/** Plugins that load unless the config turns them off with `false`. */
const defaultPlugins: Readonly<Record<string, unknown>> = { help: {}, remind: {} };

interface AdapterPlan {
  readonly name: string;
  readonly definition: AdapterDefinition<unknown>;
  readonly config: unknown;
}

/** Finds and checks every adapter the config names; problems go to `issues`. */
async function planAdapters(
  section: unknown,
  issues: string[],
  options: LoaderOptions,
): Promise<AdapterPlan[]> {
  if (!section || typeof section !== 'object') return [];
  const plans: AdapterPlan[] = [];
  for (const [name, value] of Object.entries(section)) {
    const { type = name, ...rest } = (value ?? {}) as { type?: unknown };
    if (typeof type !== 'string') {
      issues.push(`adapters.${name}.type: expected the name of an adapter type`);
      continue;
    }
    try {
      const definition = await loadAdapter(type, `adapters.${name}`, options);
      plans.push({
        name,
        definition,
        config: await validateConfig(definition.config, rest, `adapters.${name}`),
      });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  }
  return plans;
}

/** Finds every plugin the config names (and the default ones) and checks its section; problems go to `issues`. */
async function planPlugins(
  section: unknown,
  issues: string[],
  options: LoaderOptions,
): Promise<PluginEntry[]> {
  const sections = { ...defaultPlugins, ...(section && typeof section === 'object' ? section : {}) };
  const entries: PluginEntry[] = [];
  for (const [name, value] of Object.entries(sections)) {
    if (value === false) continue;
    const config = value === true || value === null ? {} : value;
    try {
      const plugin = await loadPlugin(name, options);
      await validateConfig(plugin.config, config, `plugins.${name}`);
      entries.push({ plugin, config });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
  }
  return entries;
}

// One redactor for the whole run, so an error that ends it is scrubbed of the secrets the config read.
const redactor = new Redactor();

/**
 * How the new project gets Chorus: from the registry when this is the installed package; from a
 * tarball of this clone when it runs from source (`chorus-bot` is not on the registry yet).
 */
function installStep(): string {
  if (import.meta.url.endsWith('.js')) return '  npm install';
  const root = packageRoot();
  const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string };
  return `  npm install ${resolve(root, `chorus-bot-${version}.tgz`)}   # made by npm pack in ${root}`;
}

/** Writes a new project and says what to do next. */
function init(dir: string): number {
  const { files } = initProject(dir);
  process.stdout.write(
    [
      `chorus: wrote ${dir}/: ${files.join(', ')}`,
      '',
      'next:',
      `  cd ${dir}`,
      installStep(),
      "  npm test     # typecheck and the example plugin's tests",
      '  npm start    # the bot on the console: type /help or /status',
      '',
    ].join('\n'),
  );
  return 0;
}

/**
 * Compiled (the installed package), Chorus runs on plain Node: tsx is registered so the bot's own
 * plugins can stay TypeScript. From source, tsx is already running.
 */
async function loadTypeScript(): Promise<void> {
  if (!import.meta.url.endsWith('.js')) return;
  const { register } = await import('tsx/esm/api');
  register();
}

async function main(argv: readonly string[]): Promise<number> {
  const command = parseArgs(argv);
  if (command.name === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  if (command.name === 'init') return init(command.dir);
  return start(command.args);
}

async function start(args: StartArgs): Promise<number> {
  await loadTypeScript();
  const reading = await readConfig({ path: args.config, fallback: embeddedConfig, redactor });
  // Every problem in one run: the top level, then each adapter and plugin section.
  const issues = [...reading.issues];
  const where: LoaderOptions = { cwd: process.cwd() };
  const adapterPlans = await planAdapters(reading.raw.adapters, issues, where);
  const plugins = await planPlugins(reading.raw.plugins, issues, where);
  if (issues.length > 0 || !reading.config) throw new ConfigError(withoutEchoes(issues));
  const config = reading.config;
  if (args.check) {
    process.stdout.write(
      `chorus: config ok: ${reading.path ?? 'built-in default'} (adapters: ${adapterPlans.map((p) => p.name).join(', ')}; plugins: ${plugins.map((p) => p.plugin.name).join(', ')})\n`,
    );
    return 0;
  }
  const log = createLogger({ level: config.log.level, format: config.log.format, redactor });
  log.debug('config loaded', { path: reading.path ?? 'built-in default' });
  const adapters = adapterPlans.map(({ name, definition, config: section }) =>
    definition.create({ name, config: section, proxy: config.http.proxy }),
  );

  const http = new HttpClient({
    proxy: config.http.proxy, // unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment
    connectTimeoutMs: config.http.connectTimeoutMs,
    firstByteTimeoutMs: config.http.firstByteTimeoutMs,
    idleTimeoutMs: config.http.idleTimeoutMs,
  });
  const shared = config.state.redis && (await openSharedState(config.state.redis, log));
  const store = shared?.store ?? (await openSqliteStore(resolve(config.state.path)));
  // Listens when the config sets it up, or when an adapter first mounts a webhook on it.
  const httpServer = new HttpServer({ ...config.http.server, log: log.child('http') });
  const metrics = config.metrics ? new Metrics() : undefined;
  const bot = createBot({
    adapters,
    plugins,
    locale: config.locale,
    log,
    redactor,
    http,
    store,
    httpServer,
    ...(shared && { budget: shared.budget, jobs: shared.jobs, queue: shared.queue, slots: shared.slots }),
    ...(metrics && { metrics }),
  });
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
  // The core's timers do not keep the process alive; while the bot runs and shuts down, this does,
  // so a shutdown that waits on a rate budget still sends its last edits before the process exits.
  const alive = setInterval(() => {}, 60_000);
  let watching: { close(): void } | undefined;
  try {
    // Health (and metrics) answer from before the bot starts until it has stopped.
    if (config.http.server || config.metrics)
      await mountObservability(httpServer, { bot, metrics, metricsPath: config.metrics?.path });
    if (config.http.server) await httpServer.listen();
    await bot.start();
    if (args.watch) {
      const { cwd } = where;
      const { path: configPath, raw } = reading;
      watching = watchForChanges({
        bot,
        cwd,
        configPath,
        raw,
        plugins,
        defaults: defaultPlugins,
        log,
        redactor,
      });
    }
    await bot.stopped;
  } finally {
    watching?.close();
    clearInterval(alive);
    await httpServer.close();
    await store.close();
    await shared?.close();
  }
  return 0;
}

/**
 * With `state.redis`, the store, the send budgets, the running jobs, the work queue and the
 * plugins' limits (slots) are in
 * Redis, shared by every process started with the same config.
 */
async function openSharedState(
  options: { readonly url: string; readonly prefix: string },
  log: ReturnType<typeof createLogger>,
) {
  const redis = await connectRedis(options.url);
  const { prefix } = options;
  const queue = new RedisWorkQueue(redis, { prefix, log: log.child('work') });
  const jobs = await openRedisJobs(redis, { prefix, owner: queue.consumer });
  const slots = await RedisSlots.open(redis, { prefix, log: log.child('slots') });
  log.info('state in redis', { url: describeRedisUrl(options.url), consumer: queue.consumer });
  return {
    store: new RedisStore(redis, { prefix }),
    budget: new RedisBudget(redis, { prefix }),
    jobs,
    queue,
    slots,
    async close() {
      await slots.close();
      await jobs.close();
      await redis.quit().catch(() => {});
    },
  };
}

/** The messages of what caused `error`, outermost first, at most three. */
function causesOf(error: unknown): string[] {
  const messages: string[] = [];
  let cause = error instanceof Error ? error.cause : undefined;
  while (cause !== undefined && messages.length < 3) {
    const message = cause instanceof Error ? cause.message : String(cause);
    if (message) messages.push(message);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return messages;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`chorus: ${error.message}\n${usage}`);
      process.exit(2);
    }
    if (error instanceof InitError) {
      process.stderr.write(`chorus: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      for (const issue of error.issues)
        process.stderr.write(`chorus: config error: ${redactor.redact(issue)}\n`);
      process.exit(2);
    }
    const text =
      error instanceof ChorusError ? `${error.name}(${error.code}): ${error.message}` : String(error);
    process.stderr.write(`chorus: ${redactor.redact(text)}\n`);
    const causes = causesOf(error);
    if (causes.length > 0) process.stderr.write(`chorus:   because: ${redactor.redact(causes.join(': '))}\n`);
    if (error instanceof AdapterError) {
      process.stderr.write(
        error.remote
          ? `chorus:   the platform refused: check adapters.${error.adapter} (its token, its ids)\n`
          : `chorus:   the platform was not reached: check the network, a proxy (HTTPS_PROXY), and adapters.${error.adapter}'s api address\n`,
      );
    }
    if (!(error instanceof ChorusError) && error instanceof Error && error.stack) {
      process.stderr.write(`${redactor.redact(error.stack)}\n`);
    }
    process.exit(1);
  },
);
