/**
 * The handler context: everything a command handler needs, bound to one chat, one user and one
 * job. Replies cannot go to another chat; every send and edit goes through the chat's outbox;
 * status messages are always finished, whatever becomes of the job.
 */
import type { AdapterLimits } from './adapter.ts';
import type { Channel } from './channel.ts';
import { type Clock, sleep } from './clock.ts';
import type { ParsedCommand } from './commands.ts';
import { AdapterError, cancelledBy } from './errors.ts';
import type { Translator } from './i18n.ts';
import type { Logger, Redactor } from './logger.ts';
import {
  type BotIdentity,
  type Button,
  type ChatAddress,
  type ImageRef,
  type IncomingMessage,
  type OutgoingImage,
  type OutgoingMessage,
  type SentMessage,
  toOutgoing,
  type UserRef,
} from './message.ts';
import type { Schedule, ScheduledRun } from './schedule-jobs.ts';
import { describeFailure, pipeStream, type StreamOptions, type StreamResult, TextStream } from './stream.ts';
import { splitText } from './text.ts';

export type { StreamOptions, StreamResult } from './stream.ts';
export { describeFailure };

/** A message that shows progress and must end in a final state. */
export interface StatusMessage {
  readonly sent: SentMessage;
  /** The text shown now. */
  readonly text: string;
  readonly finished: boolean;
  /** Shows new progress. Coalesced: only the latest text waiting in the outbox goes out. */
  update(text: string): void;
  /** Shows the final text. Later calls do nothing. */
  finish(text?: string): Promise<void>;
}

/** The context of one job. */
export interface Context {
  readonly jobId: string;
  readonly plugin: string;
  readonly message: IncomingMessage;
  readonly chat: ChatAddress;
  readonly user: UserRef;
  /** Who the bot is on this chat's platform. */
  readonly bot: BotIdentity;
  /** The command that started the job; `undefined` for a matcher. */
  readonly command: ParsedCommand | undefined;
  /** Fires on `/cancel` from this user in this chat, and on shutdown. Pass it to every request. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly clock: Clock;
  readonly locale: string;
  /** What the chat's platform accepts: text length, caption length. */
  readonly limits: AdapterLimits;
  /** A translated string in the chat's locale. */
  t(key: string, params?: Readonly<Record<string, string | number>>): string;
  /** Replies to the triggering message. Long text is split into several messages. */
  reply(message: string | OutgoingMessage): Promise<SentMessage>;
  /** Replies with images, as one album where the platform has albums. */
  replyImages(images: readonly OutgoingImage[], options?: { caption?: string }): Promise<SentMessage>;
  /** Replaces the text of a message this job sent. */
  edit(sent: SentMessage, message: string | OutgoingMessage): Promise<void>;
  /** Sends a status message; the job finishes it if the handler does not. */
  status(text: string, options?: { buttons?: readonly (readonly Button[])[] }): Promise<StatusMessage>;
  /**
   * Turns text pieces into one message that grows (continued in new messages when long). Ends
   * with "(cancelled)" when the job is cancelled, or a short note when the pieces fail.
   */
  stream(pieces: AsyncIterable<string>, options?: StreamOptions): Promise<StreamResult>;
  /** The push form of `stream`: write pieces as they come, then `end()` it. For several streams at once. */
  openStream(options?: StreamOptions): TextStream;
  /** Shows "typing..." once. */
  typing(): Promise<void>;
  /** Keeps "typing..." showing until the returned function is called or the job ends. */
  keepTyping(): () => void;
  /**
   * Downloads an image of the message (`c.message.images`), capped by the adapter, aborted with
   * the job. Throws an `AdapterError` where the platform's adapter cannot download images.
   */
  fetchImage(image: ImageRef): Promise<Uint8Array>;
  /** Runs this plugin's tasks later; jobs reply in this chat unless told otherwise. */
  readonly schedule: Schedule;
}

/** What a job's context is built from. */
export interface ContextDeps {
  readonly jobId: string;
  readonly plugin: string;
  readonly message: IncomingMessage;
  readonly command: ParsedCommand | undefined;
  /** Holds the job's AbortSignal, made when first asked for. */
  readonly abort: { readonly signal: AbortSignal };
  readonly bot: BotIdentity;
  /** The chat, through its outbox, bound to the message answered. */
  readonly channel: Channel;
  /** Whether the adapter shows "typing..." (no typing loop is run where it does not). */
  readonly canType: boolean;
  /** The adapter, for downloading the message's images. */
  readonly images: {
    readonly name: string;
    fetchImage?(image: ImageRef, signal?: AbortSignal): Promise<Uint8Array>;
  };
  readonly translator: Translator;
  readonly redactor: Redactor;
  readonly locale: string;
  readonly log: Logger;
  readonly clock: Clock;
  /** The scheduler; the context binds it to the plugin, chat and user when first used. */
  readonly schedule: { for(plugin: string, bound: { chat: ChatAddress; user?: UserRef }): Schedule };
  /** The scheduled job this run is, for a task's handler. */
  readonly scheduled?: ScheduledRun;
}

const typingRefreshMs = 4_000;

/** A job's context, and what the bot does when the job ends. */
export interface JobContextHandle extends Context {
  /** Stops typing and finishes the status messages the handler left open; resolves with how many. */
  finishAll(outcome: 'done' | 'failed' | 'cancelled', reason?: unknown): number | Promise<number>;
}

/** Builds a job's context. */
export function createContext(deps: ContextDeps): JobContextHandle {
  return new JobContext(deps);
}

/**
 * The context of one job. A class, so a job costs one object and no closures: a bot answers
 * thousands of messages a second, and most jobs use a few of these methods.
 */
class JobContext implements JobContextHandle {
  readonly jobId: string;
  readonly plugin: string;
  readonly message: IncomingMessage;
  readonly chat: ChatAddress;
  readonly user: UserRef;
  readonly bot: BotIdentity;
  readonly command: ParsedCommand | undefined;
  readonly log: Logger;
  readonly clock: Clock;
  readonly locale: string;
  readonly limits: AdapterLimits;
  readonly #deps: ContextDeps;
  #statuses: Set<StatusHandle> | undefined;
  #typers: Set<() => void> | undefined;
  #typingLoop: AbortController | undefined;
  #schedule: Schedule | undefined;
  /** Set on a scheduled task's run (`TaskContext`). */
  readonly scheduled: ScheduledRun | undefined;

  constructor(deps: ContextDeps) {
    this.#deps = deps;
    this.scheduled = deps.scheduled;
    this.jobId = deps.jobId;
    this.plugin = deps.plugin;
    this.message = deps.message;
    this.chat = deps.channel.chat;
    this.user = deps.message.sender;
    this.bot = deps.bot;
    this.command = deps.command;
    this.log = deps.log;
    this.clock = deps.clock;
    this.locale = deps.locale;
    this.limits = deps.channel.limits;
  }

  get signal(): AbortSignal {
    return this.#deps.abort.signal;
  }

  get schedule(): Schedule {
    this.#schedule ??= this.#deps.schedule.for(this.plugin, {
      chat: this.chat,
      ...(this.user.id !== '' && { user: this.user }),
    });
    return this.#schedule;
  }

  t(key: string, params?: Readonly<Record<string, string | number>>): string {
    return this.#deps.translator.t(this.#deps.locale, key, params);
  }

  reply(reply: string | OutgoingMessage): Promise<SentMessage> {
    const channel = this.#deps.channel;
    if (typeof reply === 'string' && reply.length <= this.limits.maxTextLength) {
      // The commonest answer, a short text, is built once with its reply handle: no copies.
      const replyTo = channel.replyTo;
      return channel.send(replyTo === undefined ? { text: reply } : { text: reply, replyTo }, false);
    }
    const outgoing = toOutgoing(reply);
    if (outgoing.images?.length) return this.#sendPictures(outgoing);
    // A text that fits goes as it is: no parts, no copies.
    const text = outgoing.text ?? '';
    if (text.length <= this.limits.maxTextLength && text === outgoing.text)
      return this.#deps.channel.send(outgoing);
    return this.#sendText(text, outgoing);
  }

  replyImages(images: readonly OutgoingImage[], options: { caption?: string } = {}): Promise<SentMessage> {
    return this.#sendPictures({ images, ...(options.caption !== undefined && { text: options.caption }) });
  }

  /**
   * Pictures with their caption; a caption longer than the platform takes goes after them as a
   * text of its own (split as texts are), with the buttons.
   */
  async #sendPictures(message: OutgoingMessage): Promise<SentMessage> {
    const caption = message.text ?? '';
    if (caption.length <= this.limits.maxCaptionLength) return this.#deps.channel.send(message);
    const { text: _caption, buttons, ...pictures } = message;
    const sent = await this.#deps.channel.send(pictures);
    const after = await this.#sendText(caption, {
      ...(buttons && { buttons }),
      ...(message.format && { format: message.format }),
    });
    return { chat: this.chat, ids: [...sent.ids, ...after.ids] };
  }

  edit(sent: SentMessage, edit: string | OutgoingMessage): Promise<void> {
    return this.#deps.channel.edit(sent.ids[0]!, toOutgoing(edit), { final: true });
  }

  async status(
    text: string,
    options: { buttons?: readonly (readonly Button[])[] } = {},
  ): Promise<StatusMessage> {
    const sent = await this.#deps.channel.send({
      text,
      ...(options.buttons && { buttons: options.buttons }),
    });
    const status = new StatusHandle(this.#deps.channel, sent, text, this.log, options.buttons !== undefined);
    this.#statuses ??= new Set();
    this.#statuses.add(status);
    return status;
  }

  stream(pieces: AsyncIterable<string>, options: StreamOptions = {}): Promise<StreamResult> {
    return pipeStream(this.openStream(options), pieces, this.signal);
  }

  openStream(options: StreamOptions = {}): TextStream {
    return new TextStream({
      channel: this.#deps.channel,
      options,
      t: (key, params) => this.t(key, params),
      redactor: this.#deps.redactor,
      clock: this.clock,
      log: this.log,
      keepTyping: () => this.keepTyping(),
    });
  }

  async typing(): Promise<void> {
    await this.#deps.channel.typing().catch((error: unknown) => this.log.debug('typing failed', { error }));
  }

  keepTyping(): () => void {
    if (!this.#deps.canType || this.signal.aborted) return () => {};
    // One loop per job however many callers want it (several answers streaming side by side).
    this.#typers ??= new Set();
    const typers = this.#typers;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      typers.delete(stop);
      if (typers.size === 0) this.#typingLoop?.abort();
    };
    typers.add(stop);
    if (!this.#typingLoop || this.#typingLoop.signal.aborted) {
      const loop = new AbortController();
      this.#typingLoop = loop;
      void (async () => {
        while (!loop.signal.aborted && !this.signal.aborted) {
          await this.typing();
          await sleep(this.clock, typingRefreshMs, loop.signal).catch(() => {});
        }
      })();
    }
    return stop;
  }

  fetchImage(image: ImageRef): Promise<Uint8Array> {
    const adapter = this.#deps.images;
    if (!adapter.fetchImage) {
      return Promise.reject(
        new AdapterError(adapter.name, `the ${adapter.name} adapter cannot download images`, {
          remote: false,
        }),
      );
    }
    return adapter.fetchImage(image, this.signal);
  }

  /** Stops typing and finishes the open status messages; resolves with how many there were. */
  finishAll(outcome: 'done' | 'failed' | 'cancelled', reason?: unknown): number | Promise<number> {
    if (this.#typers) for (const stop of [...this.#typers]) stop();
    // Most jobs open no status message: they get their answer without another tick.
    if (!this.#statuses) return 0;
    return this.#finishStatuses(outcome, reason);
  }

  async #finishStatuses(outcome: 'done' | 'failed' | 'cancelled', reason: unknown): Promise<number> {
    const open = [...(this.#statuses ?? [])].filter((status) => !status.finished);
    await Promise.all(
      open.map((status) => {
        if (outcome === 'done') return status.finish();
        if (outcome === 'cancelled') {
          const text =
            cancelledBy(reason) === 'shutdown'
              ? this.t('job.shutdown')
              : cancelledBy(reason) === 'reload'
                ? this.t('job.reloaded')
                : this.t('job.cancelled');
          return status.finish(text);
        }
        return status.finish(
          this.t('job.failed', {
            reason: describeFailure(reason, this.#deps.redactor, (k, p) => this.t(k, p)),
          }),
        );
      }),
    );
    return open.length;
  }

  async #sendText(text: string, extra: Omit<OutgoingMessage, 'text'>): Promise<SentMessage> {
    const parts = splitText(text, this.limits.maxTextLength);
    if (parts.length === 1) return this.#deps.channel.send({ ...extra, text: parts[0]! });
    const ids: string[] = [];
    for (const [index, part] of parts.entries()) {
      // Buttons go on the last part, where the reader ends up.
      const last = index === parts.length - 1;
      const sent = await this.#deps.channel.send({ ...extra, text: part, ...(!last && { buttons: [] }) });
      ids.push(...sent.ids);
    }
    return { chat: this.chat, ids };
  }
}

class StatusHandle implements StatusMessage {
  #text: string;
  #finished = false;

  constructor(
    private readonly channel: Channel,
    readonly sent: SentMessage,
    text: string,
    private readonly log: Logger,
    private readonly hadButtons: boolean,
  ) {
    this.#text = text;
  }

  get text() {
    return this.#text;
  }

  get finished() {
    return this.#finished;
  }

  update(text: string): void {
    if (this.#finished || text === this.#text) return;
    this.#text = text;
    this.channel
      .edit(this.sent.ids[0]!, { text }, { final: false })
      .catch((error: unknown) => this.log.debug('status update failed', { error }));
  }

  async finish(text = this.#text): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#text = text;
    // A finished status keeps no buttons: there is nothing left to cancel.
    await this.channel
      .edit(this.sent.ids[0]!, { text, ...(this.hadButtons && { buttons: [] }) }, { final: true })
      .catch((error: unknown) => this.log.warn('could not finish status message', { error }));
  }
}
