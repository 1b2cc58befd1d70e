import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as ask } from '../../plugins/ask/index.ts';
import { systemClock } from '../../src/clock.ts';
import { RateLimitError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { MemorySlots, type Slots } from '../../src/slots.ts';
import { MemoryStore } from '../../src/store.ts';
import { createTestBot, type MockAdapterOptions, type TestBot } from '../../src/testing.ts';
import { type FakeLlm, startFakeLlm } from '../fakes/llm.ts';

let llm: FakeLlm;
const kits: TestBot[] = [];
beforeEach(async () => {
  llm = await startFakeLlm();
});
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
  await llm.close();
});

const openai = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'openai',
  baseUrl: `${llm.url}/v1`,
  model: name,
  ...extra,
});
const ollama = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'ollama',
  baseUrl: llm.url,
  model: name,
  ...extra,
});

let logs: string[] = [];
async function start(config: Record<string, unknown>, adapter: MockAdapterOptions = {}, slots?: Slots) {
  logs = [];
  const kit = await createTestBot({
    log: createLogger({ level: 'debug', write: (line) => logs.push(line) }),
    plugins: [
      {
        plugin: ask,
        config: { memory: { path: ':memory:' }, editIntervalMs: { private: 0, group: 0 }, ...config },
      },
    ],
    realTime: true,
    adapter,
    ...(slots && { slots }),
  });
  kits.push(kit);
  return kit;
}

const answerOf = (kit: TestBot, chatId = 'chat-1') => kit.adapter.texts(chatId).join('\n');
const answer = 'Rayleigh scattering: 你好 😀 blue light scatters more. Done.';
const pieces = answer.match(/.{1,5}/gsu)!;

describe('ask: streaming from the wire formats', () => {
  it('assembles an OpenAI SSE answer cut anywhere, even inside UTF-8 characters', async () => {
    for (const cutBytes of [1, 2, 3, 7]) {
      llm.script(`gpt${cutBytes}`, { pieces, cutBytes });
      const kit = await start({ backends: [openai(`gpt${cutBytes}`)] });
      await kit.run(kit.send('/ask why is the sky blue?'));
      expect(kit.adapter.texts()).toEqual([answer]);
      expect(kit.adapter.messages()[0]!.final).toBe(true);
      expect(kit.adapter.messages()[0]!.message.format).toBe('markdown');
    }
  });

  it('assembles an Ollama NDJSON answer cut anywhere', async () => {
    llm.script('llama', { pieces, cutBytes: 3 });
    const kit = await start({ backends: [ollama('llama')] });
    await kit.run(kit.send('/ask why?'));
    expect(kit.adapter.texts()).toEqual([answer]);
    expect(llm.requests[0]!.path).toBe('/api/chat');
  });

  it('turns errors mid-stream into a short note after the text so far; what the model said goes to the log', async () => {
    llm.script('oai', { pieces: ['Partial ', 'answer'], ending: 'openai-error' });
    llm.script('vllm', { pieces: ['Partial ', 'answer'], ending: 'vllm-error' });
    llm.script('oll', { pieces: ['Partial ', 'answer'], ending: 'ollama-error' });
    llm.script('cut', { pieces: ['Partial ', 'answer'], ending: 'cut' });
    const expected: Record<string, [string, string]> = {
      oai: ['refused', 'oai: upstream overloaded'],
      vllm: ['refused', 'vllm: vllm: out of memory'],
      oll: ['refused', 'oll: model requires more system memory'],
      cut: ['network error', 'cut: '],
    };
    for (const [name, backend] of [
      ['oai', openai('oai')],
      ['vllm', openai('vllm')],
      ['oll', ollama('oll')],
      ['cut', openai('cut')],
    ] as const) {
      const kit = await start({ backends: [backend] });
      await kit.run(kit.send('/ask q'));
      expect(answerOf(kit)).toBe(`Partial answer\n\n(answer cut short: ${expected[name]![0]})`);
      expect(logs.find((line) => line.includes('answer failed'))).toContain(expected[name]![1]);
    }
  });

  it('gives up on a stall and on a model that never starts, saying so', async () => {
    llm.script('stall', { pieces: ['Half'], ending: 'stall' });
    llm.script('mute', { pieces: ['late'], firstByteMs: 2000 });
    const kit = await start({
      backends: [openai('stall', { idleTimeoutMs: 200 }), openai('mute', { firstTokenTimeoutMs: 200 })],
      fanout: true,
    });
    await kit.run(kit.send('/ask q'));
    const texts = kit.adapter.texts();
    expect(texts).toContain('stall:\nHalf\n\n(answer cut short: timed out)');
    expect(texts).toContain('mute:\n(answer cut short: timed out)');
    expect(logs.join('\n')).toContain('stall: went silent mid-answer');
    expect(logs.join('\n')).toContain('mute: no answer in time');
  });
});

describe('ask: several models, cancel, limits', () => {
  it('/ask@all streams each model into its own labelled reply; a failure marks only its own', async () => {
    llm.script('a', { pieces: ['alpha ', 'answer'], gapMs: 5 });
    llm.script('b', { pieces: ['beta'], ending: 'openai-error' });
    llm.script('c', { pieces: ['gamma ', 'answer'], gapMs: 20 });
    const kit = await start({ backends: [openai('a'), openai('b'), ollama('c')] });
    await kit.run(kit.send('/ask@all compare'));
    expect(kit.adapter.texts().sort()).toEqual(
      ['a:\nalpha answer', 'b:\nbeta\n\n(answer cut short: refused)', 'c:\ngamma answer'].sort(),
    );
    expect(llm.requests.map((r) => r.body.model).sort()).toEqual(['a', 'b', 'c']);
    await kit.run(kit.send('/ask only the first'));
    expect(llm.requests.at(-1)!.body.model).toBe('a');
  });

  it('/cancel aborts the HTTP stream and ends the message with (cancelled)', async () => {
    llm.script('slow', { pieces: Array.from({ length: 100 }, (_, i) => `w${i} `), gapMs: 20 });
    const kit = await start({ backends: [openai('slow')] });
    const job = kit.send('/ask tell me a story');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await kit.run(kit.send('/cancel'));
    await kit.run(job);
    const [story] = kit.adapter.messages();
    expect(story!.text).toMatch(/^w0 w1 .*\n\n\(cancelled\)$/s);
    expect(story!.final).toBe(true);
    for (let i = 0; i < 100 && !llm.server.aborted.length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(llm.server.aborted).toEqual(['/v1/chat/completions']);
  });

  it('shows a waiting user their place in the model’s queue', async () => {
    llm.script('one', { pieces: ['first ', 'answer'], gapMs: 50 });
    const kit = await start({ backends: [openai('one', { concurrency: 1 })] });
    await kit.run(
      Promise.all([
        kit.send('/ask a', { user: { id: 'u1' }, chat: { id: 'c1' } }),
        kit.send('/ask b', { user: { id: 'u2' }, chat: { id: 'c2' } }),
      ]),
    );
    const sentToC2 = kit.adapter.calls.find((c) => c.kind === 'send' && c.chat.id === 'c2');
    expect(sentToC2?.kind === 'send' && sentToC2.message.text).toBe('one: queued, 0 ahead');
    expect(kit.adapter.texts('c2')).toEqual(['first answer']);
  });

  it('with shared slots, two bots (two processes) keep one model’s concurrency and one user’s turns between them', async () => {
    llm.script('one', { pieces: ['first ', 'answer'], gapMs: 50 });
    const slots = new MemorySlots();
    const config = { backends: [openai('one', { concurrency: 1 })] };
    const [a, b] = [await start(config, {}, slots), await start(config, {}, slots)];
    await Promise.all([
      a.run(a.send('/ask a', { user: { id: 'u1' }, chat: { id: 'c1' } })),
      b.run(b.send('/ask b', { user: { id: 'u2' }, chat: { id: 'c2' } })),
      // u1 again, in another chat through the other bot: it waits for u1's first question.
      b.run(b.send('/ask c', { user: { id: 'u1' }, chat: { id: 'c3' } })),
    ]);
    const firstTo = (kit: TestBot, chat: string) =>
      kit.adapter.calls.find((c) => c.kind === 'send' && c.chat.id === chat);
    const c2 = firstTo(b, 'c2');
    expect(c2?.kind === 'send' && c2.message.text).toBe('one: queued, 0 ahead');
    const c3 = firstTo(b, 'c3');
    expect(c3?.kind === 'send' && c3.message.text).toMatch(/^1 more question/);
    expect([answerOf(a, 'c1'), answerOf(b, 'c2')]).toEqual(['first answer', 'first answer']);
    expect(answerOf(b, 'c3')).toContain('first answer');
  });

  it('keeps the platform budget through a long answer: no 429 from a server that enforces it', async () => {
    llm.script('long', { pieces: Array.from({ length: 150 }, (_, i) => `t${i} `), gapMs: 10 });
    const kit = await start(
      { backends: [openai('long')] },
      { limits: { rate: { perChat: { count: 1, periodMs: 1000 } } } },
    );
    const seen: number[] = [];
    let refused = 0;
    kit.adapter.fail(() => {
      const now = performance.now();
      if (seen.length && now - seen.at(-1)! < 990) {
        refused++;
        return new RateLimitError(1000);
      }
      seen.push(now);
      return undefined;
    }, Number.POSITIVE_INFINITY);
    await kit.run(kit.send('/ask long one'));
    expect(refused).toBe(0);
    expect(kit.adapter.texts()[0]!.trim().split(' ')).toHaveLength(150);
  });

  it('uses drafts in private chats where the adapter has them, then sends one real message', async () => {
    llm.script('d', { pieces: Array.from({ length: 20 }, (_, i) => `p${i} `), gapMs: 30 });
    const kit = await start({ backends: [openai('d')] }, { drafts: true });
    await kit.run(kit.send('/ask draft it'));
    const drafts = kit.adapter.calls.filter((c) => c.kind === 'draft');
    expect(drafts.length).toBeGreaterThan(1);
    expect(kit.adapter.calls.filter((c) => c.kind === 'send')).toHaveLength(1);
    expect(kit.adapter.calls.filter((c) => c.kind === 'edit')).toHaveLength(0);
    expect(kit.adapter.texts()[0]!.trim()).toBe(Array.from({ length: 20 }, (_, i) => `p${i}`).join(' '));
  });
});

describe('ask: conversations', () => {
  const echo = {
    pieces: (messages: { role: string; content: string }[]) => [
      `answer to ${messages.at(-1)!.content} `,
      `(${messages.length} msgs)`,
    ],
  };

  it('remembers turns, keeps group users apart, continues a thread on reply, and /reset forgets', async () => {
    llm.script('m', echo);
    const kit = await start({ backends: [openai('m')], memory: { path: ':memory:', turns: 2 } });
    const group = { chat: { id: 'g', kind: 'group' as const }, mentionsBot: true };
    await kit.run(kit.send('@chorus_bot one', { ...group, user: { id: 'ann' } }));
    await kit.run(kit.send('@chorus_bot two', { ...group, user: { id: 'ann' } }));
    await kit.run(kit.send('@chorus_bot hi', { ...group, user: { id: 'bob' } }));
    expect(llm.requests[1]!.body.messages.map((m) => m.content)).toEqual([
      'one',
      'answer to one (1 msgs)',
      'two',
    ]);
    expect(llm.requests[2]!.body.messages.map((m) => m.content)).toEqual(['hi']);
    // Bob replies to the bot's answer to Ann: he continues Ann's thread.
    const annAnswer = kit.adapter.messages('g')[1]!;
    await kit.run(
      kit.send('and three?', {
        chat: { id: 'g', kind: 'group' },
        user: { id: 'bob' },
        replyTo: { messageId: annAnswer.id, fromBot: true },
      }),
    );
    expect(llm.requests[3]!.body.messages.map((m) => m.content)).toEqual([
      'one',
      'answer to one (1 msgs)',
      'two',
      'answer to two (3 msgs)',
      'and three?',
    ]);
    // Only the last 2 turns are kept.
    await kit.run(kit.send('@chorus_bot four', { ...group, user: { id: 'ann' } }));
    expect(llm.requests[4]!.body.messages.map((m) => m.content)[0]).toBe('two');
    await kit.run(kit.send('/reset', { chat: { id: 'g', kind: 'group' }, user: { id: 'ann' } }));
    expect(kit.adapter.texts('g').at(-1)).toBe('Forgot this conversation (4 messages).');
    await kit.run(kit.send('@chorus_bot five', { ...group, user: { id: 'ann' } }));
    expect(llm.requests.at(-1)!.body.messages.map((m) => m.content)).toEqual(['five']);
  });

  it("keeps conversations in the bot's store by default: one compact value each, in the plugin's namespace, across a restart", async () => {
    llm.script('m', echo);
    const store = new MemoryStore();
    const withStore = async () => {
      const kit = await createTestBot({
        plugins: [
          { plugin: ask, config: { backends: [openai('m')], editIntervalMs: 0, memory: { turns: 2 } } },
        ],
        realTime: true,
        store,
      });
      kits.push(kit);
      return kit;
    };
    const first = await withStore();
    for (const question of ['one', 'two', 'three']) await first.run(first.send(question));
    const group = { chat: { id: 'g', kind: 'group' as const }, mentionsBot: true, user: { id: 'ann' } };
    await first.run(first.send('@chorus_bot in a group', group));
    await first.stop();
    kits.splice(kits.indexOf(first), 1);
    const entries = await store.list('');
    expect(Object.fromEntries(entries.map((e) => [e.key, e.value]))).toEqual({
      'plugin:ask:c:mock:chat-1': ['two', 'answer to two (3 msgs)', 'three', 'answer to three (5 msgs)'],
      'plugin:ask:c:mock:g:ann': ['in a group', 'answer to in a group (1 msgs)'],
      // Only group answers are linked: in a private chat a reply continues the chat's conversation.
      [`plugin:ask:m:${JSON.stringify(['mock:g', first.adapter.messages('g').at(-1)!.id])}`]: 'mock:g:ann',
    });
    const second = await withStore();
    await second.run(second.send('four'));
    expect(llm.requests.at(-1)!.body.messages.map((m) => m.content)).toEqual([
      'two',
      'answer to two (3 msgs)',
      'three',
      'answer to three (5 msgs)',
      'four',
    ]);
  });

  it('forgets a conversation keepDays after its last turn, and not before', async () => {
    llm.script('m', echo);
    let later = 0;
    const store = new MemoryStore({ clock: { ...systemClock, now: () => systemClock.now() + later } });
    const kit = await createTestBot({
      plugins: [
        { plugin: ask, config: { backends: [openai('m')], editIntervalMs: 0, memory: { keepDays: 2 } } },
      ],
      realTime: true,
      store,
    });
    kits.push(kit);
    const day = 24 * 60 * 60 * 1000;
    await kit.run(kit.send('one'));
    later = 1.5 * day;
    await kit.run(kit.send('two'));
    expect(llm.requests.at(-1)!.body.messages.map((m) => m.content)).toEqual([
      'one',
      'answer to one (1 msgs)',
      'two',
    ]);
    // Two days after the last turn, not the first: the conversation is gone.
    later = 3.6 * day;
    await kit.run(kit.send('three'));
    expect(llm.requests.at(-1)!.body.messages.map((m) => m.content)).toEqual(['three']);
  });

  it('memory survives a restart', async () => {
    llm.script('m', echo);
    const path = join(mkdtempSync(join(tmpdir(), 'chorus-ask-')), 'ask.sqlite');
    const first = await start({ backends: [openai('m')], memory: { path } });
    await first.run(first.send('remember me'));
    await first.stop();
    kits.splice(kits.indexOf(first), 1);
    const second = await start({ backends: [openai('m')], memory: { path } });
    await second.run(second.send('who am I?'));
    expect(llm.requests.at(-1)!.body.messages.map((m) => m.content)).toEqual([
      'remember me',
      'answer to remember me (1 msgs)',
      'who am I?',
    ]);
  });

  it('triggers on a private message, a mention (stripped) and a reply to the bot, not on group chatter', async () => {
    llm.script('m', echo);
    const kit = await start({ backends: [openai('m')] });
    await kit.run(kit.send('hello there'));
    await kit.run(kit.send('just chatting', { chat: { id: 'g', kind: 'group' } }));
    await kit.run(
      kit.send('hey @chorus_bot what now', { chat: { id: 'g', kind: 'group' }, mentionsBot: true }),
    );
    expect(llm.requests.map((r) => r.body.messages.at(-1)!.content)).toEqual([
      'hello there',
      'hey   what now',
    ]);
    const off = await start({
      backends: [openai('m')],
      triggers: { privateChat: false, mention: false, replyToBot: false },
    });
    await off.run(off.send('hello there', { chat: { id: 'p2' } }));
    expect(off.adapter.texts('p2')).toEqual([]);
  });

  it('50 users asking at once with interleaved streams each get only their own answer and history', async () => {
    llm.script('m', {
      pieces: (messages) => [
        `for ${messages.at(-1)!.content}: `,
        ...Array.from({ length: 5 }, (_, i) => `${i} `),
        `(${messages.length})`,
      ],
      gapMs: 3,
    });
    const kit = await start({ backends: [openai('m', { concurrency: 50 })] });
    const ask = (round: number) =>
      Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          kit.send(`@chorus_bot q${i}-${round}`, {
            user: { id: `u${i}` },
            chat: { id: 'g', kind: 'group' },
            mentionsBot: true,
          }),
        ),
      );
    await kit.run(ask(1));
    await kit.run(ask(2));
    for (let i = 0; i < 50; i++) {
      const mine = kit.adapter.calls.filter(
        (c) =>
          c.kind === 'send' && typeof c.message.replyTo === 'string' && c.message.text?.includes(`q${i}-`),
      );
      expect(mine.length).toBeGreaterThan(0);
    }
    const finals = kit.adapter.messages('g').map((m) => m.text);
    for (let i = 0; i < 50; i++) {
      expect(finals).toContain(`for q${i}-1: 0 1 2 3 4 (1)`);
      expect(finals).toContain(`for q${i}-2: 0 1 2 3 4 (3)`);
    }
    const second = llm.requests.filter((r) => r.body.messages.at(-1)!.content.endsWith('-2'));
    for (const request of second) {
      const user = request.body.messages.at(-1)!.content.match(/q(\d+)-2/)![1];
      expect(request.body.messages[0]!.content).toBe(`q${user}-1`);
    }
  });
});
