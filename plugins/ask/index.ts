/**
 * The `ask` plugin: questions to one or several LLMs, each answer streaming into the chat as the
 * model writes it. Triggers: `/ask`, `/ask@all` (every model), a mention of the bot, a reply to
 * the bot, or any message in a private chat (each configurable). Conversations are remembered in
 * SQLite and survive restarts; `/reset` forgets one.
 *
 * A user's second question while the first is still streaming waits its turn (it is not dropped
 * and does not cut the first short), so the second answer sees the first in its history.
 */
import {
  type Context,
  createKeyedLimiter,
  createLimiter,
  definePlugin,
  isCancellation,
  type Limiter,
  mergeStreams,
  type TextStream,
} from 'chorus';
import { type ChatBackend, type ChatMessage, createChatBackend } from './backends.ts';
import { askConfig } from './config.ts';
import { type DemoChatServer, startDemoChatServer } from './demo.ts';
import { ConversationStore } from './memory.ts';
import { strings } from './strings.ts';

/** Which conversation a message belongs to: the chat in private, the chat and user in groups. */
export function conversationKey(c: Pick<Context, 'chat' | 'user'>): string {
  const { chat } = c;
  const base = `${chat.adapter}:${chat.id}${chat.threadId === undefined ? '' : `:${chat.threadId}`}`;
  return chat.kind === 'private' ? base : `${base}:${c.user.id}`;
}

/** Async iteration over `open()` that holds one of the backend's slots while it runs. */
async function* limited(
  limiter: Limiter,
  open: (signal: AbortSignal) => AsyncIterable<string>,
  signal: AbortSignal,
  onQueued: (ahead: number) => void,
): AsyncGenerator<string> {
  const release = await limiter.acquire({ signal, onQueued });
  try {
    yield* open(signal);
  } finally {
    release();
  }
}

/** The `ask` plugin. */
export const plugin = definePlugin({
  name: 'ask',
  config: askConfig,
  async setup(ctx, config) {
    ctx.strings(strings);
    let demo: DemoChatServer | undefined;
    if (config.backends.some((backend) => backend.type === 'demo' && backend.enabled)) {
      demo = await startDemoChatServer();
      ctx.onDispose(() => demo?.close());
      ctx.log.info('demo chat backend running (answers are canned, labelled demo)', { url: demo.url });
    }
    const backends: { backend: ChatBackend; limiter: Limiter }[] = config.backends
      .filter((backend) => backend.enabled)
      .map((backendConfig) => ({
        backend: createChatBackend(backendConfig, { http: ctx.http, clock: ctx.clock, demoUrl: demo?.url }),
        limiter: createLimiter(backendConfig.concurrency),
      }));
    const store = new ConversationStore(config.memory.path, config.memory.turns);
    ctx.onDispose(() => store.close());
    const perUser = createKeyedLimiter(config.maxPerUser);

    ctx.command(
      {
        name: 'ask',
        description: {
          en: 'Ask the AI (/ask@all: every model)',
          'zh-CN': '向 AI 提问（/ask@all：问所有模型）',
        },
        usage: '<question>',
        targets: ['all'],
        options: [{ name: 'question', description: 'Your question', required: true }],
      },
      (c) => answer(c, c.command?.args ?? '', c.command?.target === 'all' || config.fanout),
    );
    ctx.command(
      { name: 'reset', description: { en: 'Forget this conversation', 'zh-CN': '清除此对话' } },
      async (c) => {
        await c.reply(c.t('ask.reset', { count: store.reset(conversationKey(c)) }));
      },
    );
    const { triggers } = config;
    ctx.match(
      {
        name: 'ask',
        test: (m) =>
          (triggers.mention && m.mentionsBot) ||
          (triggers.replyToBot && m.replyTo?.fromBot === true) ||
          (triggers.privateChat && m.chat.kind === 'private'),
      },
      (c) => {
        // Drop the mention itself: "@chorus_bot why?" asks "why?".
        const mention = c.bot.username ? new RegExp(`@${c.bot.username}\\b`, 'gi') : undefined;
        return answer(c, mention ? c.message.text.replace(mention, ' ') : c.message.text, config.fanout);
      },
    );

    async function answer(c: Context, rawQuestion: string, everyModel: boolean): Promise<void> {
      const question = rawQuestion.trim();
      if (!question) {
        await c.reply(c.t('ask.usage'));
        return;
      }
      const { replyTo } = c.message;
      const conversation =
        (replyTo?.fromBot && store.conversationOf(chatKey(c), replyTo.messageId)) || conversationKey(c);
      const chosen = everyModel ? backends : backends.slice(0, 1);
      const interval = config.editIntervalMs;
      const editIntervalMs =
        typeof interval === 'object' ? interval[c.chat.kind === 'private' ? 'private' : 'group'] : interval;
      const streams = new Map<string, TextStream>(
        chosen.map(({ backend }) => [
          backend.name,
          c.openStream({
            format: 'markdown',
            ...(editIntervalMs !== undefined && { editIntervalMs }),
            drafts: config.drafts,
            ...(chosen.length > 1 && { header: `${backend.name}:\n` }),
          }),
        ]),
      );

      const userKey = `${c.chat.adapter}:${c.user.id}`;
      const waited = perUser.busy(userKey);
      const entered = perUser.acquire(userKey, c.signal);
      entered.catch(() => {});
      if (waited) for (const stream of streams.values()) await stream.notice(c.t('ask.waitingForYou'));
      let release: (() => void) | undefined;
      const ended = new Set<string>();
      try {
        release = await entered;
        const history = store.history(conversation);
        const messages: ChatMessage[] = [...history, { role: 'user', content: question }];
        const sources = new Map(
          chosen.map(({ backend, limiter }) => [
            backend.name,
            (signal: AbortSignal) =>
              limited(
                limiter,
                (s) => backend.stream(messages, s),
                signal,
                (ahead) => {
                  void streams.get(backend.name)?.notice(c.t('ask.queued', { name: backend.name, ahead }));
                },
              ),
          ]),
        );
        const answers = new Map<string, string>();
        for await (const event of mergeStreams(sources, { signal: c.signal })) {
          const stream = streams.get(event.key)!;
          if (event.type === 'value') {
            await stream.write(event.value);
            continue;
          }
          ended.add(event.key);
          if (event.type === 'error') c.log.warn('answer failed', { backend: event.key, error: event.error });
          const result = await stream.end(
            event.type === 'end' ? 'done' : 'failed',
            event.type === 'error' ? event.error : undefined,
          );
          for (const sent of result.messages)
            for (const id of sent.ids) store.link(chatKey(c), id, conversation);
          if (result.outcome === 'done') answers.set(event.key, result.text);
        }
        // The first model's answer is the one the conversation goes on from.
        const remembered = answers.get(chosen[0]!.backend.name) ?? [...answers.values()][0];
        if (remembered !== undefined) store.remember(conversation, question, remembered);
      } catch (error) {
        const outcome = isCancellation(error) || c.signal.aborted ? 'cancelled' : 'failed';
        for (const [name, stream] of streams) if (!ended.has(name)) await stream.end(outcome, error);
        if (outcome === 'cancelled') throw error;
      } finally {
        release?.();
      }
    }
  },
});

function chatKey(c: Pick<Context, 'chat'>): string {
  return `${c.chat.adapter}:${c.chat.id}`;
}
