/**
 * One chat's line in the outbox: what waits (sends in the order they came, at most one edit per
 * message with newer text coalesced into it, one "typing..."), which goes next, and taking an
 * operation off the line or putting it back. Plain data and functions: the outbox (`outbox.ts`)
 * drains the line at the pace `outbox-pace.ts` sets.
 */
import type { ChatAddress, OutgoingMessage, SentMessage } from './message.ts';
import type { ChatRules } from './outbox-pace.ts';

/** How the caller that queued an operation learns how it went. */
export interface Settlers<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A message to send (one piece of what `planSend` made of it). */
export interface SendOperation {
  readonly kind: 'send';
  /** Each operation keeps its own address: topics and threads share their chat's queue, not its address. */
  readonly chat: ChatAddress;
  readonly message: OutgoingMessage;
  readonly settle: Settlers<SentMessage>;
  attempts: number;
  /** When it was queued (0 when nobody measures waits). */
  readonly queuedAt: number;
}

/** An edit of one message, or a draft's new text; later edits of the message coalesce into it. */
export interface EditOperation {
  readonly kind: 'edit';
  readonly chat: ChatAddress;
  /** The message edited, or `draft:<id>` for a draft. */
  readonly messageId: string;
  /** Set for a draft (a text that grows in place before the real message is sent). */
  readonly draftId?: number;
  message: OutgoingMessage;
  final: boolean;
  settle: Settlers<void>[];
  attempts: number;
  /** When the oldest text it carries was queued (0 when nobody measures waits). */
  readonly queuedAt: number;
}

/** "typing...": advisory, so it goes only when nothing else waits and the budget has room. */
export interface TypingOperation {
  readonly kind: 'typing';
  readonly chat: ChatAddress;
  readonly settle: Settlers<void>[];
  attempts: number;
  readonly queuedAt: number;
}

/** Anything the outbox sends to the adapter. */
export type Operation = SendOperation | EditOperation | TypingOperation;

/** The line of one chat (topics and threads included), and the state of its pace. */
export interface ChatQueue extends ChatRules {
  readonly chat: ChatAddress;
  /** First in, first out. */
  readonly sends: SendOperation[];
  /** At most one waiting edit per message, in turn order (an edit that went out rejoins at the back). */
  edits: Map<string, EditOperation>;
  typing: TypingOperation | undefined;
  inFlight: Operation | undefined;
  /** Until when a 429 paused the chat. */
  pausedUntil: number;
  /** When the last send or edit (not a draft, not "typing...") went out: edits keep their pace from it. */
  lastOpAt: number;
  draining: boolean;
  /** Ends the drain loop's current wait early (something new was queued). */
  wake: (() => void) | undefined;
}

/** An empty line for `chat`, under `rules`. */
export function newChatQueue(chat: ChatAddress, rules: ChatRules): ChatQueue {
  return {
    chat,
    sends: [],
    edits: new Map(),
    typing: undefined,
    inFlight: undefined,
    ...rules,
    pausedUntil: 0,
    lastOpAt: Number.NEGATIVE_INFINITY,
    draining: false,
    wake: undefined,
  };
}

/** The next operation: the oldest send, else the edit whose turn it is, else "typing...". */
export function nextOperation(queue: ChatQueue): Operation | undefined {
  return queue.sends[0] ?? queue.edits.values().next().value ?? queue.typing;
}

/** Operations waiting or in flight in `queue`. */
export function operationsIn(queue: ChatQueue): number {
  return queue.sends.length + queue.edits.size + (queue.typing ? 1 : 0) + (queue.inFlight ? 1 : 0);
}

/**
 * Gives the edit still `waiting` the newer text: fields the new message leaves out (buttons,
 * format) are kept, `final` sticks once set, and `settle` resolves with it. True when the edit
 * became final just now (it may then go sooner).
 */
export function coalesceEdit(
  waiting: EditOperation,
  message: OutgoingMessage,
  final: boolean,
  settle: Settlers<void>,
): boolean {
  waiting.message = { ...waiting.message, ...message };
  const becameFinal = final && !waiting.final;
  waiting.final ||= final;
  waiting.settle.push(settle);
  return becameFinal;
}

/** Takes `op`, the next operation of `queue`, off its line to go out. */
export function takeNext(queue: ChatQueue, op: Operation): void {
  if (op.kind === 'send') queue.sends.shift();
  else if (op.kind === 'edit') queue.edits.delete(op.messageId);
  else queue.typing = undefined;
}

/** Takes `op` off its line for good with `error`; "typing..." is only advisory and resolves. */
export function dropOperation(queue: ChatQueue, op: Operation, error: unknown): void {
  if (op.kind === 'send') {
    queue.sends.splice(queue.sends.indexOf(op), 1);
    op.settle.reject(error);
  } else if (op.kind === 'edit') {
    queue.edits.delete(op.messageId);
    for (const s of op.settle) s.reject(error);
  } else {
    queue.typing = undefined;
    for (const s of op.settle) s.resolve();
  }
}

/** Puts a rate-limited operation back at the head of its line; an edit takes any newer text. */
export function requeue(queue: ChatQueue, op: Operation): void {
  if (op.kind === 'send') {
    queue.sends.unshift(op);
    return;
  }
  if (op.kind === 'typing') {
    // A rate-limited "typing..." is not worth another try.
    for (const s of op.settle) s.resolve();
    return;
  }
  const newer = queue.edits.get(op.messageId);
  if (newer) {
    op.message = { ...op.message, ...newer.message };
    op.final ||= newer.final;
    op.settle = [...op.settle, ...newer.settle];
    queue.edits.delete(op.messageId);
  }
  queue.edits = new Map([[op.messageId, op], ...queue.edits]);
}
