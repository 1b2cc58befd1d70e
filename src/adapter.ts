/**
 * The adapter contract. Required: start, stop, send, edit. Everything else is an optional
 * capability that callers check for (`if (adapter.sendTyping) ...`).
 */
import type { CommandSpec } from './commands.ts';
import type { HttpMounts } from './http-routes.ts';
import type { Logger } from './logger.ts';
import type {
  BotIdentity,
  ButtonPress,
  ChatAddress,
  ImageRef,
  IncomingMessage,
  OutgoingMessage,
  Platform,
  SentMessage,
} from './message.ts';
import type { ConfigSchema } from './plugin.ts';
import type { Store } from './store.ts';

/** At most `count` operations in any `periodMs` window. */
export interface RateLimit {
  readonly count: number;
  readonly periodMs: number;
}

/** The budgets an adapter declares; the outbox keeps them. */
export interface RateLimits {
  /** Per chat. */
  readonly perChat?: RateLimit;
  /** Per group or channel chat, on top of `perChat`. */
  readonly perGroup?: RateLimit;
  /** Across every chat of this adapter. */
  readonly global?: RateLimit;
}

/** What an adapter's platform accepts. */
export interface AdapterLimits {
  readonly rate: RateLimits;
  /** Longest text message, in UTF-16 code units. */
  readonly maxTextLength: number;
  /** Longest caption on an image message. */
  readonly maxCaptionLength: number;
}

/** What Chorus gives an adapter when it starts. */
export interface AdapterHost {
  /**
   * Hands an incoming message to Chorus. Resolves once the router has taken it (its job started),
   * not when the job ends: an adapter confirms an update to its platform after this resolves.
   */
  receive(message: IncomingMessage, options?: ReceiveOptions): Promise<void>;
  /** Hands a button press to Chorus. */
  press(press: ButtonPress): Promise<void>;
  /** The adapter's input has ended for good (the console's stdin closed): finish jobs, then stop. */
  inputEnded(): void;
  /**
   * Counts a 429 the platform answered (`chorus_rate_limited_total`). Call it for every one,
   * whether the SDK retried it or it reached the outbox as a `RateLimitError`: only the adapter
   * sees them all. Optional, so that a host made by hand (in a test) need not count.
   */
  rateLimited?(): void;
  /**
   * Tells Chorus that the platform connection dropped (`false`: polls fail, the gateway is
   * reconnecting) or is back (`true`), after `start` resolved: `chorus_adapter_up` and `/readyz`
   * follow it. Optional, like `rateLimited`.
   */
  connection?(up: boolean): void;
  readonly log: Logger;
  /**
   * The process's HTTP server, where webhooks mount (`handle(Request) → Response`); absent when
   * the bot runs without one (a test without a server).
   */
  readonly httpServer?: HttpMounts;
  /**
   * Durable state for the adapter (update ids already handled, event ids seen): the bot's store,
   * in a namespace of the adapter's platform, so that what one run of a Telegram bot remembers is
   * there for the next, whatever the instance is called.
   */
  readonly store: Store;
  /**
   * True when other processes serve the same bot (`state.redis`): what must run in one process at
   * a time (Telegram's long polling) takes a lease in the store first.
   */
  readonly shared?: boolean;
}

/** Options of `AdapterHost.receive`. */
export interface ReceiveOptions {
  /**
   * Handle it in this process, not through the work queue of several processes: its reply handle
   * means something only here (a Discord interaction, whose token this process holds).
   */
  readonly local?: boolean;
}

/** Whether an edit is the last one of its message (adapters may show intermediate ones lightly). */
export interface EditOptions {
  readonly final: boolean;
}

/** A platform connection. */
export interface Adapter {
  /** The instance name: its key under `adapters:` in the config. */
  readonly name: string;
  readonly platform: Platform;
  readonly limits: AdapterLimits;
  /** Prefixes that start a command here (`/` on Telegram, `!` for Discord text commands). */
  readonly commandPrefixes: readonly string[];

  /** Connects, and resolves with the bot's identity once incoming messages may flow. */
  start(host: AdapterHost): Promise<BotIdentity>;
  /** Stops taking messages and disconnects. */
  stop(): Promise<void>;
  /**
   * Stops taking new messages, while sends and edits keep working until `stop()`: the first step of
   * a shutdown, so that an update which arrives after it stays with the platform for the next run.
   */
  stopReceiving?(): Promise<void>;
  /**
   * Sends a message: one piece as `planSend` returns them (the outbox plans once, and paces each
   * piece). Throws `RateLimitError` when the platform asks to slow down.
   */
  send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage>;
  /** Replaces the text of a sent message. Throws `RateLimitError` when the platform asks to slow down. */
  edit(chat: ChatAddress, messageId: string, message: OutgoingMessage, options: EditOptions): Promise<void>;

  /**
   * Splits a message into the pieces the platform takes one API call each (an album of 12 is two
   * media groups), so the outbox can pace every call within the budget. Default: one piece.
   */
  planSend?(message: OutgoingMessage): OutgoingMessage[];
  /**
   * Whether this adapter serves the message's chat and sender (its allow-lists). The router's
   * allow-list step asks it; without it every chat is served.
   */
  admits?(message: IncomingMessage): boolean;
  /** Shows "typing..." for a few seconds. */
  sendTyping?(chat: ChatAddress): Promise<void>;
  /** Shows a draft that grows in place (Telegram private chats), before the real message is sent. */
  sendDraft?(chat: ChatAddress, draftId: number, text: string): Promise<void>;
  /** Publishes the plugins' commands to the platform's command menu. */
  registerCommands?(commands: readonly CommandSpec[]): Promise<void>;
  /** Downloads an incoming image. */
  fetchImage?(image: ImageRef, signal?: AbortSignal): Promise<Uint8Array>;
  /**
   * Chorus is done with `message` (as `receive` got it): every job it started has ended, or it
   * started none. An adapter that acknowledged the message in advance (a deferred Discord slash
   * command, "thinking...") tidies up what no reply took over.
   */
  settled?(message: IncomingMessage): void;
}

/** What an adapter definition's `create` gets. */
export interface AdapterCreateOptions<Config> {
  /** The instance name: its key under `adapters:` in the config. */
  readonly name: string;
  /** The instance's config section, validated by the definition's schema. */
  readonly config: Config;
  /**
   * The bot's `http.proxy`, for an adapter that makes HTTP requests of its own (Telegram's Bot API
   * calls, Discord's REST calls). Unset: the adapter follows `HTTPS_PROXY` / `HTTP_PROXY` from the
   * environment, if at all.
   */
  readonly proxy?: string | undefined;
}

/**
 * An adapter type: what an adapter folder or package exports (`export const adapter = defineAdapter(...)`).
 * The config names instances of it under `adapters:`; each instance is one `create` call.
 */
export interface AdapterDefinition<Config = unknown> {
  /** The type name used in `adapters.<name>` or `adapters.<name>.type`. */
  readonly type: string;
  /** Validates an instance's config section; the validated value goes to `create`. */
  readonly config?: ConfigSchema<Config>;
  // Method syntax on purpose: an AdapterDefinition<{ token: string }> must fit where an
  // AdapterDefinition<unknown> is expected.
  create(options: AdapterCreateOptions<Config>): Adapter;
}

/**
 * Defines an adapter type. Exists for type inference only: `config` in `create` gets the schema's
 * output type.
 *
 * @example
 * export const adapter = defineAdapter({
 *   type: 'matrix',
 *   config: z.strictObject({ homeserver: z.url(), token: z.string() }),
 *   create: ({ name, config }) => createMatrixAdapter({ name, ...config }),
 * });
 */
export function defineAdapter<Config = undefined>(
  definition: AdapterDefinition<Config>,
): AdapterDefinition<Config> {
  return definition;
}
