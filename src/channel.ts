/**
 * A channel: the chat a job talks to, bound to its adapter's outbox and to the message it answers.
 * Contexts and streams hold one and nothing else of the adapter: every send, edit, draft and
 * "typing..." goes through the outbox and so through the chat's budget.
 */
import type { AdapterLimits } from './adapter.ts';
import type { ChatAddress, OutgoingMessage, SentMessage } from './message.ts';
import type { Outbox } from './outbox.ts';

/** What a channel is built from. */
export interface ChannelOptions {
  readonly outbox: Outbox;
  readonly chat: ChatAddress;
  /** The adapter's reply handle of the message answered; `undefined` for a job that answers none. */
  readonly replyTo: string | undefined;
  readonly limits: AdapterLimits;
  /** Whether the adapter shows drafts in this chat. */
  readonly drafts: boolean;
  /**
   * The plugin whose job this is: its buttons' actions go out as `<plugin>:<action>`, which is
   * what `ctx.button(action)` answers to. Actions of the core's own (`chorus:cancel`) go as they are.
   */
  readonly plugin?: string;
}

/** Actions of the core's own buttons, never prefixed. */
const coreActions = 'chorus:';

/** One chat, through its outbox. */
export class Channel {
  readonly chat: ChatAddress;
  readonly limits: AdapterLimits;
  /** The reply handle every reply carries; only the adapter reads it. */
  readonly replyTo: string | undefined;
  /** Whether `draft` shows anything here. */
  readonly drafts: boolean;
  readonly #outbox: Outbox;
  readonly #buttonPrefix: string | undefined;

  constructor(options: ChannelOptions) {
    this.#outbox = options.outbox;
    this.#buttonPrefix = options.plugin === undefined ? undefined : `${options.plugin}:`;
    this.chat = options.chat;
    this.limits = options.limits;
    this.replyTo = options.replyTo;
    this.drafts = options.drafts;
  }

  /** Sends a message; it replies to the message answered unless `reply` is false. */
  send(message: OutgoingMessage, reply = true): Promise<SentMessage> {
    const owned = this.#own(message);
    const outgoing = reply && this.replyTo !== undefined ? { ...owned, replyTo: this.replyTo } : owned;
    return this.#outbox.send(this.chat, outgoing);
  }

  /** Edits a message sent here. Edits of one message that wait coalesce; `final` ones are never dropped. */
  edit(messageId: string, message: OutgoingMessage, options: { final: boolean }): Promise<void> {
    return this.#outbox.edit(this.chat, messageId, this.#own(message), options);
  }

  /** The message with its buttons' actions in the plugin's namespace. */
  #own(message: OutgoingMessage): OutgoingMessage {
    const prefix = this.#buttonPrefix;
    if (prefix === undefined || !message.buttons?.length) return message;
    const buttons = message.buttons.map((row) =>
      row.map((button) =>
        button.action.startsWith(coreActions) || button.action.startsWith(prefix)
          ? button
          : { ...button, action: `${prefix}${button.action}` },
      ),
    );
    return { ...message, buttons };
  }

  /** Shows `text` as a growing draft, where the adapter has drafts. */
  draft(draftId: number, text: string): Promise<void> {
    return this.drafts ? this.#outbox.draft(this.chat, draftId, text) : Promise.resolve();
  }

  /** Shows "typing..." when the chat's budget has room for it. */
  typing(): Promise<void> {
    return this.#outbox.typing(this.chat);
  }
}
