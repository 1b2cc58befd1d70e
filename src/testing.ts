/**
 * The test kit for plugin authors (`chorus-bot/testing`): a fake clock (fake-clock.ts), a mock adapter that records
 * every send, edit and typing call and can inject failures (rate limits included), and
 * `createTestBot`, which runs real plugins on a real bot, router and outbox against them.
 *
 * @example
 * const kit = await createTestBot({ plugins: [{ plugin, config: { shout: true } }] });
 * await kit.run(kit.send('/echo hi'));
 * expect(kit.adapter.texts()).toEqual(['HI']);
 */
import type { Adapter, AdapterHost, AdapterLimits, EditOptions } from './adapter.ts';
import { type Bot, createBot, type PluginEntry } from './bot.ts';
import { type Clock, systemClock } from './clock.ts';
import { FakeClock, flush } from './fake-clock.ts';
import type { Http } from './http.ts';
import { createLogger, type Logger, type Redactor } from './logger.ts';
import type {
  BotIdentity,
  ButtonPress,
  ChatAddress,
  ChatKind,
  IncomingMessage,
  OutgoingMessage,
  SentMessage,
  UserRef,
} from './message.ts';
import { HttpClient } from './runtime/http.ts';
import type { ScheduledJob, ScheduleFilter } from './schedule-jobs.ts';
import type { Slots } from './slots.ts';
import { MemoryStore, type Store } from './store.ts';

export { FakeClock, flush } from './fake-clock.ts';

/** One call the mock adapter received. */
export type Recorded =
  | {
      readonly kind: 'send';
      readonly chat: ChatAddress;
      readonly id: string;
      readonly message: OutgoingMessage;
      readonly at: number;
    }
  | {
      readonly kind: 'edit';
      readonly chat: ChatAddress;
      readonly id: string;
      readonly message: OutgoingMessage;
      readonly final: boolean;
      readonly at: number;
    }
  | { readonly kind: 'typing'; readonly chat: ChatAddress; readonly at: number }
  | {
      readonly kind: 'draft';
      readonly chat: ChatAddress;
      readonly draftId: number;
      readonly text: string;
      readonly at: number;
    };

/** The state of one sent message after all its edits. */
export interface MockMessage {
  readonly id: string;
  readonly chat: ChatAddress;
  readonly text: string;
  readonly message: OutgoingMessage;
  readonly edits: number;
  readonly final: boolean;
}

/** Decides the fate of one call: return an error to make it fail. */
export type FailureRule = (call: {
  kind: 'send' | 'edit';
  chat: ChatAddress;
  message: OutgoingMessage;
}) => Error | undefined;

/** Options of {@link MockAdapter}. */
export interface MockAdapterOptions {
  readonly name?: string;
  readonly platform?: string;
  readonly limits?: Partial<AdapterLimits>;
  readonly commandPrefixes?: readonly string[];
  readonly self?: BotIdentity;
  readonly clock?: Clock;
  /** Offer drafts (`sendDraft`), as Telegram does in private chats. */
  readonly drafts?: boolean;
  /** The adapter's allow-lists: which messages it serves. Default: all. */
  readonly admits?: (message: IncomingMessage) => boolean;
}

/** An adapter that records what the bot does and lets a test play the users. */
export class MockAdapter implements Adapter {
  readonly name: string;
  readonly platform: string;
  readonly limits: AdapterLimits;
  readonly commandPrefixes: readonly string[];
  readonly self: BotIdentity;
  admits?: (message: IncomingMessage) => boolean;
  /** Every call, in order. */
  readonly calls: Recorded[] = [];
  #host: AdapterHost | undefined;
  #nextId = 0;
  #rules: { rule: FailureRule; times: number }[] = [];
  readonly #state = new Map<string, MockMessage>();
  readonly #clock: Clock | undefined;

  constructor(options: MockAdapterOptions = {}) {
    this.name = options.name ?? 'mock';
    this.platform = options.platform ?? 'mock';
    this.limits = { rate: {}, maxTextLength: 4096, maxCaptionLength: 1024, ...options.limits };
    this.commandPrefixes = options.commandPrefixes ?? ['/'];
    if (options.admits) this.admits = options.admits;
    this.self = options.self ?? { id: 'bot', username: 'chorus_bot', name: 'Chorus' };
    this.#clock = options.clock;
    if (options.drafts) {
      this.sendDraft = async (chat, draftId, text) => {
        this.calls.push({ kind: 'draft', chat, draftId, text, at: this.#now() });
      };
    }
  }

  sendDraft?: (chat: ChatAddress, draftId: number, text: string) => Promise<void>;

  async start(host: AdapterHost): Promise<BotIdentity> {
    this.#host = host;
    return this.self;
  }

  /** True once the bot has stopped this adapter. Messages sent after that must be ignored. */
  stopped = false;

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async send(chat: ChatAddress, message: OutgoingMessage): Promise<SentMessage> {
    this.#check({ kind: 'send', chat, message });
    const id = `m${++this.#nextId}`;
    this.calls.push({ kind: 'send', chat, id, message, at: this.#now() });
    this.#state.set(id, { id, chat, text: message.text ?? '', message, edits: 0, final: !message.partial });
    return { chat, ids: [id] };
  }

  async edit(chat: ChatAddress, id: string, message: OutgoingMessage, options: EditOptions): Promise<void> {
    this.#check({ kind: 'edit', chat, message });
    const before = this.#state.get(id);
    if (!before) throw new Error(`edit of unknown message ${id}`);
    if (before.chat.id !== chat.id)
      throw new Error(`edit of message ${id} through chat ${chat.id}, sent to ${before.chat.id}`);
    this.calls.push({ kind: 'edit', chat, id, message, final: options.final, at: this.#now() });
    this.#state.set(id, {
      ...before,
      text: message.text ?? '',
      message,
      edits: before.edits + 1,
      final: options.final,
    });
  }

  async sendTyping(chat: ChatAddress): Promise<void> {
    this.calls.push({ kind: 'typing', chat, at: this.#now() });
  }

  /**
   * Makes the next matching calls fail. `times` defaults to 1.
   * @example adapter.fail(() => new RateLimitError(3000), 2)
   */
  fail(rule: FailureRule, times = 1): void {
    this.#rules.push({ rule, times });
  }

  /** Every sent message with its latest text, in send order: every chat's, or `chatId`'s. */
  messages(chatId?: string): MockMessage[] {
    return [...this.#state.values()].filter((m) => chatId === undefined || m.chat.id === chatId);
  }

  /** The latest texts of the sent messages, in send order: every chat's, or `chatId`'s. */
  texts(chatId?: string): string[] {
    return this.messages(chatId).map((m) => m.text);
  }

  /** The host the bot gave this adapter (to push messages and presses). */
  get host(): AdapterHost {
    if (!this.#host) throw new Error('the mock adapter has not been started');
    return this.#host;
  }

  #now(): number {
    return this.#clock?.now() ?? Date.now();
  }

  #check(call: Parameters<FailureRule>[0]): void {
    for (const entry of this.#rules) {
      if (entry.times <= 0) continue;
      const error = entry.rule(call);
      if (error) {
        entry.times--;
        this.#rules = this.#rules.filter((e) => e.times > 0);
        throw error;
      }
    }
  }
}

/** Who sends a test message, and where. */
export interface TestMessageOptions {
  readonly user?: Partial<UserRef> & { id: string };
  readonly chat?: { id: string; kind?: ChatKind; threadId?: string };
  readonly mentionsBot?: boolean;
  readonly replyTo?: IncomingMessage['replyTo'];
}

/** Options of {@link createTestBot}. */
export interface TestBotOptions {
  readonly plugins: readonly PluginEntry[];
  readonly adapter?: MockAdapterOptions;
  readonly locale?: string;
  /** Default: a new FakeClock. */
  readonly clock?: FakeClock;
  /**
   * Run the bot on the system clock instead, for tests that talk to real (loopback) servers whose
   * latencies a fake clock cannot drive. `run()` then simply waits, at most `maxMs` of real time.
   */
  readonly realTime?: boolean;
  /** Default: a silent logger. */
  readonly log?: Logger;
  /**
   * Where scheduled jobs are kept. Default: a new in-memory store on the kit's clock. Pass one
   * store to two kits in turn to play a restart.
   */
  readonly store?: Store;
  /** The plugins' `ctx.http`. Default: a new `HttpClient`, closed when the bot stops. */
  readonly http?: Http;
  /** Scheduler options: `pollMs` for several bots running on one store at once. */
  readonly scheduler?: { readonly pollMs?: number; readonly leaseMs?: number };
  /** The bot's redactor: give the logger the same one to see what reaches the log. */
  readonly redactor?: Redactor;
  /**
   * The plugins' `ctx.slots`. Default: none, as a bot in one process. Pass one `MemorySlots` to two
   * kits to play two processes sharing their limits.
   */
  readonly slots?: Slots;
}

/** A bot running plugins against a mock adapter on a fake clock. */
export interface TestBot {
  readonly bot: Bot;
  readonly adapter: MockAdapter;
  readonly clock: FakeClock;
  /** Sends a message as a user; resolves when the bot has handled it (use `run` to drive time). */
  send(text: string, options?: TestMessageOptions): Promise<void>;
  /** Presses a button a plugin sent. */
  press(action: string, options: { messageId: string } & TestMessageOptions): Promise<void>;
  /**
   * Waits for `promise`, moving the fake clock from timer to timer while it is pending.
   * Throws when nothing is left that could settle it, or after `maxMs` of fake time.
   */
  run<T>(promise: Promise<T>, options?: { maxMs?: number }): Promise<T>;
  /**
   * The scheduled jobs waiting in the store, soonest first. `kit.clock.tick(ms)` fires those due
   * on the way, each as a job that replies through the mock adapter.
   */
  scheduled(filter?: ScheduleFilter & { readonly plugin?: string }): Promise<ScheduledJob[]>;
  /** Stops the bot. */
  stop(): Promise<void>;
}

/** Starts a bot with `plugins` on a mock adapter and a fake clock. */
export async function createTestBot(options: TestBotOptions): Promise<TestBot> {
  const clock = options.clock ?? new FakeClock();
  const adapter = new MockAdapter({ clock: options.realTime ? systemClock : clock, ...options.adapter });
  const bot = createBot({
    adapters: [adapter],
    plugins: options.plugins,
    clock: options.realTime ? systemClock : clock,
    log: options.log ?? createLogger({ level: 'silent' }),
    ...(options.redactor && { redactor: options.redactor }),
    ...(options.locale !== undefined && { locale: options.locale }),
    store: options.store ?? new MemoryStore({ clock: options.realTime ? systemClock : clock }),
    http: options.http ?? new HttpClient(),
    ...(options.scheduler && { scheduler: options.scheduler }),
    ...(options.slots && { slots: options.slots }),
  });
  await bot.start();
  let nextMessage = 0;

  const chatOf = (o: TestMessageOptions = {}): ChatAddress => ({
    adapter: adapter.name,
    platform: adapter.platform,
    id: o.chat?.id ?? 'chat-1',
    kind: o.chat?.kind ?? 'private',
    ...(o.chat?.threadId !== undefined && { threadId: o.chat.threadId }),
  });
  const userOf = (o: TestMessageOptions = {}): UserRef => ({
    name: 'Test User',
    ...(o.user ?? { id: 'user-1' }),
  });

  const run = async <T>(promise: Promise<T>, runOptions: { maxMs?: number } = {}): Promise<T> => {
    if (options.realTime) {
      const limit = runOptions.maxMs ?? 30_000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run(): still pending after ${limit} ms`)), limit);
      });
      return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
    }
    let settled = false;
    const tracked = promise.finally(() => {
      settled = true;
    });
    tracked.catch(() => {});
    const deadline = clock.now() + (runOptions.maxMs ?? 3_600_000);
    await flush();
    while (!settled) {
      const next = clock.nextTimerAt();
      if (next === undefined) {
        // Nothing scheduled on the fake clock: give real I/O a moment, then give up.
        await new Promise((resolve) => setTimeout(resolve, 5));
        await flush();
        if (!settled && clock.nextTimerAt() === undefined) {
          throw new Error('run(): the promise is still pending and no fake timer is left to fire');
        }
        continue;
      }
      if (next > deadline)
        throw new Error(`run(): still pending after ${runOptions.maxMs ?? 3_600_000} ms of fake time`);
      await clock.tick(Math.max(0, next - clock.now()));
    }
    return tracked;
  };

  return {
    bot,
    adapter,
    clock,
    send: async (text, o = {}) => {
      const message: IncomingMessage = {
        id: `in${++nextMessage}`,
        chat: chatOf(o),
        sender: userOf(o),
        text,
        mentionsBot: o.mentionsBot ?? false,
        images: [],
        date: clock.now(),
        ...(o.replyTo && { replyTo: o.replyTo }),
      };
      await adapter.host.receive(message);
      await bot.settled(message);
    },
    press: (action, o) => {
      const press: ButtonPress = {
        id: `press${++nextMessage}`,
        chat: chatOf(o),
        user: userOf(o),
        messageId: o.messageId,
        action,
      };
      return adapter.host.press(press);
    },
    run,
    scheduled: (filter) => bot.scheduled(filter),
    stop: () => run(bot.stop()),
  };
}
