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
import { ConfigError } from './errors.ts';
import { type Redactor, secretEnvName } from './logger.ts';
import { validateConfig } from './plugin.ts';

/** The top level of a config file. Adapter and plugin sections are checked by their own schemas. */
export const configSchema = z.strictObject({
  /** Locale of the bot's strings: `en` or `zh-CN`. */
  locale: z.enum(['en', 'zh-CN']).default('en'),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') })
    .default({ level: 'info' }),
  http: z
    .strictObject({
      proxy: z.url().optional(),
      connectTimeoutMs: z.number().int().positive().default(10_000),
      firstByteTimeoutMs: z.number().int().positive().default(60_000),
      idleTimeoutMs: z.number().int().positive().default(60_000),
    })
    .default({ connectTimeoutMs: 10_000, firstByteTimeoutMs: 60_000, idleTimeoutMs: 60_000 }),
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
  const config = await parseConfig(source, {
    env: merged,
    file: origin ?? '(built-in default)',
    redactor: options.redactor,
  });
  return { config, path: origin };
}

/** Parses and validates config text. */
export async function parseConfig(
  source: string,
  options: {
    env: Readonly<Record<string, string | undefined>>;
    file?: string;
    redactor?: Redactor | undefined;
  },
): Promise<ChorusConfig> {
  const file = options.file ?? 'config';
  const lineCounter = new LineCounter();
  const document = parseDocument(source, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const where = error.linePos?.[0];
        return `${file}${where ? `:${where.line}:${where.col}` : ''}: ${error.message.split('\n')[0]}`;
      }),
    );
  }
  const raw = toPlainValue(document, file, lineCounter);
  const issues: string[] = [];
  const interpolated = interpolate(raw, '', options.env, issues, options.redactor);
  if (issues.length > 0) throw new ConfigError(issues);
  return validateConfig(configSchema, interpolated, '');
}

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

/** Replaces `${VAR}` and `${VAR:-default}` in every string; reports unset variables by key path. */
function interpolate(
  value: unknown,
  path: string,
  env: Readonly<Record<string, string | undefined>>,
  issues: string[],
  redactor: Redactor | undefined,
): unknown {
  if (typeof value === 'string') {
    if (isSecretPath(path) && !value.includes('${')) redactor?.add(value);
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_, name: string, fallback?: string) => {
        const found = env[name];
        if (found === undefined || found === '') {
          if (fallback !== undefined) return fallback;
          issues.push(`${path || '(root)'}: environment variable ${name} is not set`);
          return '';
        }
        if (secretEnvName.test(name) || isSecretPath(path)) redactor?.add(found);
        return found;
      },
    );
  }
  if (Array.isArray(value))
    return value.map((item, index) => interpolate(item, `${path}[${index}]`, env, issues, redactor));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        interpolate(item, path ? `${path}.${key}` : key, env, issues, redactor),
      ]),
    );
  }
  return value;
}
