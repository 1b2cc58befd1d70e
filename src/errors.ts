/**
 * Error classes. Every error Chorus throws has a stable `code` and a `name`, and keeps
 * "the remote refused" (an HTTP status, a platform error) apart from "the network failed".
 */

/** Base class of every error Chorus throws. */
export class ChorusError extends Error {
  override name = 'ChorusError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A configuration file or a plugin's config did not validate. `issues` name the key paths. */
export class ConfigError extends ChorusError {
  override name = 'ConfigError';
  readonly issues: readonly string[];

  constructor(issues: readonly string[], options?: { cause?: unknown }) {
    super(
      'CONFIG_INVALID',
      issues.length === 1 ? issues[0]! : `${issues.length} problems:\n  ${issues.join('\n  ')}`,
      options,
    );
    this.issues = issues;
  }
}

/** A platform adapter failed: the platform refused a request (`remote`) or could not be reached. */
export class AdapterError extends ChorusError {
  override name = 'AdapterError';
  readonly adapter: string;
  /** True when the platform answered and refused; false when the network failed. */
  readonly remote: boolean;

  constructor(
    adapter: string,
    message: string,
    options: { remote: boolean; code?: string; cause?: unknown },
  ) {
    super(options.code ?? (options.remote ? 'ADAPTER_REFUSED' : 'ADAPTER_NETWORK'), message, options);
    this.adapter = adapter;
    this.remote = options.remote;
  }
}

/** A platform asked us to slow down. The outbox waits `retryAfterMs` and retries. */
export class RateLimitError extends ChorusError {
  override name = 'RateLimitError';
  readonly retryAfterMs: number;

  constructor(
    retryAfterMs: number,
    message = `rate limited, retry after ${retryAfterMs} ms`,
    options?: { cause?: unknown },
  ) {
    super('RATE_LIMITED', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * A backend (image generator, LLM, any HTTP service a plugin calls) failed.
 * `kind` says how: `network` (unreachable, reset), `status` (answered with an error status),
 * `invalid` (answered something we could not use: HTML, a non-image, an answer over a cap),
 * `timeout`, or `blocked` (a URL it gave leads somewhere Chorus will not go: a private address,
 * a scheme other than http and https).
 */
export class BackendError extends ChorusError {
  override name = 'BackendError';
  readonly backend: string;
  readonly kind: 'network' | 'status' | 'invalid' | 'timeout' | 'blocked';
  readonly status: number | undefined;

  constructor(
    backend: string,
    kind: BackendError['kind'],
    message: string,
    options?: { status?: number; cause?: unknown },
  ) {
    super(`BACKEND_${kind.toUpperCase()}`, message, options);
    this.backend = backend;
    this.kind = kind;
    this.status = options?.status;
  }
}

/** A wait or a task ran past its time limit. */
export class TimeoutError extends ChorusError {
  override name = 'TimeoutError';
  readonly timeoutMs: number;

  constructor(timeoutMs: number, message = `timed out after ${timeoutMs} ms`) {
    super('TIMEOUT', message);
    this.timeoutMs = timeoutMs;
  }
}

/** Who stopped a job: a user (`/cancel`, the Cancel button) or the caller, shutdown, or a plugin reload. */
export type CancelledBy = 'user' | 'shutdown' | 'reload';

/** A job was cancelled: by the user (`/cancel`), by shutdown, or by the caller's signal. */
export class CancelledError extends ChorusError {
  override name = 'CancelledError';
  /** Who stopped it: what the job's unfinished messages say ("stopped: shutting down"). */
  readonly by: CancelledBy;

  constructor(message = 'cancelled', options: { by?: CancelledBy } = {}) {
    super('CANCELLED', message);
    this.by = options.by ?? 'user';
  }
}

/** Who stopped the work that failed with `reason`: shutdown, a reload, or otherwise a user. */
export function cancelledBy(reason: unknown): CancelledBy {
  return reason instanceof CancelledError ? reason.by : 'user';
}

/** True for errors that mean "stopped on purpose", as opposed to failed. */
export function isCancellation(error: unknown): boolean {
  return (
    error instanceof CancelledError ||
    (error instanceof Error && error.name === 'AbortError') ||
    (error instanceof DOMException && error.name === 'AbortError')
  );
}

/** The reason of an aborted signal as an Error (signals may carry anything). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new CancelledError(reason === undefined ? 'cancelled' : String(reason));
}
