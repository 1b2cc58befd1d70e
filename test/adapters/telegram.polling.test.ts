import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Update } from 'grammy/types';
import { afterEach, describe, expect, it } from 'vitest';
import { createTelegramAdapter } from '../../adapters/telegram/index.ts';
import { type PollOptions, pollUpdates } from '../../adapters/telegram/polling.ts';
import { HandledUpdates } from '../../adapters/telegram/state.ts';
import { createBotApiTransport } from '../../adapters/telegram/transport.ts';
import { createBot } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { MemoryStore, type Store } from '../../src/store.ts';
import { startFakeProxy } from '../fakes/http.ts';
import { FakeTelegram } from '../fakes/telegram/server.ts';
import { eventually } from './contract.ts';

/**
 * Telegram's side of `getUpdates`, as the Bot API describes it: updates wait until a call with an
 * offset above them confirms them; a call returns at most 100 from its offset, or waits for one.
 */
class UpdateQueue {
  readonly updates: Update[] = [];
  readonly offsets: number[] = [];
  #next = 1;
  #wake: (() => void) | undefined;

  push(count: number): void {
    for (let i = 0; i < count; i++) {
      const id = this.#next++;
      this.updates.push({ update_id: id } as Update);
    }
    this.#wake?.();
  }

  async getUpdates(offset: number, signal: AbortSignal): Promise<Update[]> {
    this.offsets.push(offset);
    const confirmed = () => {
      while (this.updates.length && this.updates[0]!.update_id < offset) this.updates.shift();
    };
    confirmed();
    while (this.updates.length === 0) {
      await new Promise<void>((resolve, reject) => {
        this.#wake = resolve;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      confirmed();
    }
    return this.updates.slice(0, 100);
  }
}

/** A gate that `take` waits at, for the update ids it is set for. */
function gatedTake(taken: number[], gates: Map<number, Promise<void>>) {
  return async (update: Update) => {
    await gates.get(update.update_id);
    taken.push(update.update_id);
  };
}

/** `store`, but every write of a held batch fails (a full disk, say). */
function heldFails(store: MemoryStore): Store {
  return {
    ...store,
    get: (key) => store.get(key),
    delete: (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    lock: (key, ttl) => store.lock(key, ttl),
    close: () => store.close(),
    set: (key, value, setOptions) =>
      key.startsWith('held:') ? Promise.reject(new Error('disk full')) : store.set(key, value, setOptions),
  };
}

function options(
  queue: UpdateQueue,
  handled: HandledUpdates,
  take: (update: Update) => Promise<void>,
): PollOptions & { confirmed: number[] } {
  const confirmed: number[] = [];
  return {
    confirmed,
    getUpdates: (offset, signal) => queue.getUpdates(offset, signal),
    confirm: async (offset) => {
      confirmed.push(offset);
    },
    // As the adapter does: an update taken is remembered; one remembered is not taken again.
    take: async (update) => {
      if (handled.has(update.update_id)) return;
      await take(update);
      handled.add(update.update_id);
    },
    handled,
    retryDelayMs: () => 0,
  };
}

/**
 * A poller on `store` over a fresh queue of `count` updates whose take of update 2 waits for
 * `open()`; resolves once update 1 is taken.
 */
async function pollingHeldAtTwo(
  store: Store,
  count: number,
  signal: AbortSignal,
  handOver?: AbortSignal,
  { askedAhead = true } = {},
) {
  const queue = new UpdateQueue();
  const handled = await HandledUpdates.load(store, '1');
  const taken: number[] = [];
  let open!: () => void;
  const gates = new Map([[2, new Promise<void>((resolve) => (open = resolve))]]);
  const poll = options(queue, handled, gatedTake(taken, gates));
  queue.push(count);
  const polling = pollUpdates(poll, signal, handOver);
  await eventually(
    () => taken,
    (ids) => ids.length === 1,
    'the first update',
  );
  // The takes pause at 2: the ask for what comes after the batch goes out, the batch held first.
  if (askedAhead)
    await eventually(
      () => queue.offsets,
      (offsets) => offsets.includes(count + 1),
      'the next ask',
    );
  return { queue, taken, open, polling, poll };
}

describe('telegram long polling', () => {
  it('asks for the next batch while the last is still being taken, and takes updates in order', async () => {
    const stop = new AbortController();
    const { queue, taken, open, polling } = await pollingHeldAtTwo(new MemoryStore(), 3, stop.signal);
    // Update 2 is still being taken, and the ask for what comes after 3 is already out.
    expect(queue.offsets).toContain(4);
    expect(taken).toEqual([1]);
    queue.push(2);
    open();
    await eventually(
      () => taken,
      (ids) => ids.length === 5,
      'all five taken',
    );
    expect(taken).toEqual([1, 2, 3, 4, 5]);
    stop.abort();
    await polling;
  });

  it('holds a batch in the store before confirming it: after a crash, the next poller takes what was not taken', async () => {
    const store = new MemoryStore();
    const queue = new UpdateQueue();
    const first = await HandledUpdates.load(store, '1');
    const taken: number[] = [];
    // The process dies while taking update 4: its take never ends.
    const gates = new Map([[4, new Promise<void>(() => {})]]);
    queue.push(2);
    const crashed = new AbortController();
    void pollUpdates(options(queue, first, gatedTake(taken, gates)), crashed.signal);
    await eventually(
      () => taken,
      (ids) => ids.length === 2,
      'the first batch',
    );
    // Taken and saved while the next ask waits.
    await eventually(
      async () => (await store.list('handled:1:')).length,
      (n) => n === 1,
      'the ids saved',
    );
    queue.push(4);
    await eventually(
      () => queue.offsets,
      (offsets) => offsets.includes(7),
      'the ask that confirms 3-6',
    );
    // Telegram has forgotten 3-6 by now; the store has them.
    expect(queue.updates).toEqual([]);
    expect(taken).toEqual([1, 2, 3]);
    const heldIds = async () =>
      (await store.list<{ updates: { update_id: number }[] }>('held:1:')).flatMap((entry) =>
        entry.value.updates.map((u) => u.update_id),
      );
    expect(await heldIds()).toEqual([3, 4, 5, 6]);

    // A new process (or the one taking the polling lease over) on the same store.
    const again: number[] = [];
    const second = await HandledUpdates.load(store, '1');
    const stop = new AbortController();
    const polling = pollUpdates(options(queue, second, gatedTake(again, new Map())), stop.signal);
    await eventually(
      () => again,
      (ids) => ids.length >= 3,
      'the held updates',
    );
    // The ask went once the takes paused at 4, so it saved 3 as taken along with the batch: 1-3 do
    // not come again, 4-6 do.
    queue.push(1);
    await eventually(
      () => again,
      (ids) => ids.includes(7),
      'the next update',
    );
    expect(again).toEqual([4, 5, 6, 7]);
    // The crashed poller's entry went once its updates were taken; the new one holds its own last
    // batch, written by the ask that follows it.
    await eventually(heldIds, (ids) => ids.join() === '7', 'the new batch held');
    stop.abort();
    await polling;
    crashed.abort();
  });

  it('saves the ids taken after the ask went, while a quiet bot waits for the next batch', async () => {
    const store = new MemoryStore();
    const stop = new AbortController();
    const { queue, taken, open, polling } = await pollingHeldAtTwo(store, 3, stop.signal);
    const saved = async () =>
      (await store.list<{ ids: number[] }>('handled:1:')).flatMap((entry) => entry.value.ids).sort();
    // The ask saved 1 with the batch; 2 and 3 are taken after it.
    expect(await saved()).toEqual([1]);
    open();
    await eventually(saved, (ids) => ids.join() === '1,2,3', 'the ids taken after the ask');
    expect(taken).toEqual([1, 2, 3]);
    // Still the one ask after the batch: nothing came for it.
    expect(queue.offsets).toEqual([0, 4]);
    stop.abort();
    await polling;
  });

  it('gives the event loop a turn within a long batch: the next ask goes out before the batch is all taken', async () => {
    const queue = new UpdateQueue();
    const handled = await HandledUpdates.load(new MemoryStore(), '1');
    /** For each update taken, whether the ask for what follows the batch was out by then. */
    const askedBy = new Map<number, boolean>();
    const stop = new AbortController();
    queue.push(64);
    const polling = pollUpdates(
      options(queue, handled, async (update) => {
        askedBy.set(update.update_id, queue.offsets.includes(65));
      }),
      stop.signal,
    );
    await eventually(
      () => askedBy.size,
      (n) => n === 64,
      'the batch taken',
    );
    expect(askedBy.get(1)).toBe(false);
    expect(askedBy.get(64)).toBe(true);
    stop.abort();
    await polling;
  });

  it('stopped before the next ask goes: no ask, the batch saved as taken and confirmed once', async () => {
    const store = new MemoryStore();
    const queue = new UpdateQueue();
    const handled = await HandledUpdates.load(store, '1');
    const stop = new AbortController();
    queue.push(3);
    const poll = options(queue, handled, async (update) => {
      // Stopped while the last update is taken, before the ask that follows the batch.
      if (update.update_id === 3) stop.abort();
    });
    await pollUpdates(poll, stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(queue.offsets).toEqual([0]);
    expect(poll.confirmed).toEqual([4]);
    const next = await HandledUpdates.load(store, '1');
    expect([1, 2, 3].map((id) => next.has(id))).toEqual([true, true, true]);
    expect(next.held()).toEqual([]);
  });

  it('when stopped: takes the rest of the batch in hand, saves it, confirms it, and holds nothing', async () => {
    const store = new MemoryStore();
    const stop = new AbortController();
    const { taken, open, polling, poll } = await pollingHeldAtTwo(store, 3, stop.signal);
    stop.abort();
    open();
    await polling;
    expect(taken).toEqual([1, 2, 3]);
    expect(poll.confirmed).toEqual([4]);
    expect(await store.list('held:1:')).toEqual([]);
    const next = await HandledUpdates.load(store, '1');
    expect([1, 2, 3].map((id) => next.has(id))).toEqual([true, true, true]);
    expect(next.held()).toEqual([]);
  });

  it('handed over mid-batch: stops taking at once and leaves the rest in the store for the next poller', async () => {
    const store = new MemoryStore();
    const lost = new AbortController();
    const { queue, taken, open, polling } = await pollingHeldAtTwo(store, 4, lost.signal, lost.signal);
    // Another process holds the polling lease now, and has read what this one held.
    const second = await HandledUpdates.load(store, '1');
    lost.abort();
    open();
    await polling;
    expect(taken).toEqual([1, 2]);
    const again: number[] = [];
    const stop = new AbortController();
    const next = pollUpdates(options(queue, second, gatedTake(again, new Map())), stop.signal);
    await eventually(
      () => again,
      (ids) => ids.length === 3,
      'the rest',
    );
    // The first poller saved 1 as taken with the batch, and never took 3 and 4; 2, taken after its
    // last save, comes again (at least once, never lost).
    expect(again).toEqual([2, 3, 4]);
    stop.abort();
    await next;
  });

  it('a take that throws ends polling with its error, and the rest of its batch stays held', async () => {
    const store = new MemoryStore();
    const queue = new UpdateQueue();
    const handled = await HandledUpdates.load(store, '1');
    const broken = new Error('take failed');
    queue.push(4);
    const polling = pollUpdates(
      options(queue, handled, async (update) => {
        if (update.update_id === 2) throw broken;
      }),
      new AbortController().signal,
    );
    await expect(polling).rejects.toBe(broken);
    const next = await HandledUpdates.load(store, '1');
    expect(next.held().map((update) => update.update_id)).toEqual([3, 4]);
    // Ended: no ask goes after it (it would confirm the batch, and poll on beside the next poller).
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(queue.offsets).toEqual([0]);
  });

  it('stopped as a take throws, with a store that cannot hold the rest: confirms nothing', async () => {
    const queue = new UpdateQueue();
    const handled = await HandledUpdates.load(heldFails(new MemoryStore()), '1');
    const broken = new Error('take failed');
    const stop = new AbortController();
    queue.push(4);
    const poll = options(queue, handled, async (update) => {
      if (update.update_id !== 2) return;
      stop.abort();
      throw broken;
    });
    await expect(pollUpdates(poll, stop.signal)).rejects.toBe(broken);
    // 3 and 4 were never taken and are nowhere but with Telegram: they stay there.
    expect(poll.confirmed).toEqual([]);
  });

  it('when the batch cannot be held (the store fails), asks for the next only once it is taken', async () => {
    const failing = heldFails(new MemoryStore());
    const stop = new AbortController();
    const { queue, taken, open, polling } = await pollingHeldAtTwo(failing, 3, stop.signal, undefined, {
      askedAhead: false,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Not held, so not confirmed while 2 and 3 are still to be taken.
    expect(queue.offsets).toEqual([0]);
    open();
    await eventually(
      () => queue.offsets,
      (offsets) => offsets.includes(4),
      'the ask after the batch',
    );
    expect(taken).toEqual([1, 2, 3]);
    stop.abort();
    await polling;
  });

  it('waits as told after a failed ask (or webhook removal), says when they get through again, and ends on a refusal', async () => {
    const handled = await HandledUpdates.load(new MemoryStore(), '1');
    const failures: number[] = [];
    let recovered = 0;
    let calls = 0;
    let prepared = 0;
    const confirmed: number[] = [];
    const refused = new Error('401: Unauthorized');
    const polling = pollUpdates(
      {
        prepare: async () => {
          if (++prepared === 1) throw new Error('ENETUNREACH');
        },
        getUpdates: async () => {
          calls++;
          if (calls <= 2) throw new Error('ECONNREFUSED');
          if (calls === 3) return [{ update_id: 9 } as Update];
          throw refused;
        },
        confirm: async (offset) => {
          confirmed.push(offset);
        },
        take: async (update) => handled.add(update.update_id),
        handled,
        retryDelayMs: (error, count) => {
          failures.push(count);
          if (error === refused) throw error;
          return 0;
        },
        onRecovered: () => recovered++,
      },
      new AbortController().signal,
    );
    await expect(polling).rejects.toBe(refused);
    expect(prepared).toBe(2);
    expect(failures).toEqual([0, 0, 1, 0]);
    expect(recovered).toBe(2);
    // Refused (as when another process polls the bot): no last poll that would cut the other's short.
    expect(confirmed).toEqual([]);
    expect(handled.has(9)).toBe(true);
  });
});

describe('telegram transport', () => {
  const servers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of servers.splice(0)) await close();
  });

  async function serve(answer: (res: import('node:http').ServerResponse) => void): Promise<string> {
    const server = createServer((_req, res) => answer(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('reads an answer up to the cap, declared or streamed, and says when there is no JSON', async () => {
    const transport = createBotApiTransport({ maxAnswerBytes: 1000 });
    const declared = await serve((res) => res.end(JSON.stringify({ ok: true, result: 'x'.repeat(2000) })));
    await expect(transport.fetch(`${declared}/botT/getMe`, { method: 'POST' })).rejects.toThrow(
      /answer of \d+ bytes exceeds the 1000-byte cap/,
    );
    const streamed = await serve((res) => {
      res.write('{"ok":true,"result":"');
      res.end(`${'y'.repeat(2000)}"}`);
    });
    await expect(transport.fetch(`${streamed}/botT/getMe`, { method: 'POST' })).rejects.toThrow(
      /answer exceeds the 1000-byte cap/,
    );
    const html = await serve((res) => res.writeHead(502).end('<html>Bad Gateway</html>'));
    const answer = await transport.fetch(`${html}/botT/getMe`, { method: 'POST' });
    expect(answer.status).toBe(502);
    await expect(answer.json()).rejects.toThrow('the Bot API answered HTTP 502 with no JSON');
    const fine = await serve((res) => res.end('{"ok":true,"result":{"id":1}}'));
    expect(await (await transport.fetch(`${fine}/botT/getMe`, { method: 'POST' })).json()).toEqual({
      ok: true,
      result: { id: 1 },
    });
    await transport.close();
  });

  it('sends the Bot API calls through the bot’s proxy (`http.proxy`), answering as before', async () => {
    const fake = await new FakeTelegram({ limits: { perChatMs: 0 } }).start();
    const proxy = await startFakeProxy({ port: Number(new URL(fake.url).port) });
    servers.push(
      () => fake.close(),
      () => proxy.close(),
    );
    const store: Store = new MemoryStore();
    const echo = definePlugin({
      name: 'echo',
      setup: (ctx) =>
        void ctx.command({ name: 'echo', description: 'echo' }, (c) =>
          c.reply(c.command!.args).then(() => {}),
        ),
    });
    const bot = createBot({
      adapters: [
        createTelegramAdapter({ token: fake.token, apiRoot: 'http://api.telegram.test', proxy: proxy.url }),
      ],
      plugins: [{ plugin: echo }],
      log: createLogger({ level: 'silent' }),
      store,
    });
    await bot.start();
    fake.userSays(
      { id: 7, type: 'private', first_name: 'A' },
      { id: 7, is_bot: false, first_name: 'A' },
      '/echo via proxy',
    );
    await eventually(
      () => fake.chatMessages(7).map((m) => m.text),
      (texts) => texts.includes('via proxy'),
      'the reply',
    );
    await bot.stop();
    expect(new Set(proxy.hosts)).toEqual(new Set(['api.telegram.test:80']));
  });
});
