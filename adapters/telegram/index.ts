/**
 * The Telegram adapter, on grammY. Long polling (default, `polling.ts`) or a webhook mounted on
 * the process's HTTP server; private chats, groups, supergroups with forum topics, and channels.
 * grammY makes the Bot API calls (over `transport.ts`); this module maps updates to Chorus
 * messages and Chorus messages to Bot API calls, and declares Telegram's budgets to the outbox
 * (1 message a second per chat, 20 a minute per group, 30 a second overall).
 *
 * No update is lost or handled twice: pending updates are never dropped, an update is confirmed
 * only once the router has taken it or the bot's store holds it, and the ids handled in the last
 * day are kept in the store per bot, so one that comes again after a crash is recognised.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { type Api, type ApiClientOptions, Bot, GrammyError, webhookCallback } from 'grammy';
import { fetch } from 'undici';
import { type Adapter, type AdapterHost, defineAdapter, type EditOptions } from '../../src/adapter.ts';
import { sleep, systemClock } from '../../src/clock.ts';
import type { CommandSpec } from '../../src/commands.ts';
import { AdapterError } from '../../src/errors.ts';
import { readBytes } from '../../src/http.ts';
import type { BotIdentity, ImageRef } from '../../src/message.ts';
import { type TelegramAdapterOptions, telegramConfig } from './config.ts';
import { normalizeCallback, normalizeMessage } from './normalize.ts';
import { pollUpdates } from './polling.ts';
import { createTelegramSender, planSend } from './send.ts';
import { HandledUpdates } from './state.ts';
import { createBotApiTransport } from './transport.ts';

export { type TelegramAdapterOptions, type TelegramConfig, telegramConfig } from './config.ts';

/**
 * With several processes (`state.redis`), one polls at a time: it holds a lease in the store for
 * this long and renews it every third of it; when it dies, another takes over within about this.
 */
const pollLeaseMs = 4_000;

/** grammY types its signals as a polyfill's; a standard AbortSignal is what it takes. */
const grammySignal = (signal: AbortSignal) => signal as Parameters<Api['getUpdates']>[1];

/** Creates a Telegram adapter. */
export function createTelegramAdapter(options: TelegramAdapterOptions): Adapter {
  const config = telegramConfig.parse(
    Object.fromEntries(Object.entries(options).filter(([key]) => key !== 'name' && key !== 'proxy')),
  );
  const name = options.name ?? 'telegram';
  const transport = createBotApiTransport({ proxy: options.proxy });
  const bot = new Bot(config.token, {
    // grammY types `fetch` as node-fetch's; it calls it with a URL and an init and reads `json()`.
    client: { apiRoot: config.apiRoot, fetch: transport.fetch as unknown as ApiClientOptions['fetch'] },
  });
  // The token starts with the bot's id: the handled ids are the bot's, whatever the instance is called.
  const botId = config.token.split(':')[0]!;
  let host: AdapterHost | undefined;
  let self: BotIdentity | undefined;
  let polling: Promise<void> | undefined;
  /** Aborted when intake stops: polling and the wait for the polling lease end. */
  const intake = new AbortController();
  let unmountWebhook: (() => void) | undefined;
  /** Webhook posts being handled: shutdown lets them finish (they confirm their update). */
  const posts = new Set<Promise<Response>>();
  let handled: HandledUpdates | undefined;
  /** Set once started: updates are taken from then on. */
  let started = false;

  // Installed first, so it is innermost: it sees every 429, the ones autoRetry retries too.
  bot.api.config.use(async (prev, method, payload, signal) => {
    const result = await prev(method, payload, signal);
    if (!result.ok && result.error_code === 429) host?.rateLimited?.();
    return result;
  });
  bot.api.config.use(
    autoRetry({ maxRetryAttempts: config.maxRetries, maxDelaySeconds: 60, rethrowHttpErrors: true }),
  );
  const updateTypes: ('message' | 'channel_post' | 'callback_query')[] = [
    'message',
    'channel_post',
    'callback_query',
  ];

  /**
   * How long polling waits after a failed poll: while the network is down, from 0.5 s doubling up
   * to 30 s (and the connection counts as down until a poll gets through); Telegram's `retry_after`
   * on a 429; 3 s after another refusal. A revoked token or another process polling the same bot
   * (401, 409) ends polling.
   */
  let unreachable = false;
  const retryDelayMs = (error: unknown, failures: number): number => {
    if (error instanceof GrammyError) {
      if (error.error_code === 401 || error.error_code === 409) throw error;
      host?.log.warn('telegram refused a poll, retrying', { error: error.description });
      return error.error_code === 429 ? (error.parameters.retry_after ?? 3) * 1000 : 3000;
    }
    const delay = Math.min(500 * 2 ** failures, 30_000);
    if (!unreachable) {
      unreachable = true;
      host?.connection?.(false);
    }
    host?.log.warn('telegram unreachable, retrying', {
      ms: delay,
      error: error instanceof Error ? error.message : String(error),
    });
    return delay;
  };

  /** Long polling until `signal` aborts: the webhook is removed first (Telegram refuses both). */
  async function poll(h: AdapterHost, signal: AbortSignal, handOver?: AbortSignal): Promise<void> {
    try {
      await pollUpdates(
        {
          prepare: (abort) =>
            bot.api.deleteWebhook({ drop_pending_updates: false }, grammySignal(abort)).then(() => {}),
          getUpdates: (offset, abort) =>
            bot.api.getUpdates(
              { offset, limit: 100, timeout: 30, allowed_updates: updateTypes },
              grammySignal(abort),
            ),
          confirm: async (offset) => {
            // Not when another process polls now: a second poll would cut its poll short.
            if (!signal.aborted || intake.signal.aborted)
              await bot.api.getUpdates(
                { offset, limit: 1, timeout: 0, allowed_updates: updateTypes },
                // Shutdown does not wait on it for long: what it would confirm is remembered as handled.
                grammySignal(AbortSignal.timeout(5000)),
              );
          },
          // A failed update is logged, as grammY's own polling does, and the batch goes on.
          take: (update) =>
            bot
              .handleUpdate(update)
              .catch((error: unknown) => h.log.error('telegram update failed', { error })),
          handled: handled!,
          retryDelayMs,
          onRecovered: () => {
            if (!unreachable) return;
            unreachable = false;
            host?.connection?.(true);
          },
        },
        signal,
        handOver,
      );
    } catch (error) {
      h.log.error('telegram polling stopped', { error });
    }
  }

  const allowed = (chatId: string, userId: string) =>
    (!config.allowedChats || config.allowedChats.includes(chatId)) &&
    (!config.allowedUsers || config.allowedUsers.includes(userId));

  /**
   * Hands an update to Chorus once: a second delivery of the same update id is dropped. Resolves
   * once the router has taken it (its job runs on), so grammY confirms only updates that are taken.
   */
  const inFlight = new Set<number>();
  const take = async (updateId: number, dispatch: () => Promise<void> | undefined) => {
    // A second delivery that comes while the first is still being taken (Telegram resends a
    // webhook call that took too long) is dropped too.
    if (!started || handled?.has(updateId) || inFlight.has(updateId)) return;
    inFlight.add(updateId);
    try {
      await dispatch();
    } catch (error) {
      host?.log.error('handling an update failed', { updateId, error });
    } finally {
      inFlight.delete(updateId);
    }
    handled?.add(updateId);
    if (config.mode === 'webhook') await handled?.flush();
  };

  bot.on(['message', 'channel_post'], async (ctx) => {
    const message = ctx.update.message ?? ctx.update.channel_post;
    await take(ctx.update.update_id, () => {
      // The allow-lists are the router's to apply (`admits`).
      const normalized = message && self ? normalizeMessage(name, message, self) : undefined;
      return normalized && host?.receive(normalized);
    });
  });
  bot.on('callback_query', async (ctx) => {
    // Answer at once, so the user's client stops its spinner.
    await ctx
      .answerCallbackQuery()
      .catch((error: unknown) => host?.log.debug('answerCallbackQuery failed', { error }));
    await take(ctx.update.update_id, () => {
      const press = normalizeCallback(name, ctx.update.callback_query);
      if (!press || !allowed(press.chat.id, press.user.id)) return undefined;
      return host?.press(press);
    });
  });
  bot.catch((error) => host?.log.error('telegram update failed', { error: error.error }));

  const { call, send, edit } = createTelegramSender(bot.api, name, () => host?.log);

  const loadHandled = (h: AdapterHost) =>
    HandledUpdates.load(h.store, botId, { onError: (what, error) => h.log.warn(what, { error }) });

  /** Polls while this process holds the bot's polling lease; waits for it otherwise. */
  async function pollUnderLease(h: AdapterHost): Promise<void> {
    while (!intake.signal.aborted) {
      const lease = await h.store.lock(`polling:${botId}`, pollLeaseMs).catch((error: unknown) => {
        h.log.warn('could not ask for the polling lease', { error });
        return undefined;
      });
      if (!lease) {
        await sleep(systemClock, pollLeaseMs / 4, intake.signal).catch(() => {});
        continue;
      }
      h.log.info('this process polls telegram');
      // What the last holder took and held since this process started: read now, not at start.
      handled = await loadHandled(h);
      const lost = new AbortController();
      const running = poll(h, AbortSignal.any([intake.signal, lost.signal]), lost.signal);
      const renew = setInterval(() => {
        void lease.extend(pollLeaseMs).then(
          (kept) => {
            if (kept || lost.signal.aborted) return;
            h.log.warn('lost the polling lease: another process polls now');
            lost.abort();
          },
          () => {},
        );
      }, pollLeaseMs / 4);
      await running;
      clearInterval(renew);
      await lease.release().catch(() => {});
      // Polling ended on its own (an error): a pause, not a tight loop.
      if (!intake.signal.aborted) await sleep(systemClock, pollLeaseMs / 4, intake.signal).catch(() => {});
    }
  }

  const adapter: Adapter = {
    name,
    platform: 'telegram',
    commandPrefixes: ['/'],
    limits: {
      rate: {
        // A sliding window of `burst` per `burst` seconds: bursts of results, 1/s on average.
        perChat: {
          count: config.rateLimits.perChatBurst,
          periodMs: Math.ceil((config.rateLimits.perChatBurst * 1000) / config.rateLimits.perChatPerSecond),
        },
        perGroup: { count: config.rateLimits.perGroupPerMinute, periodMs: 60_000 },
        global: { count: config.rateLimits.globalPerSecond, periodMs: 1000 },
      },
      maxTextLength: 4096,
      maxCaptionLength: 1024,
    },

    async start(h) {
      host = h;
      if (config.stateDir !== undefined)
        h.log.warn(
          'adapters.telegram.stateDir is no longer used: handled update ids are kept in the state store (state.path)',
        );
      // Behind several processes, a webhook's update goes to the shared work queue, which drops one
      // it has queued before: a store entry per update here would only cost a write each.
      if (!(config.mode === 'webhook' && h.shared)) {
        handled = await loadHandled(h);
      }
      // getMe directly, not bot.init(): init retries network errors forever, and a bot that cannot
      // reach Telegram at start should say so.
      const me = await call('getMe', () => bot.api.getMe());
      bot.botInfo = me;
      self = { id: String(me.id), username: me.username, name: me.first_name };
      started = true;
      if (config.mode === 'webhook' && config.webhook) {
        const hook = config.webhook;
        if (!h.httpServer)
          throw new AdapterError(name, 'webhook mode needs the process’s HTTP server (http.server)', {
            remote: false,
            code: 'ADAPTER_NO_HTTP_SERVER',
          });
        // Answers once the update's handler has run, that is once the router has taken it.
        const handle = webhookCallback(bot, 'std/http', {
          ...(hook.secretToken && { secretToken: hook.secretToken }),
        });
        unmountWebhook = await h.httpServer.mount('POST', hook.path, (request) => {
          const post = handle(request);
          posts.add(post);
          return post.finally(() => posts.delete(post));
        });
        await call('setWebhook', () =>
          bot.api.setWebhook(hook.url, {
            allowed_updates: updateTypes,
            drop_pending_updates: false,
            ...(hook.secretToken && { secret_token: hook.secretToken }),
          }),
        );
      } else {
        polling = h.shared ? pollUnderLease(h) : poll(h, intake.signal);
      }
      return self;
    },

    async stopReceiving() {
      intake.abort();
      if (unmountWebhook) {
        // Keep the webhook: Telegram holds updates for us until we are back (a post now gets 404,
        // which Telegram retries).
        unmountWebhook();
        unmountWebhook = undefined;
        await Promise.allSettled([...posts]);
      }
      // Polling takes the rest of the batch in hand, saves what it took and confirms it.
      await polling;
      await handled?.flush();
    },

    async stop() {
      await adapter.stopReceiving!();
      await transport.close().catch(() => {});
    },

    planSend,

    admits: (message) => allowed(message.chat.id, message.sender.id),

    /** Sends one piece of `planSend` (the outbox plans once). */
    send,

    edit: (chat, messageId, message, _options: EditOptions) => edit(chat, messageId, message),

    async sendTyping(chat) {
      await call('sendChatAction', () =>
        bot.api.sendChatAction(
          Number(chat.id),
          'typing',
          chat.threadId === undefined ? {} : { message_thread_id: Number(chat.threadId) },
        ),
      );
    },

    async sendDraft(chat, draftId, text) {
      if (chat.kind !== 'private') return;
      await call('sendMessageDraft', () =>
        bot.api.sendMessageDraft(
          Number(chat.id),
          draftId,
          text,
          chat.threadId === undefined ? {} : { message_thread_id: Number(chat.threadId) },
        ),
      );
    },

    async registerCommands(commands: readonly CommandSpec[]) {
      const list = commands.map((command) => ({
        command: command.name,
        description: (typeof command.description === 'string'
          ? command.description
          : (command.description.en ?? Object.values(command.description)[0] ?? command.name)
        ).slice(0, 256),
      }));
      await call('setMyCommands', () => bot.api.setMyCommands(list));
    },

    async fetchImage(image: ImageRef, signal?: AbortSignal) {
      const file = await call('getFile', () => bot.api.getFile(image.id));
      if (!file.file_path)
        throw new AdapterError(name, 'telegram gave no path for the file', { remote: true });
      const response = await fetch(`${config.apiRoot}/file/bot${config.token}/${file.file_path}`, {
        dispatcher: transport.dispatcher,
        ...(signal && { signal }),
      }).catch((error: unknown) => {
        throw new AdapterError(name, 'telegram unreachable (file download)', { remote: false, cause: error });
      });
      if (!response.ok)
        throw new AdapterError(name, `telegram refused the file download: HTTP ${response.status}`, {
          remote: true,
        });
      // The Bot API hands out files of up to 20 MB; more is not read.
      return readBytes(response as unknown as Response, `${name} file`, 20 * 1024 * 1024);
    },
  };
  return adapter;
}

/** The `telegram` adapter type, as the config names it under `adapters:`. */
export const adapter = defineAdapter({
  type: 'telegram',
  config: telegramConfig,
  create: ({ name, config, proxy }) => createTelegramAdapter({ name, proxy, ...config }),
});
