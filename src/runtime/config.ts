/**
 * Configuration: one YAML file (default `config/chorus.yaml`, or `--config FILE`, or
 * `CHORUS_CONFIG`), with `${ENV_VAR}` and `${ENV_VAR:-default}` taken from the environment and an
 * optional `.env` file beside the config or in the working directory. Validation errors name the
 * key path and what was expected, one line each.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { type Alias, type Document, LineCounter, parseDocument, visit } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { type Redactor, secretEnvName } from '../logger.ts';
import { validateConfig } from '../plugin.ts';

/** The top level of a config file. Adapter and plugin sections are checked by their own schemas. */
export const configSchema = z.strictObject({
  /** Locale of the bot's strings: `en` or `zh-CN`. */
  locale: z.enum(['en', 'zh-CN']).default('en'),
  log: z
    .strictObject({
      level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
      /** `text` for people, `json` for one JSON object a line (log collectors). */
      format: z.enum(['text', 'json']).default('text'),
    })
    .default({ level: 'info', format: 'text' }),
  /**
   * Prometheus metrics on the process's HTTP server (`http.server`), beside `/healthz` and
   * `/readyz`. Unset, nothing is counted.
   */
  metrics: z
    .strictObject({
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~/-]*$/, 'expected a path such as /metrics')
        .refine((path) => path !== '/healthz' && path !== '/readyz', 'taken by the health endpoints')
        .default('/metrics'),
    })
    .optional(),
  http: z
    .strictObject({
      proxy: z.url().optional(),
      connectTimeoutMs: z.number().int().positive().default(10_000),
      firstByteTimeoutMs: z.number().int().positive().default(60_000),
      idleTimeoutMs: z.number().int().positive().default(60_000),
      /**
       * The process's one HTTP server, where webhooks mount. Set, it starts with the bot; unset, it
       * starts at these defaults when an adapter mounts on it.
       */
      server: z
        .strictObject({
          // Loopback by default: the server speaks plain HTTP behind a TLS proxy on the same host,
          // and nothing mounted on it should face the internet by accident. 0.0.0.0 in a container.
          host: z.string().min(1).default('127.0.0.1'),
          port: z.number().int().min(0).max(65535).default(8080),
          maxBodyBytes: z
            .number()
            .int()
            .positive()
            .default(1024 * 1024),
        })
        .optional(),
    })
    .default({ connectTimeoutMs: 10_000, firstByteTimeoutMs: 60_000, idleTimeoutMs: 60_000 }),
  /** State that outlives a run (scheduled jobs), in a SQLite file; relative to the working directory. */
  state: z
    .strictObject({
      path: z.string().min(1).default('.chorus/state.sqlite'),
      /**
       * Set, the store, the send budgets, the running jobs and the work queue live in this Redis,
       * and every process started with the same config is one bot (`path` is then unused).
       */
      redis: z
        .strictObject({
          url: z
            .string()
            .regex(
              /^(rediss?|redis\+unix):\/\/\S+$/,
              'a URL like redis://host:6379 (or redis+unix:///path/to.sock)',
            ),
          /** Put before every key, so several bots can share one Redis. */
          prefix: z.string().min(1).default('chorus:'),
        })
        .optional(),
    })
    .default({ path: '.chorus/state.sqlite' }),
  /** Adapter instances by name. The name is the adapter type unless `type` says otherwise. */
  adapters: z
    .record(z.string(), z.record(z.string(), z.unknown()).nullable())
    .refine((a) => Object.keys(a).length > 0, {
      message: 'at least one adapter is needed (for example `console: {}`)',
    }),
  /** Plugins by name: a local folder under `plugins/` or an npm package. `false` turns one off. */
  plugins: z
    .record(z.string(), z.union([z.record(z.string(), z.unknown()), z.boolean(), z.null()]))
    .default({}),
});

/** A validated config. */
export type ChorusConfig = z.output<typeof configSchema>;

/** Where the config came from, for messages. */
export interface LoadedConfig {
  readonly config: ChorusConfig;
  /** The file read, or `undefined` for the embedded default. */
  readonly path: string | undefined;
}

/**
 * A config file read and interpolated, before every section is checked. `issues` holds what is
 * wrong so far (unset variables, top-level keys); the caller adds the adapters' and plugins'
 * problems, so one run reports them all.
 */
export interface ConfigReading {
  /** The interpolated document, unchecked. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** The checked top level, when it has no problems. */
  readonly config: ChorusConfig | undefined;
  readonly issues: readonly string[];
  /** The file read, or `undefined` for the embedded default. */
  readonly path: string | undefined;
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** `--config` from the command line. */
  readonly path?: string | undefined;
  readonly cwd?: string;
  /** Default: `process.env`. A `.env` file adds variables that are not set here. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Used when no path is given and the default file does not exist. */
  readonly fallback?: string;
  /** Values read from secret-looking variables are added to it, to keep them out of logs. */
  readonly redactor?: Redactor;
}

/** Where the config is looked for when no path is given. */
export const defaultConfigPath = 'config/chorus.yaml';

/** Finds, reads, interpolates and validates the config. Throws `ConfigError` with one line per problem. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const reading = await readConfig(options);
  if (!reading.config) throw new ConfigError(reading.issues);
  return { config: reading.config, path: reading.path };
}

/**
 * Finds, reads and interpolates the config and checks its top level, collecting problems instead
 * of stopping at the first. Throws `ConfigError` only when there is no document to check (no
 * file, or YAML that does not parse).
 */
export async function readConfig(options: LoadConfigOptions = {}): Promise<ConfigReading> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const explicit = options.path ?? env.CHORUS_CONFIG;
  const path = resolve(cwd, explicit ?? defaultConfigPath);
  let source: string;
  let origin: string | undefined = path;
  if (existsSync(path)) source = readFileSync(path, 'utf8');
  else if (explicit === undefined && options.fallback !== undefined) {
    source = options.fallback;
    origin = undefined;
  } else throw new ConfigError([`config file not found: ${path}`]);

  const dotenv = [resolve(dirname(path), '.env'), resolve(cwd, '.env')].find((file) => existsSync(file));
  const merged = { ...(dotenv ? parseEnv(readFileSync(dotenv, 'utf8')) : {}), ...env };
  options.redactor?.addEnv(merged);
  const reading = await checkConfig(source, {
    env: merged,
    file: origin ?? '(built-in default)',
    redactor: options.redactor,
  });
  return { ...reading, path: origin };
}

/** Parses and validates config text. Throws `ConfigError` with every problem of the top level. */
export async function parseConfig(
  source: string,
  options: {
    env: Readonly<Record<string, string | undefined>>;
    file?: string;
    redactor?: Redactor | undefined;
  },
): Promise<ChorusConfig> {
  const reading = await checkConfig(source, options);
  if (!reading.config) throw new ConfigError(reading.issues);
  return reading.config;
}

async function checkConfig(
  source: string,
  options: {
    env: Readonly<Record<string, string | undefined>>;
    file?: string;
    redactor?: Redactor | undefined;
  },
): Promise<Omit<ConfigReading, 'path'>> {
  const file = options.file ?? 'config';
  // `${VAR}` is not plain YAML inside flow maps (`{ secret: ${X} }`), so each one is swapped for a
  // placeholder before parsing and interpolated in the parsed values: a variable's value can never
  // change the document's structure.
  const references: string[] = [];
  const prepared = source.replace(reference, (match) => `${placeholder}${references.push(match) - 1}_`);
  const lineCounter = new LineCounter();
  const document = parseDocument(prepared, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const where = error.linePos?.[0];
        return `${file}${where ? `:${where.line}:${where.col}` : ''}: ${error.message.split('\n')[0]}`;
      }),
    );
  }
  const parsed = toPlainValue(document, file, lineCounter);
  const issues: string[] = [];
  const raw = interpolate(parsed, '', { ...options, references, issues });
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      raw: {},
      config: undefined,
      issues: [`${file}: expected a mapping of keys (adapters:, plugins:, ...)`],
    };
  }
  let config: ChorusConfig | undefined;
  try {
    config = await validateConfig(configSchema, raw, '');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
  }
  return { raw: raw as Record<string, unknown>, config: issues.length === 0 ? config : undefined, issues };
}

const reference = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const placeholder = '__chorus_env_';
const placeholderPattern = /__chorus_env_(\d+)_/g;
// A key that holds a secret (`apiKey`, `x-api-key`, `secretToken`); every value under `headers` is one too.
/**
 * The document as plain values. Aliases are expanded at most `maxAliasCount` times in all, so an
 * alias bomb (aliases of aliases, growing exponentially) is one config error, not a frozen bot.
 */
function toPlainValue(document: Document, file: string, lineCounter: LineCounter): unknown {
  try {
    return document.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    // Point at the alias concerned: the unresolved one, or the first one of a bomb.
    const unresolved = /Unresolved alias.*: (.*)$/.exec(error.message)?.[1];
    let alias: Alias | undefined;
    visit(document, {
      Alias(_, node) {
        if (unresolved === undefined || node.source === unresolved) {
          alias = node;
          return visit.BREAK;
        }
        return undefined;
      },
    });
    const where = alias?.range ? lineCounter.linePos(alias.range[0]) : undefined;
    const what = unresolved
      ? `alias *${unresolved} has no anchor before it`
      : 'aliases expand too much (more than 100 times): an alias bomb?';
    throw new ConfigError([`${file}${where ? `:${where.line}:${where.col}` : ''}: ${what}`]);
  }
}

const secretName = /token|secret|password|passwd|api[-_]?key|auth|cookie/i;
const isSecretPath = (path: string) =>
  secretName.test(path.slice(path.lastIndexOf('.') + 1)) || /(^|\.)headers\./i.test(path);

interface InterpolationScope {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly redactor?: Redactor | undefined;
  readonly references: readonly string[];
  readonly issues: string[];
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string; reports unset variables by key path. */
function interpolate(value: unknown, path: string, scope: InterpolationScope): unknown {
  if (typeof value === 'string') {
    if (isSecretPath(path) && !placeholderPattern.test(value)) scope.redactor?.add(value);
    placeholderPattern.lastIndex = 0;
    return value.replace(placeholderPattern, (_, index: string) =>
      scope.references[Number(index)]!.replace(reference, (_match, name: string, fallback?: string) => {
        const found = scope.env[name];
        if (found === undefined || found === '') {
          if (fallback !== undefined) return fallback;
          scope.issues.push(`${path || '(root)'}: environment variable ${name} is not set`);
          return '';
        }
        if (secretEnvName.test(name) || isSecretPath(path)) scope.redactor?.add(found);
        return found;
      }),
    );
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, `${path}[${index}]`, scope));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        interpolate(item, path ? `${path}.${key}` : key, scope),
      ]),
    );
  }
  return value;
}
