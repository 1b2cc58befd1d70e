/**
 * Streaming text into a chat: pieces become one message that grows through coalesced edits,
 * continues in new messages when it outgrows the platform's limit, uses drafts where the adapter
 * offers them, and always ends with a final edit (rendered in the requested format), a note when
 * cancelled or cut short, and nothing lost.
 */
import type { Channel } from './channel.ts';
import type { Clock, TimerHandle } from './clock.ts';
import {
  abortReason,
  BackendError,
  ChorusError,
  cancelledBy,
  isCancellation,
  TimeoutError,
} from './errors.ts';
import type { Logger, Redactor } from './logger.ts';
import type { SentMessage, TextFormat } from './message.ts';
import { splitText } from './text.ts';

/** Options of a text stream. */
export interface StreamOptions {
  /** Put before the text of the first message (a model's name, say). */
  readonly header?: string;
  /** How the final text is rendered. Pieces stream as plain text. Default `plain`. */
  readonly format?: TextFormat;
  /**
   * At most one intermediate edit per this many ms. Default: as fast as the adapter's rate budget
   * allows (the outbox coalesces edits that wait).
   */
  readonly editIntervalMs?: number;
  /** Show the growing text as a draft where the adapter offers drafts (Telegram private chats). */
  readonly drafts?: boolean;
}

/** How a stream ended. */
export interface StreamResult {
  readonly text: string;
  readonly messages: readonly SentMessage[];
  readonly outcome: 'done' | 'cancelled' | 'failed';
  readonly error?: unknown;
}

/** What a text stream is built from (a job's context provides it). */
export interface TextStreamDeps {
  /** The chat, through its outbox, bound to the message the stream answers. */
  readonly channel: Channel;
  readonly options: StreamOptions;
  readonly t: (key: string, params?: Readonly<Record<string, string | number>>) => string;
  readonly redactor: Redactor;
  readonly clock: Clock;
  readonly log: Logger;
  readonly keepTyping: () => () => void;
}

const draftIntervalMs = 300;
let nextDraftId = 1;

/** A message that grows as pieces are written. Call `end()` exactly once. */
export class TextStream {
  readonly #deps: TextStreamDeps;
  readonly #messages: SentMessage[] = [];
  readonly #max: number;
  readonly #drafting: boolean;
  readonly #draftId = nextDraftId++;
  readonly #stopTyping: () => void;
  #full = '';
  #tail: string;
  #current: SentMessage | undefined;
  /** The notice's message on its way: what comes next waits for it, and edits it. */
  #opening: Promise<void> | undefined;
  #lastShownAt = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  #ended = false;

  constructor(deps: TextStreamDeps) {
    this.#deps = deps;
    this.#max = deps.channel.limits.maxTextLength;
    this.#tail = deps.options.header ?? '';
    this.#drafting = Boolean(deps.options.drafts && deps.channel.drafts);
    this.#stopTyping = deps.keepTyping();
  }

  /** All text written so far (without header and notes). */
  get text(): string {
    return this.#full;
  }

  /**
   * Shows `text` in place of the answer until the first piece arrives ("queued, 2 ahead"). It is
   * not part of the answer: the first `write` replaces it, in the same message. Never rejects: a
   * notice that cannot be shown is left out.
   */
  async notice(text: string): Promise<void> {
    await this.#opening;
    if (this.#ended || this.#full) return;
    const shown = `${this.#tail}${text}`;
    if (!this.#current) {
      this.#opening = this.#deps.channel.send({ text: shown, partial: true }).then(
        (sent) => {
          this.#current = sent;
          this.#messages.push(sent);
        },
        () => {},
      );
      await this.#opening;
    } else {
      this.#deps.channel.edit(this.#current.ids[0]!, { text: shown }, { final: false }).catch(() => {});
    }
  }

  /** Appends a piece. Resolves once it is on its way (a first message is sent, not every edit awaited). */
  async write(piece: string): Promise<void> {
    if (this.#ended || !piece) return;
    this.#stopTyping();
    this.#full += piece;
    this.#tail += piece;
    await this.#opening;
    await this.#overflow();
    if (!this.#current && !this.#drafting) {
      if (!this.#tail.trim()) return;
      this.#current = await this.#deps.channel.send({ text: this.#tail, partial: true });
      this.#messages.push(this.#current);
      this.#lastShownAt = this.#deps.clock.now();
      return;
    }
    this.#scheduleShow();
  }

  /** Ends the stream with its final text and, unless `done`, a note saying why it stopped. */
  async end(outcome: StreamResult['outcome'] = 'done', error?: unknown): Promise<StreamResult> {
    if (this.#ended) throw new ChorusError('STREAM_ENDED', 'this stream has already ended');
    this.#ended = true;
    this.#stopTyping();
    await this.#opening;
    if (this.#timer !== undefined) this.#deps.clock.clearTimeout(this.#timer);
    const { t } = this.#deps;
    if (outcome !== 'done') {
      const note =
        outcome === 'cancelled'
          ? t(cancelledBy(error) === 'reload' ? 'stream.reloaded' : 'stream.cancelled')
          : t('stream.failed', { reason: describeFailure(error, this.#deps.redactor, t) });
      this.#tail = this.#full.trim() ? `${this.#tail.trimEnd()}\n\n${note}` : `${this.#tail}${note}`;
    } else if (!this.#full.trim()) {
      this.#tail = `${this.#tail}${t('stream.empty')}`;
    }
    await this.#overflow();
    await this.#finalize(this.#tail);
    return {
      text: this.#full,
      messages: [...this.#messages],
      outcome,
      ...(error !== undefined && { error }),
    };
  }

  /** Moves every full part of the tail into its own final message, keeping the rest as the tail. */
  async #overflow(): Promise<void> {
    if (this.#tail.length <= this.#max) return;
    const parts = splitText(this.#tail, this.#max);
    this.#tail = parts.pop()!;
    for (const part of parts) await this.#finalize(part);
  }

  /** Sends `text` as the final form of the current message, then starts a new one. */
  async #finalize(full: string): Promise<void> {
    const { channel, options } = this.#deps;
    const text = full.trimEnd();
    const format = options.format && options.format !== 'plain' ? { format: options.format } : {};
    if (this.#current) {
      await channel.edit(this.#current.ids[0]!, { text, ...format }, { final: true });
    } else if (text.trim()) {
      this.#messages.push(await channel.send({ text, ...format }));
    }
    this.#current = undefined;
  }

  #scheduleShow(): void {
    const interval = this.#drafting
      ? Math.max(draftIntervalMs, this.#deps.options.editIntervalMs ?? 0)
      : this.#deps.options.editIntervalMs;
    if (interval === undefined) {
      this.#show();
      return;
    }
    if (this.#timer !== undefined) return;
    const wait = this.#lastShownAt + interval - this.#deps.clock.now();
    if (wait <= 0) {
      this.#show();
      return;
    }
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#ended) this.#show();
    }, wait);
  }

  /** Shows the tail now: a draft, or an intermediate edit that the outbox may coalesce. */
  #show(): void {
    const { channel, log } = this.#deps;
    this.#lastShownAt = this.#deps.clock.now();
    if (this.#drafting) {
      channel
        .draft(this.#draftId, this.#tail)
        .catch((error: unknown) => log.debug('draft failed', { error }));
    } else if (this.#current) {
      channel.edit(this.#current.ids[0]!, { text: this.#tail }, { final: false }).catch(() => {});
    }
  }
}

/** Writes every piece of `pieces` into `stream` and ends it: done, cancelled (signal) or failed. */
export async function pipeStream(
  stream: TextStream,
  pieces: AsyncIterable<string>,
  signal: AbortSignal,
): Promise<StreamResult> {
  const iterator = pieces[Symbol.asyncIterator]();
  try {
    for (;;) {
      const step = await nextOrAbort(iterator, signal);
      if (step.done) break;
      await stream.write(step.value);
    }
  } catch (error) {
    Promise.resolve(iterator.return?.()).catch(() => {});
    if (signal.aborted) return stream.end('cancelled', abortReason(signal));
    return stream.end(isCancellation(error) ? 'cancelled' : 'failed', error);
  }
  return stream.end('done');
}

/**
 * A short reason a chat user may see. A backend's failure is told by kind ("timed out",
 * "refused (HTTP 401)"), never with what the backend said; other Chorus errors by their message,
 * redacted; anything else is "internal error". The details belong in the log.
 */
export function describeFailure(
  error: unknown,
  redactor: Redactor,
  t: (key: string, params?: Readonly<Record<string, string | number>>) => string,
): string {
  if (error instanceof TimeoutError) return t('failure.timeout');
  if (error instanceof BackendError) {
    switch (error.kind) {
      case 'timeout':
        return t('failure.timeout');
      case 'status':
        return error.status === undefined
          ? t('failure.refused')
          : t('failure.refusedStatus', { status: error.status });
      case 'invalid':
        return t('failure.invalid');
      case 'blocked':
        return t('failure.blocked');
      default:
        return t('failure.network');
    }
  }
  if (error instanceof ChorusError) return redactor.redact(error.message);
  return t('failure.internal');
}

/** Resolves with the next step of `iterator`, or rejects when `signal` aborts first. */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(iterator.next()).then(
      (step) => {
        signal.removeEventListener('abort', onAbort);
        resolve(step);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
