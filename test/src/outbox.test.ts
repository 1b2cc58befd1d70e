import { describe, expect, it } from 'vitest';
import type { AdapterLimits } from '../../src/adapter.ts';
import { AdapterError, RateLimitError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import type { ChatAddress } from '../../src/message.ts';
import { Outbox } from '../../src/outbox.ts';
import { FakeClock, MockAdapter } from '../../src/testing.ts';

const chat = (id: string, kind: ChatAddress['kind'] = 'private'): ChatAddress => ({
  adapter: 'mock',
  platform: 'mock',
  id,
  kind,
});

function setup(rate: AdapterLimits['rate']) {
  const clock = new FakeClock(0);
  const adapter = new MockAdapter({ clock, limits: { rate } });
  const outbox = new Outbox(adapter, { clock, log: silentLogger });
  return { clock, adapter, outbox };
}

describe('Outbox', () => {
  it('keeps the per-chat budget: 5 sends at 1/s go out one second apart', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const sends = Array.from({ length: 5 }, (_, i) => outbox.send(chat('a'), { text: `m${i}` }));
    await clock.tick(5000);
    await Promise.all(sends);
    expect(adapter.calls.map((c) => c.at)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(adapter.texts()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('applies the group budget only to group chats, and the global budget across chats', async () => {
    const { clock, adapter, outbox } = setup({
      perChat: { count: 10, periodMs: 1000 },
      perGroup: { count: 2, periodMs: 60_000 },
      global: { count: 3, periodMs: 1000 },
    });
    const group = [0, 1, 2].map((i) => outbox.send(chat('g', 'group'), { text: `g${i}` }));
    const privates = [0, 1, 2].map((i) => outbox.send(chat('p'), { text: `p${i}` }));
    await clock.tick(61_000);
    await Promise.all([...group, ...privates]);
    const at = (text: string) => adapter.calls.find((c) => c.kind === 'send' && c.message.text === text)!.at;
    expect(at('g2')).toBeGreaterThanOrEqual(60_000);
    // At most three sends in any one-second window, across both chats.
    const times = adapter.calls.map((c) => c.at).sort((a, b) => a - b);
    for (let i = 3; i < times.length; i++) expect(times[i]! - times[i - 3]!).toBeGreaterThanOrEqual(1000);
  });

  it('coalesces queued edits of one message: the latest text wins, every caller resolves', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const sent = await outbox.send(chat('a'), { text: 'v0' });
    const edits = Array.from({ length: 50 }, (_, i) =>
      outbox.edit(chat('a'), sent.ids[0]!, { text: `v${i + 1}` }, { final: i === 49 }),
    );
    await clock.tick(3000);
    await Promise.all(edits);
    const editCalls = adapter.calls.filter((c) => c.kind === 'edit');
    expect(editCalls).toHaveLength(1);
    expect(adapter.texts()).toEqual(['v50']);
    expect(adapter.messages()[0]!.final).toBe(true);
    expect(outbox.stats.coalesced).toBe(49);
  });

  it('on RateLimitError pauses the chat for retryAfterMs and retries, losing nothing', async () => {
    const { clock, adapter, outbox } = setup({});
    adapter.fail((call) => (call.chat.id === 'x' ? new RateLimitError(7000) : undefined), 3);
    const sends = ['a', 'b', 'c'].map((text) => outbox.send(chat('x'), { text }));
    const other = outbox.send(chat('y'), { text: 'other chat' });
    await clock.tick(0);
    await other;
    await clock.tick(30_000);
    await Promise.all(sends);
    const sendsToX = adapter.calls.filter((c) => c.chat.id === 'x');
    expect(sendsToX.map((c) => (c.kind === 'send' ? c.message.text : ''))).toEqual(['a', 'b', 'c']);
    // The failed attempt at t=0 was followed by a pause of 7 s (the other chat was not paused).
    expect(sendsToX[0]!.at).toBeGreaterThanOrEqual(7000);
    expect(adapter.calls.find((c) => c.chat.id === 'y')!.at).toBe(0);
    expect(outbox.stats.rateLimited).toBeGreaterThanOrEqual(1);
  });

  it('an edit that waits out a rate limit still takes newer text', async () => {
    const { clock, adapter, outbox } = setup({});
    const sent = await outbox.send(chat('x'), { text: 'start' });
    adapter.fail((call) => (call.kind === 'edit' ? new RateLimitError(2000) : undefined));
    const first = outbox.edit(chat('x'), sent.ids[0]!, { text: 'one' }, { final: false });
    await clock.tick(100);
    const second = outbox.edit(chat('x'), sent.ids[0]!, { text: 'two' }, { final: true });
    await clock.tick(3000);
    await Promise.all([first, second]);
    expect(adapter.calls.filter((c) => c.kind === 'edit')).toHaveLength(1);
    expect(adapter.texts()).toEqual(['two']);
  });

  it('fails an operation after too many rate limits, and other errors at once', async () => {
    const clock = new FakeClock(0);
    const adapter = new MockAdapter({ clock });
    const outbox = new Outbox(adapter, { clock, log: silentLogger, maxRetries: 2 });
    adapter.fail(() => new RateLimitError(100), 3);
    const limited = outbox.send(chat('x'), { text: 'never' });
    limited.catch(() => {});
    await clock.tick(1000);
    await expect(limited).rejects.toBeInstanceOf(RateLimitError);
    adapter.fail(() => new AdapterError('mock', 'chat not found', { remote: true }));
    await expect(outbox.send(chat('x'), { text: 'nope' })).rejects.toThrow('chat not found');
    await expect(outbox.send(chat('x'), { text: 'fine' })).resolves.toMatchObject({ ids: ['m1'] });
  });

  it('a budget that fails (a store gone away) delays the chat, then fails the operation; the queue goes on', async () => {
    const clock = new FakeClock(0);
    const adapter = new MockAdapter({ clock });
    let down = 0;
    const budget = {
      take: async () => {
        if (down > 0) {
          down--;
          throw new Error('budget store unreachable');
        }
        return 0;
      },
    };
    const outbox = new Outbox(adapter, { clock, log: silentLogger, maxRetries: 2, budget });
    // Two failures, then the budget answers: the send goes after the backoffs (1 s, 2 s).
    down = 2;
    const late = outbox.send(chat('x'), { text: 'late' });
    await clock.tick(2900);
    expect(adapter.texts()).toEqual([]);
    await clock.tick(200);
    await expect(late).resolves.toMatchObject({ ids: ['m1'] });
    // More failures than retries: that send fails, and the next one in the chat still goes.
    down = 3;
    const lost = outbox.send(chat('x'), { text: 'lost' });
    lost.catch(() => {});
    const next = outbox.send(chat('x'), { text: 'next' });
    await clock.tick(5000);
    await expect(lost).rejects.toThrow('budget store unreachable');
    await expect(next).resolves.toMatchObject({ ids: ['m2'] });
    expect(adapter.texts()).toEqual(['late', 'next']);
    await outbox.idle();
  });

  it('idle() resolves once every queue is empty', async () => {
    const { clock, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    void outbox.send(chat('a'), { text: '1' });
    void outbox.send(chat('a'), { text: '2' });
    let idle = false;
    void outbox.idle().then(() => {
      idle = true;
    });
    await clock.tick(500);
    expect(idle).toBe(false);
    await clock.tick(600);
    expect(idle).toBe(true);
  });
});

describe('Outbox addresses', () => {
  it('sends each operation to its own topic, though topics of one chat share a queue', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const general = chat('forum', 'group');
    const topic = { ...general, threadId: '77' };
    const sends = [outbox.send(general, { text: 'general' }), outbox.send(topic, { text: 'in topic' })];
    await clock.tick(2000);
    await Promise.all(sends);
    expect(
      adapter.calls.map((c) => [c.kind === 'send' ? c.message.text : '', c.chat.threadId, c.at]),
    ).toEqual([
      ['general', undefined, 0],
      ['in topic', '77', 1000],
    ]);
  });
});

describe('Outbox: results first', () => {
  const sendsAndEdits = (adapter: MockAdapter) =>
    adapter.calls
      .filter((c) => c.kind === 'send' || c.kind === 'edit')
      .map((c) => [c.kind, c.kind === 'send' || c.kind === 'edit' ? c.message.text : '', c.at]);

  it('sends an album before a pending status edit; the edit then carries the latest text', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const status = await outbox.send(chat('a'), { text: 'Drawing: 0/2 done' });
    const edits = [
      outbox.edit(chat('a'), status.ids[0]!, { text: 'Drawing: 0/2, flux running' }, { final: false }),
    ];
    await clock.tick(150);
    edits.push(outbox.edit(chat('a'), status.ids[0]!, { text: 'Drawing: 1/2 done' }, { final: false }));
    const album = outbox.send(chat('a'), { text: 'flux · 0.2 s', images: [{ url: 'https://x/1.png' }] });
    await clock.tick(5000);
    await Promise.all([album, ...edits]);
    expect(sendsAndEdits(adapter)).toEqual([
      ['send', 'Drawing: 0/2 done', 0],
      ['send', 'flux · 0.2 s', 1000],
      ['edit', 'Drawing: 1/2 done', 2000],
    ]);
  });

  it('a send queued while an edit waits for its slot takes that slot', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const sent = await outbox.send(chat('a'), { text: 's0' });
    const edit = outbox.edit(chat('a'), sent.ids[0]!, { text: 'e1' }, { final: false });
    await clock.tick(999);
    const next = outbox.send(chat('a'), { text: 's1' });
    await clock.tick(2000);
    await Promise.all([edit, next]);
    expect(sendsAndEdits(adapter)).toEqual([
      ['send', 's0', 0],
      ['send', 's1', 1000],
      ['edit', 'e1', 2000],
    ]);
  });

  it('keeps the order of sends, whatever edits are queued between them', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 5, periodMs: 5000 } });
    const first = await outbox.send(chat('a'), { text: 's0' });
    const ops: Promise<unknown>[] = [];
    for (let i = 1; i <= 8; i++) {
      ops.push(outbox.send(chat('a'), { text: `s${i}` }));
      ops.push(outbox.edit(chat('a'), first.ids[0]!, { text: `e${i}` }, { final: i === 8 }));
    }
    await clock.tick(30_000);
    await Promise.all(ops);
    const sends = adapter.calls.filter((c) => c.kind === 'send');
    expect(sends.map((c) => (c.kind === 'send' ? c.message.text : ''))).toEqual(
      Array.from({ length: 9 }, (_, i) => `s${i}`),
    );
    // Every send went before the edit; the edits coalesced into one, the final text.
    const edits = adapter.calls.filter((c) => c.kind === 'edit');
    expect(edits.map((c) => (c.kind === 'edit' ? [c.message.text, c.final] : []))).toEqual([['e8', true]]);
    expect(edits[0]!.at).toBeGreaterThan(sends.at(-1)!.at);
  });

  it('uses the burst of a window for sends, never more than the window holds', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 5, periodMs: 5000 } });
    const sends = Array.from({ length: 12 }, (_, i) => outbox.send(chat('a'), { text: `m${i}` }));
    await clock.tick(20_000);
    await Promise.all(sends);
    expect(adapter.calls.map((c) => c.at)).toEqual([
      0, 0, 0, 0, 0, 5000, 5000, 5000, 5000, 5000, 10_000, 10_000,
    ]);
  });

  it('paces edits at the sustained rate and keeps one slot of the burst free for the next result', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 5, periodMs: 5000 } });
    const sent = await outbox.send(chat('a'), { text: 'answer' });
    // A fast stream: a new text every 100 ms for 4.5 s.
    for (let i = 1; i <= 45; i++) {
      void outbox.edit(chat('a'), sent.ids[0]!, { text: `answer ${i}` }, { final: false });
      await clock.tick(100);
    }
    // One edit a second (not five at once), and the fifth slot of the window is still free...
    expect(adapter.calls.filter((c) => c.kind === 'edit').map((c) => c.at)).toEqual([1000, 2000, 3000]);
    // ...so a result queued now goes at once.
    const album = outbox.send(chat('a'), { text: 'album' });
    await clock.tick(0);
    await album;
    expect(adapter.calls.at(-1)).toMatchObject({ kind: 'send', at: 4500 });
    await clock.tick(10_000);
    const times = adapter.calls.map((c) => c.at);
    for (let i = 5; i < times.length; i++) expect(times[i]! - times[i - 5]!).toBeGreaterThanOrEqual(5000);
    expect(adapter.texts()).toEqual(['answer 45', 'album']);
  });

  it('a final edit may take the slot that intermediate edits leave free: a status ends with its last album', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 5, periodMs: 5000 } });
    const status = await outbox.send(chat('a'), { text: 'Drawing...' });
    // Three albums at once use three more slots of the window: one is left.
    await Promise.all([1, 2, 3].map((n) => outbox.send(chat('a'), { text: `album ${n}` })));
    void outbox.edit(chat('a'), status.ids[0]!, { text: 'Drawing: 3/3' }, { final: false });
    await clock.tick(1000);
    // An intermediate edit keeps the last slot free for a result...
    expect(adapter.calls.filter((c) => c.kind === 'edit')).toEqual([]);
    const finished = outbox.edit(chat('a'), status.ids[0]!, { text: 'Finished: 3/3' }, { final: true });
    await clock.tick(0);
    await finished;
    // ...but the final one takes it, a slot after the albums, not a whole window later.
    expect(adapter.calls.filter((c) => c.kind === 'edit').map((c) => c.at)).toEqual([1000]);
    expect(adapter.texts()[0]).toBe('Finished: 3/3');
  });

  it('edits of different messages take turns: a busy stream does not starve another', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const [a, b] = [outbox.send(chat('a'), { text: 'a0' }), outbox.send(chat('a'), { text: 'b0' })];
    await clock.tick(1000);
    const [aId, bId] = [(await a).ids[0]!, (await b).ids[0]!];
    for (let i = 1; i <= 80; i++) {
      // A writes ten times as often as B.
      void outbox.edit(chat('a'), aId, { text: `a${i}` }, { final: false });
      if (i % 10 === 0) void outbox.edit(chat('a'), bId, { text: `b${i / 10}` }, { final: false });
      await clock.tick(100);
    }
    // From B's first edit on, whenever B has an edit waiting, it goes next after at most one of A's.
    const order = adapter.calls.filter((c) => c.kind === 'edit').map((c) => (c.kind === 'edit' ? c.id : ''));
    const fromB = order.slice(order.indexOf(bId));
    expect(fromB.join(' ')).not.toContain(`${aId} ${aId}`);
    expect(fromB.filter((id) => id === bId).length).toBeGreaterThanOrEqual(3);
    await clock.tick(5000);
    expect(adapter.texts()).toEqual(['a80', 'b8']);
  });

  it('a final edit is never dropped, and keeps the fields a later coalesced edit leaves out', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 1, periodMs: 1000 } });
    const sent = await outbox.send(chat('a'), {
      text: 'working',
      buttons: [[{ label: 'Cancel', action: 'job:cancel' }]],
    });
    const done = outbox.edit(chat('a'), sent.ids[0]!, { text: 'done', buttons: [] }, { final: true });
    const late = outbox.edit(chat('a'), sent.ids[0]!, { text: 'done!' }, { final: false });
    await clock.tick(2000);
    await Promise.all([done, late]);
    expect(adapter.messages()[0]).toMatchObject({ text: 'done!', final: true, message: { buttons: [] } });
  });

  it('a rate-limited send keeps its place before later sends and pending edits', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 5, periodMs: 5000 } });
    const status = await outbox.send(chat('a'), { text: 'status' });
    adapter.fail((call) => (call.kind === 'send' ? new RateLimitError(3000) : undefined));
    const ops = [
      outbox.send(chat('a'), { text: 'album 1' }),
      outbox.edit(chat('a'), status.ids[0]!, { text: 'status 1/2' }, { final: false }),
      outbox.send(chat('a'), { text: 'album 2' }),
    ];
    await clock.tick(10_000);
    await Promise.all(ops);
    expect(sendsAndEdits(adapter)).toEqual([
      ['send', 'status', 0],
      ['send', 'album 1', 3000],
      ['send', 'album 2', 3000],
      // The refused attempt at 0 counted against the window too (platforms may count it).
      ['edit', 'status 1/2', 5000],
    ]);
    expect(outbox.stats.rateLimited).toBe(1);
  });
});

describe('Outbox: drafts and typing go through the budget', () => {
  it('"typing..." goes only when nothing waits and the budget has room, and is dropped otherwise', async () => {
    const { clock, adapter, outbox } = setup({ perChat: { count: 2, periodMs: 2000 } });
    // Alone in the chat: it takes a slot, leaving one for a result.
    await outbox.typing(chat('a'));
    expect(adapter.calls.map((c) => c.kind)).toEqual(['typing']);
    // Behind a send that takes the last slot, it is dropped rather than queued.
    const sent = outbox.send(chat('a'), { text: 'answer' });
    const typing = outbox.typing(chat('a'));
    await clock.tick(0);
    await Promise.all([sent, typing]);
    expect(adapter.calls.map((c) => c.kind)).toEqual(['typing', 'send']);
    await clock.tick(5000);
    expect(adapter.calls.map((c) => c.kind)).toEqual(['typing', 'send']);
  });

  it('drafts coalesce (the latest text wins) and use the budget like edits, never before a result', async () => {
    const clock = new FakeClock(0);
    const adapter = new MockAdapter({
      clock,
      drafts: true,
      limits: { rate: { perChat: { count: 2, periodMs: 2000 } } },
    });
    const outbox = new Outbox(adapter, { clock, log: silentLogger });
    const drafts = ['a', 'ab', 'abc'].map((text) => outbox.draft(chat('p'), 7, text));
    const result = outbox.send(chat('p'), { text: 'album' });
    await clock.tick(0);
    await result;
    await clock.tick(0);
    // The send went first; then one draft with the latest text took the slot left.
    expect(adapter.calls.map((c) => (c.kind === 'draft' ? `draft:${c.text}` : c.kind))).toEqual(['send']);
    await clock.tick(2000);
    await Promise.all(drafts);
    expect(adapter.calls.map((c) => (c.kind === 'draft' ? `draft:${c.text}` : c.kind))).toEqual([
      'send',
      'draft:abc',
    ]);
  });
});
