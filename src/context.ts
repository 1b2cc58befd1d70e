/**
 * The handler context: everything a command handler needs, bound to one chat, one user and one
 * job. Replies cannot go to another chat; every send and edit goes through the chat's outbox;
 * status messages are always finished, whatever becomes of the job.
 */
import type { Adapter } from './adapter.ts';
import { type Clock, sleep } from './clock.ts';
import type { ParsedCommand } from './commands.ts';
import { ChorusError } from './errors.ts';
import type { Translator } from './i18n.ts';
import type { Logger, Redactor } from './logger.ts';
import {
  type BotIdentity,
  type Button,
  type ChatAddress,
  type IncomingMessage,
  type OutgoingImage,
  type OutgoingMessage,
  type SentMessage,
  toOutgoing,
  type UserRef,
} from './message.ts';
import type { Outbox } from './outbox.ts';
import type { Schedule } from './schedule.ts';
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
  readonly limits: Adapter['limits'];
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
  /** Runs this plugin's tasks later; jobs reply in this chat unless told otherwise. */
  readonly schedule: Schedule;
}

/** What a job's context is built from. */
export interface ContextDeps {
  readonly jobId: string;
  readonly plugin: string;
  readonly message: IncomingMessage;
  readonly command: ParsedCommand | undefined;
  readonly signal: AbortSignal;
  readonly bot: BotIdentity;
  readonly adapter: Adapter;
  readonly outbox: Outbox;
  readonly translator: Translator;
  readonly redactor: Redactor;
  readonly locale: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly schedule: Schedule;
  /** The job answers no message (a scheduled run): replies are plain messages in the chat. */
  readonly standalone?: boolean;
}

const typingRefreshMs = 4_000;

/** Builds a job's context. `finishAll` settles every status message the handler left open. */
export function createContext(deps: ContextDeps): {
  ctx: Context;
  /** Finishes the open status messages; resolves with how many there were. */
  finishAll(outcome: 'done' | 'failed' | 'cancelled', reason?: unknown): Promise<number>;
} {
  const { adapter, outbox, message, signal, clock, log } = deps;
  const chat = message.chat;
  const statuses = new Set<StatusHandle>();
  const typers = new Set<() => void>();
  let typingLoop: AbortController | undefined;
  const t = (key: string, params?: Readonly<Record<string, string | number>>) =>
    deps.translator.t(deps.locale, key, params);
  const replyTo = deps.standalone ? undefined : message.id;
  const replying = replyTo === undefined ? {} : { replyTo };

  const sendText = async (text: string, extra: Omit<OutgoingMessage, 'text'>): Promise<SentMessage> => {
    const parts = splitText(text, adapter.limits.maxTextLength);
    const ids: string[] = [];
    for (const [index, part] of parts.entries()) {
      // Buttons go on the last part, where the reader ends up.
      const last = index === parts.length - 1;
      const sent = await outbox.send(chat, {
        ...extra,
        text: part,
        ...replying,
        ...(!last && { buttons: [] }),
      });
      ids.push(...sent.ids);
    }
    return { chat, ids };
  };

  const ctx: Context = {
    jobId: deps.jobId,
    plugin: deps.plugin,
    message,
    chat,
    user: message.sender,
    bot: deps.bot,
    command: deps.command,
    signal,
    log,
    clock,
    locale: deps.locale,
    limits: adapter.limits,
    t,
    reply: (reply) => {
      const outgoing = toOutgoing(reply);
      if (outgoing.images?.length) return outbox.send(chat, { ...outgoing, ...replying });
      return sendText(outgoing.text ?? '', { ...outgoing });
    },
    replyImages: (images, options = {}) =>
      outbox.send(chat, {
        images,
        ...replying,
        ...(options.caption !== undefined && { text: options.caption }),
      }),
    edit: (sent, edit) => outbox.edit(chat, sent.ids[0]!, toOutgoing(edit), { final: true }),
    status: async (text, options = {}) => {
      const sent = await outbox.send(chat, {
        text,
        ...replying,
        ...(options.buttons && { buttons: options.buttons }),
      });
      const status = new StatusHandle(outbox, sent, text, log, options.buttons !== undefined);
      statuses.add(status);
      return status;
    },
    stream: (pieces, options = {}) => pipeStream(ctx.openStream(options), pieces, signal),
    openStream: (options = {}) =>
      new TextStream({
        chat,
        replyTo,
        outbox,
        adapter,
        options,
        t,
        redactor: deps.redactor,
        clock,
        log,
        keepTyping: () => ctx.keepTyping(),
      }),
    typing: async () => {
      if (!adapter.sendTyping) return;
      await adapter.sendTyping(chat).catch((error: unknown) => log.debug('typing failed', { error }));
    },
    keepTyping: () => {
      if (!adapter.sendTyping || signal.aborted) return () => {};
      // One loop per job however many callers want it (several answers streaming side by side).
      let stopped = false;
      const stop = () => {
        if (stopped) return;
        stopped = true;
        typers.delete(stop);
        if (typers.size === 0) typingLoop?.abort();
      };
      typers.add(stop);
      if (!typingLoop || typingLoop.signal.aborted) {
        const loop = new AbortController();
        typingLoop = loop;
        void (async () => {
          while (!loop.signal.aborted && !signal.aborted) {
            await ctx.typing();
            await sleep(clock, typingRefreshMs, loop.signal).catch(() => {});
          }
        })();
      }
      return stop;
    },
    schedule: deps.schedule,
  };

  return {
    ctx,
    async finishAll(outcome, reason) {
      for (const stop of [...typers]) stop();
      const open = [...statuses].filter((status) => !status.finished);
      await Promise.all(
        open.map((status) => {
          if (outcome === 'done') return status.finish();
          if (outcome === 'cancelled') {
            const text =
              reason instanceof ChorusError && reason.message === 'shutdown'
                ? t('job.shutdown')
                : reason instanceof ChorusError && reason.message === 'reload'
                  ? t('job.reloaded')
                  : t('job.cancelled');
            return status.finish(text);
          }
          return status.finish(t('job.failed', { reason: describeFailure(reason, deps.redactor, t) }));
        }),
      );
      return open.length;
    },
  };
}

class StatusHandle implements StatusMessage {
  #text: string;
  #finished = false;

  constructor(
    private readonly outbox: Outbox,
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
    this.outbox
      .edit(this.sent.chat, this.sent.ids[0]!, { text }, { final: false })
      .catch((error: unknown) => this.log.debug('status update failed', { error }));
  }

  async finish(text = this.#text): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#text = text;
    // A finished status keeps no buttons: there is nothing left to cancel.
    await this.outbox
      .edit(
        this.sent.chat,
        this.sent.ids[0]!,
        { text, ...(this.hadButtons && { buttons: [] }) },
        { final: true },
      )
      .catch((error: unknown) => this.log.warn('could not finish status message', { error }));
  }
}
