/**
 * Hostile visitors of the web channel: a client that never reads its event stream, and cookies
 * and chat ids made up to reach somewhere else.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createWebAdapter, type WebAdapter } from '../../adapters/web/index.ts';
import type { AdapterHost } from '../../src/adapter.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/store.ts';

const host: AdapterHost = {
  log: createLogger({ level: 'silent' }),
  store: new MemoryStore(),
  receive: async () => {},
  press: async () => {},
  inputEnded: () => {},
};
const chat = { adapter: 'web', platform: 'web', id: 'slow-chat', kind: 'private' } as const;

let adapter: WebAdapter | undefined;
afterEach(async () => {
  await adapter?.stop();
  adapter = undefined;
});

describe('the web channel against hostile clients', () => {
  it('lets go of a client that reads nothing, instead of holding its events in memory', async () => {
    adapter = createWebAdapter({ port: 0 });
    await adapter.start(host);
    const socket = connect(Number(adapter.url!.port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = 0;
    let headers = '';
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      if (!headers) headers = chunk.toString('latin1').split('\r\n')[0]!;
      received += chunk.length;
    });
    socket.write(`GET /api/chats/${chat.id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await new Promise<void>((resolve) => {
      const check = () => (headers ? resolve() : setTimeout(check, 5));
      check();
    });
    // From now on the client reads nothing: the sends pile up behind it, all within one turn.
    socket.pause();
    const text = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 40; i++) await adapter.send(chat, { text });
    socket.resume();
    await closed;
    expect(headers).toBe('HTTP/1.1 200 OK');
    expect(received).toBeLessThan(20 * 1024 * 1024);
  });

  it('ignores a made-up chat cookie and a chat id that is not one', async () => {
    adapter = createWebAdapter({ port: 0 });
    await adapter.start(host);
    const chatOf = await fetch(new URL('/api/chat', adapter.url), {
      headers: { cookie: 'chorus_chat=../../admin%0d%0aX-Evil: 1' },
    });
    const { chat: id } = (await chatOf.json()) as { chat: string };
    expect(id).toMatch(/^[\w-]{22}$/);
    expect(chatOf.headers.get('set-cookie')).toMatch(new RegExp(`^chorus_chat=${id};`));
    expect(chatOf.headers.get('x-evil')).toBeNull();
    for (const path of ['/api/chats/..%2Fother/events', '/api/chats/a%0Ab/events', '/api/chats//events'])
      expect((await fetch(new URL(path, adapter.url))).status, path).toBe(404);
    const traversal = await fetch(new URL('/web/..%2F..%2Findex.ts', adapter.url));
    expect(traversal.status).toBe(404);
    const page = await fetch(new URL('/web/index.html', adapter.url));
    expect(page.status).toBe(404);
  });
});
