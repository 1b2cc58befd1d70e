/**
 * Structured logging that never prints a secret. Lines go to stderr (stdout belongs to the
 * console adapter), one event a line: time, level, scope, message, then `key=value` fields.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Extra data for a log line. Errors are printed by name, code and message. */
export type LogFields = Record<string, unknown>;

/** A scoped logger. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines carry `scope` (`chorus:draw`). */
  child(scope: string): Logger;
}

/** Names of environment variables whose values are secrets. */
export const secretEnvName = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH/i;

/**
 * Removes secrets from text: every registered value (tokens, API keys, header values read from
 * the config), also as it looks URL-encoded, JSON-escaped or in base64, plus anything shaped like
 * a Telegram bot token or a bearer header.
 */
export class Redactor {
  readonly #secrets = new Set<string>();
  #pattern: RegExp | undefined;

  /** Registers a secret. Very short values are ignored: masking them would mangle ordinary text. */
  add(secret: string | undefined): void {
    if (!secret || secret.length < 6) return;
    for (const form of [
      secret,
      encodeURIComponent(secret),
      JSON.stringify(secret).slice(1, -1),
      btoa(String.fromCharCode(...new TextEncoder().encode(secret))).replace(/=+$/, ''),
    ]) {
      if (!this.#secrets.has(form)) {
        this.#secrets.add(form);
        this.#pattern = undefined;
      }
    }
  }

  /** Registers the value of every variable in `env` whose name contains KEY, TOKEN, SECRET, PASSWORD... */
  addEnv(env: Readonly<Record<string, string | undefined>>): void {
    for (const [name, value] of Object.entries(env)) if (secretEnvName.test(name)) this.add(value);
  }

  redact(text: string): string {
    if (this.#secrets.size > 0) {
      // One pass, longest first, so a secret that contains another is masked whole.
      this.#pattern ??= new RegExp(
        [...this.#secrets]
          .sort((a, b) => b.length - a.length)
          .map((secret) => secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('|'),
        'g',
      );
      text = text.replace(this.#pattern, '***');
    }
    return text
      .replace(/(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}/g, '***')
      .replace(/(Bearer|Bot)\s+[A-Za-z0-9._~+/=-]{16,}/g, '$1 ***');
  }
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  redactor?: Redactor;
  /** Where lines go. Default: stderr. */
  write?: (line: string) => void;
  scope?: string;
}

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = levelRank[options.level ?? 'info'];
  const redactor = options.redactor ?? new Redactor();
  const write = options.write ?? ((line: string) => console.error(line));

  const make = (scope: string): Logger => {
    const log = (level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields) => {
      if (levelRank[level] < threshold) return;
      let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${scope}] ${message}`;
      for (const [key, value] of Object.entries(fields ?? {}))
        line += ` ${key}=${formatValue(value, level === 'debug')}`;
      write(redactor.redact(line));
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (child) => make(`${scope}:${child}`),
    };
  };
  return make(options.scope ?? 'chorus');
}

function formatValue(value: unknown, withStack: boolean): string {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    const head = `${value.name}${typeof code === 'string' ? `(${code})` : ''}: ${value.message}`;
    const cause = value.cause instanceof Error ? ` <- ${value.cause.name}: ${value.cause.message}` : '';
    return JSON.stringify(withStack && value.stack ? `${head}${cause}\n${value.stack}` : `${head}${cause}`);
  }
  if (typeof value === 'string') return /^[\w.:/@-]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return '[unserializable]';
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ level: 'silent' });
