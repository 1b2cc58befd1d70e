/**
 * The web channel's HTTP API as its clients use it: `npm start -- --config FILE` with the web
 * adapter on the process's HTTP server, draw and ask on fake backends, and `fetch` reading the
 * Server-Sent Events.
 */
import { createServer, type Server } from 'node:net';
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelOf } from '../fakes/images.ts';
import {
  type Backends,
  llmApiKey,
  type RunningChorus,
  startBackends,
  startChorus,
  workDir,
} from './harness.ts';

const token = 'web-test-token-0123456789';
const auth = { authorization: `Bearer ${token}` };
const jsonHeaders = { ...auth, 'content-type': 'application/json' };

interface Event {
  readonly type: string;
  readonly id: string | undefined;
  readonly data: Record<string, unknown>;
}

/** Reads Server-Sent Events from `response` until `stop` says so or the stream ends. */
async function readEvents(
  response: Response,
  stop: (events: Event[]) => boolean = () => false,
  ms = 15_000,
): Promise<Event[]> {
  const events: Event[] = [];
  const parser = createParser({
    onEvent: (event) =>
      events.push({
        type: event.event ?? 'message',
        id: event.id,
        data: JSON.parse(event.data) as Record<string, unknown>,
      }),
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => void reader.cancel(new Error('timed out')), ms);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(value);
      if (stop(events)) break;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  return events;
}

let backends: Backends;
let bot: RunningChorus;
let base: string;
let releaseAnswer: () => void;

beforeAll(async () => {
  backends = await startBackends();
  const { images, llm } = backends;
  images.set('quick', 'ok', 100);
  const held = new Promise((resolve) => {
    releaseAnswer = () => resolve(undefined);
  });
  llm.script('gpt-test', {
    pieces: (messages) => {
      const question = messages.at(-1)?.content ?? '';
      if (question.includes('wait for it')) return ['The first half, ', 'and **the rest**.'];
      return [`You said: ${question}. `, 'That is **all**.'];
    },
    firstByteMs: 50,
  });
  llm.script('gpt-held', {
    pieces: ['The first half, ', 'and **the rest**.'],
    hold: { piece: 1, until: held },
  });
  const dir = workDir();
  const config = [
    'http:',
    '  server: { port: 0 }',
    'adapters:',
    '  web:',
    '    token: ${WEB_TOKEN}',
    ...backends.plugins(dir, 2),
    `      - { name: held, type: openai, baseUrl: ${llm.url}/v1, apiKey: \${OPENAI_API_KEY}, model: gpt-held }`,
    'state:',
    `  path: ${dir}/state.sqlite`,
    '',
  ].join('\n');
  bot = startChorus(dir, config, { env: { WEB_TOKEN: token, OPENAI_API_KEY: llmApiKey } });
  await bot.waitFor(/web chat page ready url=\S+/);
  base = bot.output().stderr.match(/web chat page ready url=(http:\/\/\S+)\//)![1]!;
}, 30_000);

afterAll(async () => {
  await bot?.stop('SIGKILL');
  await backends?.close();
});

const post = (body: unknown, headers: Record<string, string> = jsonHeaders) =>
  fetch(`${base}/api/messages`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('the web API through npm start', () => {
  it('answers /draw with a status, its edits, each album as a message, and done; the images are served', async () => {
    const response = await post({ text: '/draw a red fox', chat: 'fox-chat' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('chorus-chat')).toBe('fox-chat');
    const events = await readEvents(response);
    expect(events.at(-1)).toMatchObject({
      type: 'done',
      data: { message: response.headers.get('chorus-message') },
    });
    expect(events.filter((e) => e.type === 'done')).toHaveLength(1);
    const [status, ...rest] = events.filter((e) => e.type === 'message');
    expect(status!.data).toMatchObject({
      from: 'bot',
      text: 'Drawing with 4 backends...',
      replyTo: response.headers.get('chorus-message'),
      buttons: [[{ label: 'Cancel', action: 'chorus:cancel' }]],
    });
    // Each backend's album the moment it finished: fastest first; the failing one sends none.
    expect(rest.map((e) => String(e.data.text).split(' ·')[0])).toEqual(['quick', 'steady', 'slow']);
    const edits = events.filter((e) => e.type === 'edit' && e.data.id === status!.data.id);
    expect(edits.length).toBeGreaterThan(1);
    expect(edits.at(-1)!.data).toMatchObject({ final: true, buttons: [] });
    expect(String(edits.at(-1)!.data.text)).toMatch(/^Finished: 3\/4 backends delivered/);
    const urls = rest.flatMap((e) => e.data.images as string[]);
    expect(urls).toHaveLength(6);
    const image = await fetch(`${base}${urls[0]}`, { headers: auth });
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(labelOf(new Uint8Array(await image.arrayBuffer()))).toBe('quick|a red fox|0');
    expect((await fetch(`${base}${urls[0]}`)).status).toBe(401);
    expect((await fetch(`${base}/api/images/no-such-image`, { headers: auth })).status).toBe(404);
  });

  it('streams an answer: typing, a partial message, its edits growing, the final Markdown edit, then done', async () => {
    const response = await post({ text: '/ask@all wait for it', chat: 'stream-chat' });
    let sawPartialBeforeEnd = false;
    const events = await readEvents(response, (seen) => {
      const held = seen.find((e) => e.type === 'message' && String(e.data.text).startsWith('held:'));
      if (held && !sawPartialBeforeEnd) {
        sawPartialBeforeEnd = true;
        expect(held.data.partial).toBe(true);
        releaseAnswer();
      }
      return false;
    });
    expect(sawPartialBeforeEnd).toBe(true);
    const types = events.map((e) => e.type);
    expect(types).toContain('typing');
    expect(types.indexOf('typing')).toBeLessThan(types.indexOf('message'));
    expect(types.at(-1)).toBe('done');
    const answers = events.filter((e) => e.type === 'message');
    expect(answers.map((e) => String(e.data.text).split(':')[0]).sort()).toEqual(['gpt', 'held']);
    for (const answer of answers) {
      const last = events.filter((e) => e.type === 'edit' && e.data.id === answer.data.id).at(-1)!;
      expect(last.data).toMatchObject({ final: true, format: 'markdown' });
      expect(String(last.data.text)).toMatch(/The first half, and \*\*the rest\*\*\.$/);
    }
  });

  it('keeps chats apart: a chat per call without an id, each chat its own events and its own conversation', async () => {
    const [a, b] = await Promise.all([post({ text: 'my word is apple' }), post({ text: 'my word is pear' })]);
    const chatA = a.headers.get('chorus-chat')!;
    const chatB = b.headers.get('chorus-chat')!;
    expect(chatA).toMatch(/^[\w-]{20,}$/);
    expect(chatB).not.toBe(chatA);
    expect(a.headers.get('set-cookie')).toMatch(/^chorus_chat=[\w-]+; Path=\/; .*HttpOnly; SameSite=Strict/);
    const [eventsA, eventsB] = await Promise.all([readEvents(a), readEvents(b)]);
    const text = (events: Event[]) => JSON.stringify(events);
    expect(text(eventsA)).toContain('apple');
    expect(text(eventsA)).not.toContain('pear');
    expect(text(eventsB)).toContain('pear');
    expect(text(eventsB)).not.toContain('apple');
    // The model got each chat's own history, not the other's.
    const second = await post({ text: 'what was my word?', chat: chatB });
    await readEvents(second);
    const request = backends.llm.requests.at(-1)!;
    expect(JSON.stringify(request.body.messages)).toContain('pear');
    expect(JSON.stringify(request.body.messages)).not.toContain('apple');
    // A chat's event stream replays that chat only, the visitor's messages included.
    const replay = await readEvents(
      await fetch(`${base}/api/chats/${chatB}/events`, { headers: auth }),
      (events) => events.filter((e) => e.type === 'done').length === 2,
    );
    expect(text(replay)).toContain('what was my word?');
    expect(replay.filter((e) => e.data.from === 'visitor')).toHaveLength(2);
    expect(text(replay)).not.toContain('apple');
  });

  it('a client that goes away cancels nothing: the chat stream sees the draw finish', async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/api/messages`, {
      method: 'POST',
      headers: jsonHeaders,
      body: JSON.stringify({ text: '/draw a blue whale', chat: 'gone-chat' }),
      signal: controller.signal,
    });
    const message = response.headers.get('chorus-message')!;
    await readEvents(response, (events) => events.length > 0).catch(() => {});
    controller.abort();
    const events = await readEvents(
      await fetch(`${base}/api/chats/gone-chat/events`, { headers: auth }),
      (seen) => seen.some((e) => e.type === 'done' && e.data.message === message),
    );
    const albums = events.filter((e) => e.type === 'message' && e.data.images);
    expect(albums).toHaveLength(3);
    expect(JSON.stringify(events)).toContain('Finished: 3/4 backends delivered');
  });

  it('takes a press of a button the message shows, and refuses any other', async () => {
    const response = await post({ text: '/draw a green owl', chat: 'press-chat' });
    const events = await readEvents(response, (seen) => seen.some((e) => e.type === 'message'));
    const status = events.find((e) => e.type === 'message')!;
    const press = (body: object) =>
      fetch(`${base}/api/press`, { method: 'POST', headers: jsonHeaders, body: JSON.stringify(body) });
    const forged = await press({
      chat: 'press-chat',
      message: status.data.id,
      action: 'draw:delete-everything',
    });
    expect(forged.status).toBe(400);
    expect(await forged.json()).toEqual({ error: 'no such button on that message' });
    const elsewhere = await press({ chat: 'fox-chat', message: status.data.id, action: 'chorus:cancel' });
    expect(elsewhere.status).toBe(400);
    const ok = await press({ chat: 'press-chat', message: status.data.id, action: 'chorus:cancel' });
    expect(ok.status).toBe(200);
    const rest = await readEvents(
      await fetch(`${base}/api/chats/press-chat/events`, { headers: auth }),
      (seen) => seen.some((e) => e.type === 'done'),
    );
    const final = rest.filter((e) => e.type === 'edit' && e.data.id === status.data.id).at(-1)!;
    expect(String(final.data.text)).toMatch(/^Cancelled: /);
  });

  it('wants the token: 401 without it or with a wrong one, on the API and the page; ?token= once sets a cookie', async () => {
    for (const [path, init] of [
      [
        '/api/messages',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' },
      ],
      ['/api/chat', {}],
      ['/api/chats/fox-chat/events', {}],
      ['/api/press', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
    ] as const) {
      const none = await fetch(`${base}${path}`, init);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      expect(await none.json()).toEqual({ error: 'a token is needed: Authorization: Bearer <token>' });
      const wrong = await fetch(`${base}${path}`, {
        ...init,
        headers: { ...('headers' in init ? init.headers : {}), authorization: 'Bearer not-the-token' },
      });
      expect(wrong.status, path).toBe(401);
    }
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(401);
    expect(await page.text()).toContain('<form method="get" action="/">');
    expect((await fetch(`${base}/?token=wrong-token-value`, { redirect: 'manual' })).status).toBe(401);
    const once = await fetch(`${base}/?token=${token}`, { redirect: 'manual' });
    expect(once.status).toBe(303);
    expect(once.headers.get('location')).toBe('/');
    const cookie = once.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^chorus_auth=[\w-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(token);
    const value = cookie.split(';')[0]!;
    const withCookie = await fetch(`${base}/`, { headers: { cookie: value } });
    expect(withCookie.status).toBe(200);
    expect(withCookie.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await withCookie.text()).toContain('<script type="module" src="/web/app.js">');
    const chat = await fetch(`${base}/api/chat`, { headers: { cookie: value } });
    expect(chat.status).toBe(200);
    expect((await chat.json()) as object).toEqual({ chat: expect.stringMatching(/^[\w-]{20,}$/) });
    expect(bot.output().stderr).not.toContain(token);
  });

  it('refuses bad bodies with 400 and a JSON error, and bodies over 64 KB with 413', async () => {
    const cases: [string | object, Record<string, string>, string][] = [
      ['not json', jsonHeaders, 'the body is not JSON'],
      [{ chat: 'x' }, jsonHeaders, 'text: required (expected string)'],
      [{ text: '   ' }, jsonHeaders, 'text: expected some text'],
      [{ text: 'hi', room: 'x' }, jsonHeaders, 'body: unknown key "room"'],
      [{ text: 'hi', chat: '../other' }, jsonHeaders, 'chat: expected 1 to 64 letters, digits, "_" or "-"'],
      [{ text: 42 }, jsonHeaders, 'text: expected string, received number'],
      ['{"text":"hi"}', { ...auth, 'content-type': 'text/plain' }, 'expected Content-Type: application/json'],
    ];
    for (const [body, headers, error] of cases) {
      const response = await post(body, headers);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ error });
    }
    const big = await post({ text: 'x'.repeat(65 * 1024) });
    expect(big.status).toBe(413);
    const fits = await post({ text: `/help ${'x'.repeat(15_000)}`, chat: 'big-chat' });
    expect(fits.status).toBe(200);
    await readEvents(fits);
  });
});

describe('the web adapter on a port of its own', () => {
  it('fails to start with a clear line when the port is taken, or takes a free one with onPortTaken: free-port; ends its streams on shutdown', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const dir = workDir();
      const config = (extra: string) =>
        ['adapters:', `  web: { port: ${port}${extra} }`, 'state:', `  path: ${dir}/state.sqlite`, ''].join(
          '\n',
        );
      const failing = startChorus(dir, config(''));
      expect(await failing.exited).toBe(1);
      expect(failing.output().stderr).toContain(
        `chorus: ChorusError(WEB_PORT_TAKEN): adapters.web.port: 127.0.0.1:${port} is in use; choose another port, or set onPortTaken: free-port`,
      );
      const moving = startChorus(dir, config(', onPortTaken: free-port'));
      try {
        await moving.waitFor(/web chat page ready url=\S+/);
        const line = moving
          .output()
          .stderr.split('\n')
          .find((l) => l.includes(`port ${port} is in use`))!;
        expect(line).toMatch(
          /WARN .*port \d+ is in use, so the web page is on port \d+ instead url=http:\/\/127\.0\.0\.1:\d+\//,
        );
        const url = line.match(/url=(\S+)/)![1]!;
        expect(new URL(url).port).not.toBe(String(port));
        const page = await fetch(url);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('<title>Chorus</title>');
        // On shutdown an open event stream ends cleanly (no reset), and the bot exits 0.
        const events = await fetch(new URL('/api/chats/any-chat/events', url));
        const reader = events.body!.getReader();
        const read = reader.read();
        expect((await moving.stop()).code).toBe(0);
        expect(await read).toEqual({ done: true, value: undefined });
      } finally {
        await moving.stop();
      }
    } finally {
      taken.close();
    }
  });
});
