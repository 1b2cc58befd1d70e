/**
 * Structured logging that never prints a secret. Lines go to stderr (stdout belongs to the
 * console adapter), one event a line: time, level, scope, message, then `key=value` fields; or,
 * with `format: 'json'`, one JSON object a line: `time` (milliseconds since the epoch, as pino
 * writes it), `level`, `scope`, `msg`, then the fields.
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
  /**
   * Whether lines of `level` are written, so a caller can skip building fields nobody reads.
   * Optional: a logger without it is taken to write everything.
   */
  enabled?(level: Exclude<LogLevel, 'silent'>): boolean;
}

/** How a line is written: `text` for people, `json` for log collectors. */
export type LogFormat = 'text' | 'json';

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
  /** The secrets, as a list to look for. */
  #forms: readonly string[] = [];
  /**
   * Text shorter than this holds no secret: not the shortest registered one, nor a bearer header
   * (`Bot ` and 16 characters) or a bot token (longer still).
   */
  #shortest = 20;

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
        this.#forms = [...this.#secrets];
        this.#shortest = Math.min(this.#shortest, form.length);
      }
    }
  }

  /** Registers the value of every variable in `env` whose name contains KEY, TOKEN, SECRET, PASSWORD... */
  addEnv(env: Readonly<Record<string, string | undefined>>): void {
    for (const [name, value] of Object.entries(env)) if (secretEnvName.test(name)) this.add(value);
  }

  redact(text: string): string {
    if (text.length < this.#shortest) return text;
    // Most lines carry no secret: looking for each is cheaper than a pass of the pattern.
    if (this.#forms.some((form) => text.includes(form))) {
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
    text = text
      .replace(/(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}/g, '***')
      .replace(/(Bearer|Bot)\s+[A-Za-z0-9._~+/=-]{16,}/g, '$1 ***');
    // A password in a URL (`https://user:pw@host`), which no config key names as a secret.
    if (text.includes('@') && text.includes('://'))
      text = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, '$1***@');
    return text;
  }
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  redactor?: Redactor;
  /** Where lines go. Default: stderr. */
  write?: (line: string) => void;
  scope?: string;
  /** Default `text`. */
  format?: LogFormat;
}

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = levelRank[options.level ?? 'info'];
  const redactor = options.redactor ?? new Redactor();
  const write = options.write ?? ((line: string) => console.error(line));

  const json = options.format === 'json';
  // Formatting a date costs more than the rest of a line: lines of the same millisecond share one.
  let isoAt = 0;
  let iso = '';
  const isoNow = () => {
    const now = Date.now();
    if (now !== isoAt) {
      isoAt = now;
      iso = new Date(now).toISOString();
    }
    return iso;
  };
  const make = (scope: string): Logger => {
    const quotedScope = JSON.stringify(scope);
    // The message and each value are redacted before they are quoted or escaped, one by one:
    // short ones (most) need no look at all, and a line's structure is never scanned.
    const log = (level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields) => {
      if (levelRank[level] < threshold) return;
      const stack = level === 'debug';
      let line: string;
      if (json) {
        line = `{"time":${Date.now()},"level":"${level}","scope":${quotedScope},"msg":${quote(redactor.redact(message))}`;
        if (fields) {
          for (const key in fields) {
            if (reservedJsonKeys.has(key)) continue;
            line += `,${quote(key)}:${jsonValue(fields[key], stack, redactor)}`;
          }
        }
        line += '}';
      } else {
        line = `${isoNow()} ${level.toUpperCase().padEnd(5)} [${scope}] ${redactor.redact(message)}`;
        if (fields) {
          for (const key in fields) line += ` ${key}=${formatValue(fields[key], stack, redactor)}`;
        }
      }
      write(line);
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (child) => make(`${scope}:${child}`),
      enabled: (level) => levelRank[level] >= threshold,
    };
  };
  return make(options.scope ?? 'chorus');
}

/** Keys of a JSON line that fields may not overwrite. */
const reservedJsonKeys = new Set(['time', 'level', 'scope', 'msg']);

/** An error as one string: name, code, message, its cause's, and (at debug level) the stack. */
function describeError(error: Error, withStack: boolean): string {
  const code = (error as { code?: unknown }).code;
  const head = `${error.name}${typeof code === 'string' ? `(${code})` : ''}: ${error.message}`;
  const cause = error.cause instanceof Error ? ` <- ${error.cause.name}: ${error.cause.message}` : '';
  return withStack && error.stack ? `${head}${cause}\n${error.stack}` : `${head}${cause}`;
}

/**
 * A string as JSON. Short strings with nothing to escape (most keys and values) are quoted as
 * they are, which costs far less than `JSON.stringify`.
 */
function quote(text: string): string {
  if (text.length > 64) return JSON.stringify(text);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 32 || code === 34 || code === 92 || (code >= 0xd800 && code <= 0xdfff))
      return JSON.stringify(text);
  }
  return `"${text}"`;
}

function jsonValue(value: unknown, withStack: boolean, redactor: Redactor): string {
  if (typeof value === 'string') return quote(redactor.redact(value));
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : `"${value}"`;
  if (typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'null';
  if (value instanceof Error) return JSON.stringify(redactor.redact(describeError(value, withStack)));
  try {
    // Secrets JSON-escaped inside are registered in that form too.
    return redactor.redact(JSON.stringify(value) ?? 'null');
  } catch {
    return '"[unserializable]"';
  }
}

function formatValue(value: unknown, withStack: boolean, redactor: Redactor): string {
  if (typeof value === 'string') {
    const text = redactor.redact(value);
    return /^[\w.:/@-]+$/.test(text) ? text : JSON.stringify(text);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (value instanceof Error) return JSON.stringify(redactor.redact(describeError(value, withStack)));
  try {
    return redactor.redact(JSON.stringify(value));
  } catch {
    return '[unserializable]';
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ level: 'silent' });
