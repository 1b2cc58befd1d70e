/**
 * The `ask` plugin: questions to one or several LLMs, each answer streaming into the chat as the
 * model writes it. Triggers: `/ask`, `/ask@all` (every model), a mention of the bot, a reply to
 * the bot, or any message in a private chat (each configurable). Conversations are remembered in
 * the bot's store (or a file of their own) and survive restarts; `/reset` forgets one.
 *
 * A user's second question while the first is still streaming waits its turn (it is not dropped
 * and does not cut the first short), so the second answer sees the first in its history; past
 * `maxQueuedPerUser` waiting questions, the user is refused once. An answer stops at
 * `maxAnswerChars` characters, with a note, and the history sent back is bounded too.
 */
import {
  type Context,
  createLimiter,
  createTurns,
  definePlugin,
  isCancellation,
  type Limiter,
  mergeStreams,
  type TextStream,
} from 'chorus-bot';
import { type ChatBackend, type ChatMessage, createChatBackend } from './backends.ts';
import { askConfig } from './config.ts';
import { type DemoChatServer, startDemoChatServer } from './demo.ts';
import { ConversationMemory } from './memory.ts';
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
        limiter: createLimiter(backendConfig.concurrency, {
          slots: ctx.slots,
          key: `backend:${backendConfig.name}`,
        }),
      }));
    for (const backend of config.backends) ctx.secret(backend.apiKey, ...Object.values(backend.headers));
    const store = await ConversationMemory.open({
      turns: config.memory.turns,
      maxChars: config.memory.maxChars,
      keepMs: config.memory.keepDays * 24 * 60 * 60 * 1000,
      store: ctx.store,
      ...(config.memory.path !== undefined && { path: config.memory.path }),
      clock: ctx.clock,
      log: ctx.log,
    });
    ctx.onDispose(() => store.close());
    const turns = createTurns({
      perUser: config.maxPerUser,
      maxQueued: config.maxQueuedPerUser,
      slots: ctx.slots,
    });

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
        const count = await store.reset(conversationKey(c));
        await c.reply(count === undefined ? c.t('ask.resetFailed') : c.t('ask.reset', { count }));
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
      const leave = await turns.take(c, {
        waiting: (count) => c.t('ask.waiting', { count }),
        started: c.t('ask.waitingStarted'),
        cancelled: c.t('job.cancelled'),
        full: c.t('ask.queueFull', { max: config.maxQueuedPerUser }),
      });
      if (!leave) return;
      try {
        await answerInTurn(c, question, everyModel);
      } finally {
        leave();
      }
    }

    async function answerInTurn(c: Context, question: string, everyModel: boolean): Promise<void> {
      const { replyTo } = c.message;
      const conversation =
        (replyTo?.fromBot && (await store.conversationOf(chatKey(c), replyTo.messageId))) ||
        conversationKey(c);
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

      const ended = new Set<string>();
      const cut = new Set<string>();
      const texts = new Map<string, string>();
      try {
        const history = await store.history(conversation);
        const messages: ChatMessage[] = [...history, { role: 'user', content: question }];
        const sources = new Map(
          chosen.map(({ backend, limiter }) => [
            backend.name,
            (signal: AbortSignal) =>
              capped(
                limited(
                  limiter,
                  (s) => backend.stream(messages, s),
                  signal,
                  (ahead) => {
                    void streams.get(backend.name)?.notice(c.t('ask.queued', { name: backend.name, ahead }));
                  },
                ),
                config.maxAnswerChars,
                () => cut.add(backend.name),
              ),
          ]),
        );
        const answers = new Map<string, string>();
        for await (const event of mergeStreams(sources, { signal: c.signal })) {
          const stream = streams.get(event.key)!;
          if (event.type === 'value') {
            texts.set(event.key, (texts.get(event.key) ?? '') + event.value);
            await stream.write(event.value);
            continue;
          }
          ended.add(event.key);
          if (event.type === 'error') c.log.warn('answer failed', { backend: event.key, error: event.error });
          if (cut.has(event.key)) {
            c.log.info('answer cut at maxAnswerChars', { backend: event.key, chars: config.maxAnswerChars });
            await stream.write(`\n\n${c.t('ask.tooLong', { max: config.maxAnswerChars })}`);
          }
          const result = await stream.end(
            event.type === 'end' ? 'done' : 'failed',
            event.type === 'error' ? event.error : undefined,
          );
          // In a private chat a reply to the bot continues the chat's conversation anyway.
          if (c.chat.kind !== 'private')
            for (const sent of result.messages)
              for (const id of sent.ids) await store.link(chatKey(c), id, conversation);
          if (result.outcome === 'done') answers.set(event.key, texts.get(event.key) ?? '');
        }
        // The first model's answer is the one the conversation goes on from.
        const remembered = answers.get(chosen[0]!.backend.name) ?? [...answers.values()][0];
        if (remembered !== undefined && store.enabled) {
          const saved = await store.remember(conversation, question, remembered);
          if (!saved) await c.reply(c.t('ask.notSaved'));
        }
      } catch (error) {
        const outcome = isCancellation(error) || c.signal.aborted ? 'cancelled' : 'failed';
        for (const [name, stream] of streams) if (!ended.has(name)) await stream.end(outcome, error);
        if (outcome === 'cancelled') throw error;
      }
    }
  },
});

/**
 * The pieces of `pieces` up to `max` characters in all. Past that it stops reading (which ends
 * the request) and calls `onCut`.
 */
export async function* capped(
  pieces: AsyncIterable<string>,
  max: number,
  onCut: () => void,
): AsyncGenerator<string> {
  let length = 0;
  for await (const piece of pieces) {
    if (length + piece.length <= max) {
      length += piece.length;
      yield piece;
      continue;
    }
    let room = max - length;
    // Never end on the first half of a surrogate pair.
    const code = piece.charCodeAt(room - 1);
    if (room > 0 && code >= 0xd800 && code <= 0xdbff) room--;
    if (room > 0) yield piece.slice(0, room);
    onCut();
    return;
  }
}

function chatKey(c: Pick<Context, 'chat'>): string {
  return `${c.chat.adapter}:${c.chat.id}`;
}
