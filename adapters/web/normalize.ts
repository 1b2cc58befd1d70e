/**
 * Pure pieces of the web adapter: the request bodies it takes, the chat and visitor they become,
 * the events a page or an API client reads (and their Server-Sent Events form), cookies, and the
 * content type an image is served with. No I/O: the tests call these without a server.
 */
import { z } from 'zod';
import type { Button, ChatAddress, IncomingMessage, OutgoingMessage, UserRef } from '../../src/message.ts';

/** A chat id a client may name: letters, digits, `_` and `-`, at most 64. */
export const chatIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

const chatId = z.string().regex(chatIdPattern, 'expected 1 to 64 letters, digits, "_" or "-"');

/** The body of `POST /api/messages`. */
export const messageBody = z.strictObject({
  text: z
    .string()
    .refine((text) => text.trim().length > 0, 'expected some text')
    .refine((text) => text.length <= 16_000, 'expected at most 16000 characters'),
  chat: chatId.optional(),
  user: z.string().trim().min(1).max(64).optional(),
});

/** The body of `POST /api/press`. */
export const pressBody = z.strictObject({
  chat: chatId.optional(),
  message: z.string().min(1).max(64),
  action: z.string().min(1).max(200),
});

/** What a request body parsed to, or why it was refused (one line a client can show). */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

/** Parses a JSON body's text against `schema`: the value, or an error naming the key. */
export function parseBody<T>(schema: z.ZodType<T>, text: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: 'the body is not JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue.code === 'invalid_type' && / received undefined$/.test(issue.message)
        ? `required (expected ${issue.expected})`
        : issue.message.replace(/^Invalid input: /, '');
  return { ok: false, error: `${where}: ${message}` };
}

/** The chat of a web adapter instance with this id: always private, one visitor's. */
export function webChat(adapter: string, id: string): ChatAddress {
  return { adapter, platform: 'web', id, kind: 'private' };
}

/**
 * The visitor of a chat. One chat is one visitor (a browser, or an API caller's conversation), so
 * the user id is the chat's: the Cancel button cancels that visitor's jobs, whatever name they give.
 */
export function webVisitor(chatId: string, name = 'visitor'): UserRef {
  return { id: `visitor-${chatId}`, name };
}

/** An incoming web message. */
export function toIncoming(
  adapter: string,
  id: string,
  body: { readonly text: string; readonly user?: string | undefined },
  chatId: string,
  date: number,
): IncomingMessage {
  return {
    id,
    chat: webChat(adapter, chatId),
    sender: webVisitor(chatId, body.user),
    text: body.text,
    mentionsBot: false,
    images: [],
    date,
  };
}

/** A button as the page shows it. */
export interface WebButton {
  readonly label: string;
  readonly action: string;
  readonly style?: 'primary' | 'danger';
}

/** `message`: a message in the chat, from the bot or (on a chat's event stream) the visitor. */
export interface MessageEventData {
  readonly id: string;
  readonly from: 'bot' | 'visitor';
  readonly text?: string;
  /** `markdown` when the text is Markdown; plain otherwise. */
  readonly format?: 'markdown';
  /** `/api/images/<id>` URLs, in album order. */
  readonly images?: readonly string[];
  /** The id of the visitor's message this answers. */
  readonly replyTo?: string;
  readonly buttons?: readonly (readonly WebButton[])[];
  /** The text will grow through edits (a streamed answer). */
  readonly partial?: true;
}

/** `edit`: a message's new text (the whole of it); `buttons: []` takes its buttons away. */
export interface EditEventData {
  readonly id: string;
  readonly text: string;
  readonly format?: 'markdown';
  readonly buttons?: readonly (readonly WebButton[])[];
  /** The message's last edit. */
  readonly final: boolean;
}

/** What a stream of the web API carries. */
export type WebEvent =
  | { readonly type: 'message'; readonly data: MessageEventData }
  | { readonly type: 'edit'; readonly data: EditEventData }
  | { readonly type: 'typing'; readonly data: Record<string, never> }
  /** Every job the visitor's message `message` started has ended. */
  | { readonly type: 'done'; readonly data: { readonly message: string } };

const buttonsOf = (rows: readonly (readonly Button[])[]): WebButton[][] =>
  rows.map((row) =>
    row.map((button) => ({
      label: button.label,
      action: button.action,
      ...(button.style && { style: button.style }),
    })),
  );

/** A bot message as a `message` event; `images` are the URLs its images are served at. */
export function messageEvent(id: string, message: OutgoingMessage, images: readonly string[]): WebEvent {
  return {
    type: 'message',
    data: {
      id,
      from: 'bot',
      ...(message.text !== undefined && message.text !== '' && { text: message.text }),
      ...(message.format === 'markdown' && { format: 'markdown' }),
      ...(images.length > 0 && { images }),
      ...(message.replyTo !== undefined && { replyTo: message.replyTo }),
      ...(message.buttons && message.buttons.length > 0 && { buttons: buttonsOf(message.buttons) }),
      ...(message.partial && { partial: true }),
    },
  };
}

/** The visitor's own message, as a chat's event stream shows it to the visitor's other tabs. */
export function visitorEvent(message: IncomingMessage): WebEvent {
  return { type: 'message', data: { id: message.id, from: 'visitor', text: message.text } };
}

/** An edit as an `edit` event. */
export function editEvent(id: string, message: OutgoingMessage, final: boolean): WebEvent {
  return {
    type: 'edit',
    data: {
      id,
      text: message.text ?? '',
      ...(message.format === 'markdown' && { format: 'markdown' }),
      ...(message.buttons && { buttons: buttonsOf(message.buttons) }),
      final,
    },
  };
}

/**
 * The Server-Sent Events form of an event: `event:` and one `data:` line of JSON (JSON has no
 * raw line breaks, so no text can end the event early or forge another), with an `id:` when given.
 */
export function sseFrame(event: WebEvent, id?: number): string {
  const json = JSON.stringify(event.data);
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event.type}\ndata: ${json}\n\n`;
}

/** The cookies of a `Cookie` header, by name (the first of a name wins). */
export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

/** A `Set-Cookie` value the page's scripts cannot read and no other site's request carries. */
export function setCookie(
  name: string,
  value: string,
  options: { maxAgeS: number; secure: boolean },
): string {
  return `${name}=${value}; Path=/; Max-Age=${options.maxAgeS}; HttpOnly; SameSite=Strict${options.secure ? '; Secure' : ''}`;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | null): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/**
 * The content type an image the bot sent is served with: a raster type browsers show inline,
 * from the declared type or the bytes' signature. Anything else (an SVG, which may carry script)
 * is `application/octet-stream`, which a browser does not run.
 */
export function imageContentType(data: Uint8Array, declared?: string): string {
  const known = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  const type = declared?.toLowerCase().split(';')[0]?.trim();
  if (type && known.includes(type)) return type;
  if (data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47) return 'image/png';
  if (data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'image/jpeg';
  if (data[0] === 0x47 && data[1] === 0x49 && data[2] === 0x46) return 'image/gif';
  if (data[8] === 0x57 && data[9] === 0x45 && data[10] === 0x42 && data[11] === 0x50) return 'image/webp';
  return 'application/octet-stream';
}
