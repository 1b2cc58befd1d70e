/**
 * The web adapter's pure pieces (request bodies, events and their SSE form, cookies, image types),
 * its bounded stores, and the adapter in a bot: `done` only once every job of a message has ended.
 */
import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { WebChatRoom, WebChatRooms } from '../../adapters/web/chats.ts';
import { ImageShelf } from '../../adapters/web/images.ts';
import { createWebAdapter } from '../../adapters/web/index.ts';
import {
  bearerToken,
  editEvent,
  imageContentType,
  messageBody,
  messageEvent,
  parseBody,
  parseCookies,
  sseFrame,
} from '../../adapters/web/normalize.ts';
import { createBot } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HttpServer } from '../../src/runtime/http-server.ts';

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

describe('web normalize', () => {
  it('parses a message body, and names the key of a bad one', () => {
    expect(parseBody(messageBody, '{"text":"/draw a fox","chat":"c-1","user":"Ann"}')).toEqual({
      ok: true,
      value: { text: '/draw a fox', chat: 'c-1', user: 'Ann' },
    });
    expect(parseBody(messageBody, '{"text":')).toEqual({ ok: false, error: 'the body is not JSON' });
    expect(parseBody(messageBody, '[]')).toEqual({
      ok: false,
      error: 'body: expected object, received array',
    });
    expect(parseBody(messageBody, '{"text":"hi","user":""}')).toMatchObject({ ok: false, error: /^user: / });
    expect(parseBody(messageBody, `{"text":"${'x'.repeat(16_001)}"}`)).toEqual({
      ok: false,
      error: 'text: expected at most 16000 characters',
    });
  });

  it('writes each event as one SSE frame that no text can break out of', () => {
    const hostile = 'line one\n\nevent: done\ndata: {}\r\n\r\n';
    const frame = sseFrame(messageEvent('b1', { text: hostile, replyTo: 'm1' }, []), 7);
    expect(frame.split('\n')).toHaveLength(5);
    const events: { event?: string | undefined; id?: string | undefined; data: string }[] = [];
    createParser({ onEvent: (event) => events.push(event) }).feed(frame);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'message', id: '7' });
    expect(JSON.parse(events[0]!.data)).toEqual({ id: 'b1', from: 'bot', text: hostile, replyTo: 'm1' });
  });

  it('carries format, buttons, images and partial into message events, and final into edits', () => {
    expect(
      messageEvent(
        'b2',
        {
          text: 'go',
          format: 'markdown',
          buttons: [[{ label: 'Cancel', action: 'chorus:cancel', style: 'danger' }]],
          partial: true,
        },
        ['/api/images/x'],
      ).data,
    ).toEqual({
      id: 'b2',
      from: 'bot',
      text: 'go',
      format: 'markdown',
      images: ['/api/images/x'],
      buttons: [[{ label: 'Cancel', action: 'chorus:cancel', style: 'danger' }]],
      partial: true,
    });
    expect(editEvent('b2', { text: 'done', buttons: [] }, true).data).toEqual({
      id: 'b2',
      text: 'done',
      buttons: [],
      final: true,
    });
  });

  it('reads cookies and bearer tokens', () => {
    expect(parseCookies('a=1; chorus_chat=abc ; a=2; junk').get('chorus_chat')).toBe('abc');
    expect(parseCookies('a=1; a=2').get('a')).toBe('1');
    expect(bearerToken('Bearer s3cret')).toBe('s3cret');
    expect(bearerToken('Basic s3cret')).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });

  it('serves raster images as themselves and anything else as bytes a browser will not run', () => {
    expect(imageContentType(png)).toBe('image/png');
    expect(imageContentType(new Uint8Array([0xff, 0xd8, 0xff, 0]))).toBe('image/jpeg');
    expect(imageContentType(new Uint8Array([1, 2]), 'image/webp')).toBe('image/webp');
    const svg = new TextEncoder().encode('<svg onload="alert(1)"/>');
    expect(imageContentType(svg, 'image/svg+xml')).toBe('application/octet-stream');
    expect(imageContentType(svg, 'text/html')).toBe('application/octet-stream');
  });
});

describe('ImageShelf', () => {
  it('keeps at most maxCount images and maxBytes in all, dropping the oldest', () => {
    const shelf = new ImageShelf({ maxBytes: 100, maxCount: 3 });
    const ids = [1, 2, 3, 4].map(() => shelf.put(new Uint8Array(10))!);
    expect(shelf.get(ids[0]!)).toBeUndefined();
    expect(ids.slice(1).every((id) => shelf.get(id))).toBe(true);
    expect(shelf.size).toEqual({ count: 3, bytes: 30 });
    const big = shelf.put(new Uint8Array(90))!;
    expect(shelf.size).toEqual({ count: 2, bytes: 100 }); // two of the small ones made room
    expect(shelf.get(big)?.contentType).toBe('application/octet-stream');
    expect(shelf.put(new Uint8Array(101))).toBeUndefined();
    expect(shelf.get(big)).toBeDefined();
    expect(() => new ImageShelf({ maxBytes: 0, maxCount: 1 })).toThrow(TypeError);
  });
});

describe('WebChatRoom', () => {
  it('keeps the latest edit of each message, bounded, and no typing', () => {
    const room = new WebChatRoom('c', 4);
    room.publish(messageEvent('b1', { text: 'a' }, []));
    for (const text of ['ab', 'abc', 'abcd']) room.publish(editEvent('b1', { text }, false));
    room.publish({ type: 'typing', data: {} });
    expect(room.since().map((e) => [e.seq, e.event.type])).toEqual([
      [1, 'message'],
      [4, 'edit'],
    ]);
    expect(room.since(1).map((e) => e.seq)).toEqual([4]);
    for (let i = 0; i < 5; i++) room.publish(messageEvent(`x${i}`, { text: 'x' }, []));
    expect(room.since()).toHaveLength(4);
    expect(room.since()[0]!.seq).toBe(7);
  });

  it('keeps at most maxBytes of events, but always the latest', () => {
    const room = new WebChatRoom('c', 100, 1200); // room for three of the events below
    for (let i = 0; i < 5; i++) room.publish(messageEvent(`b${i}`, { text: 'x'.repeat(300) }, []));
    expect(room.since().map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(room.bytes).toBeLessThanOrEqual(1200);
    room.publish(editEvent('b4', { text: 'y'.repeat(5000) }, true));
    expect(room.since().map((e) => e.seq)).toEqual([6]);
    expect(room.bytes).toBeGreaterThan(5000);
  });

  it('knows which buttons each message shows now', () => {
    const room = new WebChatRoom('c', 10);
    room.publish(
      messageEvent('b1', { text: 's', buttons: [[{ label: 'Cancel', action: 'chorus:cancel' }]] }, []),
    );
    expect(room.hasButton('b1', 'chorus:cancel')).toBe(true);
    expect(room.hasButton('b1', 'draw:other')).toBe(false);
    expect(room.hasButton('b2', 'chorus:cancel')).toBe(false);
    room.publish(editEvent('b1', { text: 's', buttons: [] }, true));
    expect(room.hasButton('b1', 'chorus:cancel')).toBe(false);
  });

  it('drops the least recently used idle chat past maxChats, never one with a listener', () => {
    const rooms = new WebChatRooms({ maxChats: 2, maxEvents: 10 });
    const a = rooms.get('a');
    a.publish(messageEvent('b1', { text: 'kept' }, []));
    const stop = a.listen(() => {});
    rooms.get('b');
    rooms.get('c');
    expect(rooms.size).toBe(2);
    expect(rooms.get('a')).toBe(a);
    stop();
    rooms.get('d');
    rooms.get('e');
    expect(rooms.get('a')).not.toBe(a);
  });
});

describe('the web adapter in a bot', () => {
  it('sends done only after every job of the message has ended, with their last edits before it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = definePlugin({
      name: 'slow',
      setup(ctx) {
        ctx.command({ name: 'slow', description: 'waits' }, async (c) => {
          const status = await c.status('working');
          await gate;
          await status.finish('finished');
        });
      },
    });
    const server = new HttpServer({ port: 0 });
    const adapter = createWebAdapter();
    const bot = createBot({
      adapters: [adapter],
      plugins: [{ plugin: slow, config: undefined }],
      httpServer: server,
      log: createLogger({ level: 'silent' }),
    });
    await bot.start();
    try {
      const response = await fetch(new URL('/api/messages', adapter.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: '/slow' }),
      });
      const events: string[] = [];
      const parser = createParser({
        onEvent: (event) => events.push(`${event.event}:${JSON.parse(event.data).text ?? ''}`),
      });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      while (!events.includes('message:working')) parser.feed((await reader.read()).value!);
      release();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      expect(events).toEqual(['message:working', 'edit:finished', 'done:']);
    } finally {
      await bot.stop();
      await server.close();
    }
  });

  it('answers at most 8 messages of one chat at once (429 past that), and other chats meanwhile', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const wait = definePlugin({
      name: 'wait',
      setup(ctx) {
        ctx.command({ name: 'wait', description: 'waits' }, async (c) => {
          await c.reply('waiting');
          await gate;
        });
      },
    });
    const server = new HttpServer({ port: 0 });
    const adapter = createWebAdapter();
    const bot = createBot({
      adapters: [adapter],
      plugins: [{ plugin: wait, config: undefined }],
      httpServer: server,
      log: createLogger({ level: 'silent' }),
    });
    await bot.start();
    const post = (chat: string) =>
      fetch(new URL('/api/messages', adapter.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: '/wait', chat }),
      });
    try {
      const open = await Promise.all(Array.from({ length: 8 }, () => post('busy')));
      expect(open.map((response) => response.status)).toEqual(Array(8).fill(200));
      const refused = await post('busy');
      expect(refused.status).toBe(429);
      expect(await refused.json()).toEqual({ error: 'at most 8 messages of one chat are answered at once' });
      const other = await post('quiet');
      expect(other.status).toBe(200);
      release();
      await Promise.all([...open, other].map((response) => response.text()));
      const again = await post('busy');
      expect(again.status).toBe(200);
      await again.text();
    } finally {
      release();
      await bot.stop();
      await server.close();
    }
  });

  it('is a config error to give host without a port', async () => {
    const { webConfig } = await import('../../adapters/web/index.ts');
    const result = webConfig.safeParse({ host: '0.0.0.0' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ path: ['host'] });
  });
});
