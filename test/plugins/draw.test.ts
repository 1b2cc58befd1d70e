import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asImage, fillBody, fillUrl, pick, sniffImage } from '../../plugins/draw/backends.ts';
import { paintDemo } from '../../plugins/draw/demo.ts';
import { plugin as draw } from '../../plugins/draw/index.ts';
import { AdapterError, ConfigError, type OutgoingMessage } from '../../src/index.ts';
import { MemorySlots, type Slots } from '../../src/slots.ts';
import { createTestBot, type TestBot } from '../../src/testing.ts';
import { type FakeImageBackends, labelOf, startFakeImageBackends } from '../fakes/images.ts';

let fakes: FakeImageBackends;
const kits: TestBot[] = [];
beforeEach(async () => {
  fakes = await startFakeImageBackends();
});
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
  await fakes.close();
});

const openai = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'openai-images',
  baseUrl: `${fakes.server.url}/openai/${name}`,
  n: 2,
  ...extra,
});
const json = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'http-json',
  url: `${fakes.server.url}/json/${name}?prompt={prompt}`,
  ...extra,
});
const bytes = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'http-image',
  url: `${fakes.server.url}/bytes/${name}?prompt={prompt}`,
  ...extra,
});

async function start(config: Record<string, unknown>, options: { locale?: string; slots?: Slots } = {}) {
  const kit = await createTestBot({ plugins: [{ plugin: draw, config }], realTime: true, ...options });
  kits.push(kit);
  return kit;
}

const albums = (kit: TestBot, chatId?: string) =>
  kit.adapter.calls.filter(
    (c): c is Extract<typeof c, { kind: 'send' }> =>
      c.kind === 'send' && (c.message.images?.length ?? 0) > 0 && (!chatId || c.chat.id === chatId),
  );
const labels = (message: OutgoingMessage) =>
  (message.images ?? []).map((image) => ('data' in image ? labelOf(image.data) : image.url));
/**
 * Retries `check` every 10 ms for up to five seconds: for what a busy machine may take a while to
 * do, and for the server, which learns of an abort a moment after the client.
 */
async function waitFor(check: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return check();
    } catch (error) {
      if (i >= 500) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
const statusOf = (kit: TestBot, chatId = 'chat-1') => kit.adapter.messages(chatId)[0]!;

describe('draw', () => {
  it('sends each backend’s album the moment it finishes, in completion order, before the slowest is done', async () => {
    for (const name of ['fast', 'medium', 'slow']) fakes.set(name, 'ok');
    const release = Object.fromEntries(['fast', 'medium', 'slow'].map((name) => [name, fakes.hold(name)]));
    const kit = await start({ backends: [bytes('slow'), openai('fast'), json('medium')] });
    const finishedWhenSent: string[][] = [];
    kit.adapter.fail((call) => {
      if (call.kind === 'send' && call.message.images?.length) finishedWhenSent.push([...fakes.finished]);
      return undefined;
    }, Number.POSITIVE_INFINITY);
    const drawn = kit.run(kit.send('/draw a red fox'));
    // Each backend finishes only once the album before it is out: an album held for the slowest
    // backend would never be seen here.
    release.fast!();
    await waitFor(() => expect(albums(kit)).toHaveLength(1));
    release.medium!();
    await waitFor(() => expect(albums(kit)).toHaveLength(2));
    release.slow!();
    await drawn;

    const sent = albums(kit);
    expect(sent.map((c) => c.message.text?.split(' · ')[0])).toEqual(['fast', 'medium', 'slow']);
    expect(sent.map((c) => c.message.text?.split(' · ')[0])).toEqual(fakes.finished);
    expect(finishedWhenSent[0]).toEqual(['fast']);
    expect(labels(sent[0]!.message)).toEqual(['fast|a red fox|0', 'fast|a red fox|1']);
    expect(labels(sent[1]!.message)).toEqual(['medium|a red fox|0', 'medium|a red fox|1']);
    expect(labels(sent[2]!.message)).toEqual(['slow|a red fox|0']);
    for (const album of sent) expect(album.message.replyTo).toBe('in1');
    const status = statusOf(kit);
    expect(status.final).toBe(true);
    expect(status.text.split('\n')[0]).toBe('Finished: 3/3 backends delivered');
    expect(status.message.buttons).toEqual([]);
  });

  it.each([
    // Telegram's shape (a burst of 5, then 1 per slot), ten times faster.
    ['a tight budget', { perChat: { count: 5, periodMs: 500 } }],
    ['no budget', {}],
  ])(
    'on %s, albums go before status edits, and no status edit is older than the albums sent',
    async (_, rate) => {
      fakes.set('fast', 'ok');
      fakes.set('broken', 'error500');
      fakes.set('medium', 'ok');
      fakes.set('slow', 'ok');
      // The test lets each backend finish in turn, once the one before has been dealt with.
      const release = Object.fromEntries(
        ['fast', 'broken', 'medium', 'slow'].map((name) => [name, fakes.hold(name)]),
      );
      const kit = await createTestBot({
        plugins: [
          {
            plugin: draw,
            config: { backends: [bytes('fast'), bytes('broken'), bytes('medium'), bytes('slow')] },
          },
        ],
        adapter: { limits: { rate } },
        realTime: true,
      });
      kits.push(kit);
      const finishedWhenSent = new Map<string, string[]>();
      kit.adapter.fail((call) => {
        if (call.kind === 'send' && call.message.images?.length)
          finishedWhenSent.set(call.message.text!.split(' · ')[0]!, [...fakes.finished]);
        return undefined;
      }, Number.POSITIVE_INFINITY);
      const albumNames = () => albums(kit).map((c) => c.message.text!.split(' · ')[0]!);
      const drawn = kit.run(kit.send('/draw a red fox'));
      release.fast!();
      await waitFor(() => expect(albumNames()).toEqual(['fast']));
      release.broken!();
      await waitFor(() => expect(fakes.finished).toContain('broken'));
      release.medium!();
      await waitFor(() => expect(albumNames()).toEqual(['fast', 'medium']));
      release.slow!();
      await drawn;

      // Each album went out while the backends after it were still held: it waited for nothing.
      expect(finishedWhenSent.get('fast')).toEqual(['fast']);
      expect(finishedWhenSent.get('medium')).toEqual(['fast', 'broken', 'medium']);
      const statusId = kit.adapter.messages()[0]!.id;
      const sentSoFar: string[] = [];
      let edits = 0;
      for (const call of kit.adapter.calls) {
        if (call.kind === 'send' && call.message.images?.length)
          sentSoFar.push(call.message.text!.split(' · ')[0]!);
        if (call.kind !== 'edit' || call.id !== statusId) continue;
        edits++;
        const lines = call.message.text!.split('\n');
        for (const name of sentSoFar) expect(lines.some((line) => line.startsWith(`✓ ${name}:`))).toBe(true);
      }
      expect(edits).toBeGreaterThan(0);
      expect(statusOf(kit).text.split('\n')[0]).toBe('Finished: 3/4 backends delivered');
    },
  );

  it('a failing, hanging, HTML or oversized backend becomes a short note; the others carry on', async () => {
    fakes.set('good', 'ok', 30);
    fakes.set('html', 'html');
    fakes.set('hang', 'hang');
    fakes.set('huge', 'huge');
    fakes.set('broken', 'error500');
    fakes.set('text', 'text');
    const kit = await start({
      maxImageBytes: 32 * 1024,
      backends: [
        bytes('hang', { timeoutMs: 300 }),
        json('html'),
        openai('good'),
        bytes('huge'),
        openai('broken'),
        bytes('text'),
      ],
    });
    await kit.run(kit.send('/draw a red fox'));
    expect(albums(kit).map((c) => c.message.text?.split(' · ')[0])).toEqual(['good']);
    const lines = statusOf(kit).text.split('\n');
    expect(lines[0]).toBe('Finished: 1/6 backends delivered');
    expect(lines.slice(1).sort()).toEqual(
      [
        '✗ hang: timed out',
        '✗ html: sent something that is not an image',
        expect.stringMatching(/^✓ good: 2 image\(s\) in \d+\.\ds$/),
        '✗ huge: sent something that is not an image',
        '✗ broken: refused (HTTP 500)',
        '✗ text: sent something that is not an image',
      ].sort(),
    );
    await waitFor(() => expect(fakes.server.aborted).toContain('/bytes/hang'));
  });

  it('an album the platform refuses becomes a note in the status; the other backends’ albums still go out', async () => {
    fakes.set('fast', 'ok', 20);
    fakes.set('medium', 'ok', 120);
    fakes.set('slow', 'ok', 300);
    const kit = await start({ backends: [openai('fast'), json('medium'), bytes('slow')] });
    kit.adapter.fail((call) =>
      call.kind === 'send' && call.message.text?.startsWith('fast ·')
        ? new AdapterError('mock', 'the platform refused the album', { remote: true })
        : undefined,
    );
    await kit.run(kit.send('/draw a red fox'));
    expect(albums(kit).map((c) => c.message.text?.split(' · ')[0])).toEqual(['medium', 'slow']);
    const status = statusOf(kit);
    expect(status.final).toBe(true);
    const lines = status.text.split('\n');
    expect(lines[0]).toBe('Finished: 2/3 backends delivered');
    expect(lines).toContain('✗ fast: drew, but the album could not be sent');
  });

  it('/cancel aborts the backends’ HTTP requests and finishes the status message', async () => {
    fakes.set('a', 'hang');
    fakes.set('b', 'hang');
    fakes.set('quick', 'ok', 10);
    const kit = await start({ backends: [bytes('a'), json('b'), openai('quick')] });
    const job = kit.send('/draw a red fox');
    await waitFor(() => expect(albums(kit)).toHaveLength(1));
    await kit.run(kit.send('/cancel'));
    await kit.run(job);
    await waitFor(() => expect(fakes.server.aborted.sort()).toEqual(['/bytes/a', '/json/b']));
    const status = statusOf(kit);
    expect(status.final).toBe(true);
    expect(status.text.split('\n')).toEqual([
      'Cancelled: 1/3 backends had delivered',
      '✗ a: cancelled',
      '✗ b: cancelled',
      expect.stringMatching(/^✓ quick: 2 image\(s\) in/),
    ]);
    expect(kit.adapter.texts()).toContain('Cancelled 1 job(s).');
  });

  it('the status message is finished on shutdown too', async () => {
    fakes.set('a', 'hang');
    const kit = await start({ backends: [bytes('a')] });
    const job = kit.send('/draw a fox');
    await waitFor(() => expect(fakes.server.requests.length).toBeGreaterThan(0));
    await kit.stop();
    await job;
    expect(statusOf(kit).final).toBe(true);
    expect(statusOf(kit).text).toMatch(/^Cancelled: 0\/1/);
    await waitFor(() => expect(fakes.server.aborted).toEqual(['/bytes/a']));
  });

  it('50 users drawing at once each get exactly their own images, in their own chat', async () => {
    fakes.set('x', 'ok', 30);
    fakes.set('y', 'ok', 60);
    fakes.set('z', 'ok', 10);
    const kit = await start({
      backends: [
        openai('x', { concurrency: 8 }),
        json('y', { concurrency: 8 }),
        bytes('z', { concurrency: 8 }),
      ],
    });
    const jobs = Array.from({ length: 50 }, (_, i) =>
      kit.send(`/draw picture ${i}`, {
        user: { id: `u${i}` },
        chat: { id: `c${i}`, kind: i % 3 ? 'group' : 'private' },
      }),
    );
    await kit.run(Promise.all(jobs));
    for (let i = 0; i < 50; i++) {
      const mine = albums(kit, `c${i}`);
      expect(mine).toHaveLength(3);
      const got = mine.flatMap((album) => labels(album.message)).map((label) => label.split('|')[1]);
      expect(new Set(got)).toEqual(new Set([`picture ${i}`]));
      expect(got).toHaveLength(5);
      for (const album of mine) expect(album.message.replyTo).toBe(`in${i + 1}`);
      expect(statusOf(kit, `c${i}`).text.split('\n')[0]).toBe('Finished: 3/3 backends delivered');
    }
  });

  it('shows a waiting user their place in the backend’s queue', async () => {
    fakes.set('one', 'ok', 150);
    const kit = await start({ backends: [bytes('one', { concurrency: 1 })] });
    const jobs = [0, 1, 2].map((i) =>
      kit.send(`/draw p${i}`, { user: { id: `u${i}` }, chat: { id: `c${i}` } }),
    );
    await kit.run(Promise.all(jobs));
    const seen = (chat: string) =>
      kit.adapter.calls
        .filter((c) => c.kind === 'edit' && c.chat.id === chat)
        .map((c) => (c.kind === 'edit' ? c.message.text : ''));
    expect(seen('c2').some((text) => text?.includes('one: queued, 1 ahead'))).toBe(true);
    expect(seen('c2').some((text) => text?.includes('one: queued, 0 ahead'))).toBe(true);
    expect(albums(kit).map((album) => album.chat.id)).toEqual(['c0', 'c1', 'c2']);
  });

  it('one running draw per user: a second one waits its turn, or is refused when configured', async () => {
    fakes.set('one', 'ok', 100);
    const queued = await start({ backends: [bytes('one', { concurrency: 4 })] });
    await queued.run(Promise.all([queued.send('/draw first'), queued.send('/draw second')]));
    expect(albums(queued).map((album) => labels(album.message)[0])).toEqual(['one|first|0', 'one|second|0']);
    expect(
      queued.adapter.calls.some(
        (c) =>
          c.kind === 'send' && c.message.text === '1 more drawing(s) of yours waiting for the one running...',
      ),
    ).toBe(true);

    const refusing = await start({ whenBusy: 'refuse', backends: [bytes('one')] });
    await refusing.run(Promise.all([refusing.send('/draw first'), refusing.send('/draw second')]));
    expect(refusing.adapter.texts()).toContain(
      'You already have a drawing in progress. Wait for it, or /cancel it.',
    );
    expect(albums(refusing)).toHaveLength(1);
  });

  it('with shared slots, two bots (two processes) keep one backend’s concurrency and refuse a busy user in either', async () => {
    fakes.set('one', 'ok', 150);
    const slots = new MemorySlots();
    const config = { backends: [bytes('one', { concurrency: 1 })] };
    const [a, b] = [await start(config, { slots }), await start(config, { slots })];
    await Promise.all([
      a.run(a.send('/draw a0', { user: { id: 'u0' }, chat: { id: 'c0' } })),
      b.run(b.send('/draw b1', { user: { id: 'u1' }, chat: { id: 'c1' } })),
      a.run(a.send('/draw a2', { user: { id: 'u2' }, chat: { id: 'c2' } })),
      b.run(b.send('/draw b3', { user: { id: 'u3' }, chat: { id: 'c3' } })),
    ]);
    expect(fakes.mostInFlight.get('one')).toBe(1);
    expect([...albums(a), ...albums(b)]).toHaveLength(4);
    const places = [a, b].flatMap((kit) =>
      kit.adapter.calls.flatMap((c) =>
        c.kind === 'edit'
          ? [...(c.message.text ?? '').matchAll(/queued, (\d+) ahead/g)].map((m) => Number(m[1]))
          : [],
      ),
    );
    expect(Math.max(...places)).toBeGreaterThanOrEqual(1);

    // whenBusy: refuse sees the user's drawing in the other bot.
    const refusing = { whenBusy: 'refuse', backends: [bytes('one')] };
    const shared = new MemorySlots();
    const [c, d] = [await start(refusing, { slots: shared }), await start(refusing, { slots: shared })];
    await Promise.all([
      c.run(c.send('/draw first')),
      d.run(d.send('/draw second', { chat: { id: 'other' } })),
    ]);
    expect([albums(c).length, albums(d).length].sort()).toEqual([0, 1]);
    expect([...c.adapter.texts(), ...d.adapter.texts()]).toContain(
      'You already have a drawing in progress. Wait for it, or /cancel it.',
    );
  });

  it('a user’s waiting draws share one notice; past maxQueuedPerUser one refusal, then silence', async () => {
    fakes.set('one', 'ok', 150);
    const kit = await start({ maxQueuedPerUser: 2, backends: [bytes('one', { concurrency: 4 })] });
    const jobs = ['a', 'b', 'c', 'd', 'e', 'f'].map((word) => kit.send(`/draw ${word}`));
    await kit.run(Promise.all(jobs));
    // a runs, b and c wait, d is refused once, e and f are dropped without another message.
    expect(albums(kit).map((album) => labels(album.message)[0])).toEqual(['one|a|0', 'one|b|0', 'one|c|0']);
    const texts = kit.adapter.texts();
    expect(texts.filter((t) => t.startsWith('You already have 2 drawings waiting'))).toHaveLength(1);
    const notices = kit.adapter
      .messages()
      .filter(
        (m) => m.text.includes('waiting for the one running') || m.text.startsWith('Your waiting drawings'),
      );
    expect(notices).toHaveLength(1);
    const history = kit.adapter.calls.flatMap((c) =>
      (c.kind === 'send' || c.kind === 'edit') && c.id === notices[0]!.id ? [c.message.text] : [],
    );
    expect(history).toEqual([
      '1 more drawing(s) of yours waiting for the one running...',
      '2 more drawing(s) of yours waiting for the one running...',
      '1 more drawing(s) of yours waiting for the one running...',
      'Your waiting drawings have all started.',
    ]);
    expect(notices[0]!.message.buttons).toEqual([]);
    // Another user is not affected by this one's line.
    await kit.run(kit.send('/draw g', { user: { id: 'user-2' } }));
    expect(albums(kit)).toHaveLength(4);
  });

  it('answers to the keyword trigger and speaks Chinese', async () => {
    fakes.set('one', 'ok', 5);
    const kit = await start({ backends: [bytes('one')] }, { locale: 'zh-CN' });
    await kit.run(kit.send('画 一只狐狸'));
    expect(labels(albums(kit)[0]!.message)).toEqual(['one|一只狐狸|0']);
    expect(albums(kit)[0]!.message.text).toMatch(/^one · \d+\.\d 秒$/);
    expect(statusOf(kit).text.split('\n')[0]).toBe('完成：1/1 个后端已出图');
    await kit.run(kit.send('/draw'));
    expect(kit.adapter.texts().at(-1)).toBe('用法：/draw <描述>，例如 /draw 雪中的红狐狸');
  });

  it('rejects a config mistake naming the key', async () => {
    const error = await createTestBot({
      plugins: [
        {
          plugin: draw,
          config: {
            backends: [
              { name: 'x', type: 'midjourney' },
              { name: 'y', type: 'http-json', url: 'ftp://x' },
              { name: 'z', type: 'http-jsn', url: 'https://x' },
            ],
          },
        },
      ],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      expect.stringMatching(
        /^plugins\.draw\.backends\[0\]\.type: unknown type "midjourney" \(expected one of /,
      ),
      'plugins.draw.backends[1].url: an http(s) URL, with {prompt} where the prompt goes',
      'plugins.draw.backends[2].type: unknown type "http-jsn" (did you mean "http-json"? expected one of openai-images, http-json, http-image, demo)',
    ]);
  });
});

describe('draw backends, pure parts', () => {
  it('finds image URLs by path and fills templates', () => {
    const answer = { data: [{ url: 'a' }, { url: 'b' }], output: { url: 'c' }, images: ['d', 'e'] };
    expect(pick(answer, 'data[].url')).toEqual(['a', 'b']);
    expect(pick(answer, 'output.url')).toEqual(['c']);
    expect(pick(answer, 'images[]')).toEqual(['d', 'e']);
    expect(pick(answer, 'missing[].url')).toEqual([]);
    expect(fillUrl('https://x/gen?prompt={prompt}', 'a fox & 狐')).toBe(
      'https://x/gen?prompt=a%20fox%20%26%20%E7%8B%90',
    );
    expect(fillBody({ input: { text: 'draw {prompt}' }, n: 1 }, 'a "fox"')).toEqual({
      input: { text: 'draw a "fox"' },
      n: 1,
    });
  });

  it('accepts only real image bytes', () => {
    expect(sniffImage(paintDemo('a fox', 'demo', 0))).toBe('image/png');
    expect(() => asImage('x', new TextEncoder().encode('<html>no</html>'), 'text/html')).toThrow(
      'x: answered HTML, not an image',
    );
  });
});
