/**
 * The web adapter's chats, in memory: each keeps its recent events (so a page that reloads, or a
 * second tab, sees the conversation so far), the streams listening to it, and which buttons its
 * messages show (a press of any other is refused). Bounded: `maxEvents` per chat, an edit replacing
 * the earlier edits of its message, `maxBytes` of them per chat (as JSON; the latest is always
 * kept), and `maxChats` chats, the least recently used idle one dropped.
 */
import type { WebEvent } from './normalize.ts';

/** An event with its number in its chat (the SSE `id:`, for `Last-Event-ID`). */
export interface NumberedEvent {
  readonly seq: number;
  readonly event: WebEvent;
}

/** Hears a chat's events as they happen. */
export type ChatListener = (event: WebEvent, seq: number) => void;

/** How many messages' buttons a chat remembers. */
const maxButtonMessages = 200;

/** One chat. */
export class WebChatRoom {
  readonly id: string;
  readonly #log: (NumberedEvent & { readonly size: number })[] = [];
  readonly #listeners = new Set<ChatListener>();
  /** The actions each bot message shows, by message id. */
  readonly #buttons = new Map<string, Set<string>>();
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #seq = 0;
  /** `POST /api/messages` streams open on this chat. */
  openMessages = 0;

  constructor(id: string, maxEvents: number, maxBytes = Number.POSITIVE_INFINITY) {
    this.id = id;
    this.#maxEvents = maxEvents;
    this.#maxBytes = maxBytes;
  }

  /** The size of the events kept, as JSON. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether nothing holds the chat: no listener, no message stream. */
  get idle(): boolean {
    return this.#listeners.size === 0 && this.openMessages === 0;
  }

  /**
   * Tells every listener, and keeps the event for later ones unless it is fleeting (`typing`).
   * Returns the event's number.
   */
  publish(event: WebEvent): number {
    const seq = ++this.#seq;
    if (event.type !== 'typing') this.#keep({ seq, event });
    if (event.type === 'message' && event.data.buttons) this.#setButtons(event.data.id, event.data.buttons);
    if (event.type === 'edit' && event.data.buttons) this.#setButtons(event.data.id, event.data.buttons);
    for (const listener of [...this.#listeners]) listener(event, seq);
    return seq;
  }

  /** The kept events numbered after `after` (all of them without it), oldest first. */
  since(after?: number): NumberedEvent[] {
    const kept = after === undefined ? this.#log : this.#log.filter((entry) => entry.seq > after);
    return kept.map(({ seq, event }) => ({ seq, event }));
  }

  /** Listens; returns the function that stops listening. */
  listen(listener: ChatListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** How many listen. */
  get listeners(): number {
    return this.#listeners.size;
  }

  /** Whether bot message `messageId` shows a button with `action` now. */
  hasButton(messageId: string, action: string): boolean {
    return this.#buttons.get(messageId)?.has(action) ?? false;
  }

  #keep(entry: NumberedEvent): void {
    const { event } = entry;
    if (event.type === 'edit') {
      // An edit carries the whole text: the earlier edits of its message say nothing more.
      const earlier = this.#log.findIndex(
        (e) => e.event.type === 'edit' && e.event.data.id === event.data.id,
      );
      if (earlier >= 0) this.#bytes -= this.#log.splice(earlier, 1)[0]!.size;
    }
    const size = JSON.stringify(event.data).length;
    this.#log.push({ ...entry, size });
    this.#bytes += size;
    while (this.#log.length > 1 && (this.#log.length > this.#maxEvents || this.#bytes > this.#maxBytes))
      this.#bytes -= this.#log.shift()!.size;
  }

  #setButtons(messageId: string, rows: readonly (readonly { readonly action: string }[])[]): void {
    this.#buttons.delete(messageId);
    const actions = new Set(rows.flat().map((button) => button.action));
    if (actions.size === 0) return;
    this.#buttons.set(messageId, actions);
    if (this.#buttons.size > maxButtonMessages) this.#buttons.delete(this.#buttons.keys().next().value!);
  }
}

/** Options of {@link WebChatRooms}. */
export interface WebChatRoomsOptions {
  /** Chats kept in memory. */
  readonly maxChats: number;
  /** Events kept per chat. */
  readonly maxEvents: number;
  /** Their size per chat, as JSON. Default: no limit but `maxEvents`. */
  readonly maxBytes?: number;
}

/** Every chat of one web adapter. */
export class WebChatRooms {
  /** In order of last use, least recent first. */
  readonly #rooms = new Map<string, WebChatRoom>();
  readonly #options: WebChatRoomsOptions;

  constructor(options: WebChatRoomsOptions) {
    this.#options = options;
  }

  /** The chat `id`, made when new; it becomes the most recently used. */
  get(id: string): WebChatRoom {
    let room = this.#rooms.get(id);
    if (room) this.#rooms.delete(id);
    else room = new WebChatRoom(id, this.#options.maxEvents, this.#options.maxBytes);
    this.#rooms.set(id, room);
    if (this.#rooms.size > this.#options.maxChats) {
      for (const [key, old] of this.#rooms) {
        if (this.#rooms.size <= this.#options.maxChats) break;
        if (old !== room && old.idle) this.#rooms.delete(key);
      }
    }
    return room;
  }

  /** How many chats are kept. */
  get size(): number {
    return this.#rooms.size;
  }

  clear(): void {
    this.#rooms.clear();
  }
}
