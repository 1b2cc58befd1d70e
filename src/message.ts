/**
 * The message model: what adapters put on the bus and what plugins send back.
 * Everything here is plain, serializable data (ids and strings, never SDK objects or closures),
 * so the bus can later carry it between processes.
 */

/** A platform name. The built-in adapters use these; others may add their own. */
export type Platform = 'telegram' | 'discord' | 'console' | (string & {});

/** What kind of conversation a chat is. */
export type ChatKind = 'private' | 'group' | 'channel';

/** Where a message lives, and where replies go. */
export interface ChatAddress {
  /** The adapter instance that owns the chat (its key under `adapters:` in the config). */
  readonly adapter: string;
  readonly platform: Platform;
  readonly id: string;
  readonly kind: ChatKind;
  /** Forum topic (Telegram) or thread (Discord); replies stay in it. */
  readonly threadId?: string;
  readonly title?: string;
}

/** A person (or bot) on a platform. */
export interface UserRef {
  readonly id: string;
  /** Display name. */
  readonly name: string;
  readonly username?: string;
  readonly isBot?: boolean;
}

/** An image attached to an incoming message. The adapter can fetch its bytes by `id`. */
export interface ImageRef {
  readonly id: string;
  readonly url?: string;
  readonly mimeType?: string;
  readonly width?: number;
  readonly height?: number;
  readonly size?: number;
}

/** The message an incoming message replies to. */
export interface ReplyRef {
  readonly messageId: string;
  /** True when the replied-to message was sent by this bot. */
  readonly fromBot: boolean;
  readonly senderId?: string;
  readonly text?: string;
}

/** A normalized incoming message, the same shape from every platform. */
export interface IncomingMessage {
  /** The platform's id of this message (unique within the chat). */
  readonly id: string;
  readonly chat: ChatAddress;
  readonly sender: UserRef;
  /** Text, or the caption of a media message. Empty string when there is none. */
  readonly text: string;
  /** True when the bot is mentioned (`@botname`, a text mention, a Discord mention). */
  readonly mentionsBot: boolean;
  readonly replyTo?: ReplyRef;
  readonly images: readonly ImageRef[];
  /** Milliseconds since the epoch. */
  readonly date: number;
  /**
   * How to answer this message, for its adapter only (a Discord interaction's token, say); replies
   * carry it as their `replyTo`. Default: the message's `id`.
   */
  readonly replyHandle?: string;
}

/** An image to send: bytes we hold, or a URL the platform may fetch itself. */
export type OutgoingImage =
  | { readonly data: Uint8Array; readonly mimeType?: string; readonly filename?: string }
  | { readonly url: string; readonly filename?: string };

/** An inline button. `action` is routed back to the plugin that made it. */
export interface Button {
  readonly label: string;
  readonly action: string;
  readonly style?: 'primary' | 'danger';
}

/** Text formats a message may be written in. Adapters render `markdown` to the platform's own format. */
export type TextFormat = 'plain' | 'markdown';

/** A message to send. With `images`, `text` is the caption. */
export interface OutgoingMessage {
  readonly text?: string;
  readonly format?: TextFormat;
  readonly images?: readonly OutgoingImage[];
  /**
   * What this message answers: the `replyHandle` (or `id`) of an incoming message in the same
   * chat. Only the adapter reads it.
   */
  readonly replyTo?: string;
  /** Rows of buttons. An empty array on an edit removes them. */
  readonly buttons?: readonly (readonly Button[])[];
  /**
   * The text will grow and its final form follows as an edit (a streamed answer). Adapters that
   * cannot show progress (a piped console) may wait for the final edit instead of printing this.
   */
  readonly partial?: boolean;
}

/** What a send produced. An album may be several platform messages; `ids[0]` is the one to edit. */
export interface SentMessage {
  readonly chat: ChatAddress;
  readonly ids: readonly string[];
}

/** A press of a button that a plugin sent. */
export interface ButtonPress {
  /** The platform's id for this press (callback query, interaction). */
  readonly id: string;
  readonly chat: ChatAddress;
  readonly user: UserRef;
  /** The message that carried the button. */
  readonly messageId: string;
  /** The button's action, prefixed by the plugin name: `draw:cancel`. */
  readonly action: string;
}

/** Who the bot is on one adapter, known once the adapter has started. */
export interface BotIdentity {
  readonly id: string;
  readonly username: string;
  readonly name: string;
}

/** Normalizes a text-or-message argument. */
export function toOutgoing(message: string | OutgoingMessage): OutgoingMessage {
  return typeof message === 'string' ? { text: message } : message;
}

/** A stable key for a chat (and topic): the outbox keeps one queue per key. */
export function chatKey(chat: ChatAddress): string {
  return chat.threadId === undefined
    ? `${chat.adapter}:${chat.id}`
    : `${chat.adapter}:${chat.id}:${chat.threadId}`;
}
