/**
 * `/ask` against a hostile chat backend, through the real HttpClient: streams without a newline,
 * endless answers, giant lines, an error that echoes the key, and a user who floods the bot.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as ask } from '../../plugins/ask/index.ts';
import { createLogger, Redactor } from '../../src/logger.ts';
import { createTestBot, type TestBot } from '../../src/testing.ts';
import { type Hostile, startHostile, writeEndless } from './servers.ts';

const MiB = 1024 * 1024;
const secret = 'sk-vendor-0123456789abcdef';

let hostile: Hostile;
let logs: string[];
const kits: TestBot[] = [];
beforeEach(async () => {
  hostile = await startHostile();
  logs = [];
});
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
  await hostile.close();
});

const record = (path: string) => (bytes: number) =>
  void hostile.sent.set(path, (hostile.sent.get(path) ?? 0) + bytes);
const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });
const token = (text: string) => `data: ${JSON.stringify({ choices: [{ delta: { content: text } }] })}\n\n`;

async function start(backend: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const redactor = new Redactor();
  const kit = await createTestBot({
    plugins: [
      {
        plugin: ask,
        config: {
          memory: { path: ':memory:' },
          editIntervalMs: { private: 0, group: 0 },
          backends: [
            {
              name: 'evil',
              type: 'openai',
              model: 'm',
              baseUrl: `${hostile.url}/v1`,
              apiKey: secret,
              headers: { 'X-Api-Key': `${secret}-header` },
              ...backend,
            },
          ],
          ...extra,
        },
      },
    ],
    realTime: true,
    redactor,
    log: createLogger({ level: 'debug', redactor, write: (line) => logs.push(line) }),
  });
  kits.push(kit);
  return kit;
}

function expectNoSecret(kit: TestBot) {
  const everything = [...logs, ...kit.adapter.calls.map((c) => JSON.stringify(c))].join('\n');
  expect(everything).not.toContain('0123456789abcdef');
}

describe('ask against a hostile backend', () => {
  it('an SSE stream with no newline stops at the line cap instead of growing forever', async () => {
    hostile.server.route('POST', '/v1/chat/completions', (_, res) => {
      sse(res).write('data: ');
      return writeEndless(res, Buffer.alloc(64 * 1024, 'x'), record('sse'));
    });
    const kit = await start({});
    await kit.run(kit.send('/ask q'));
    expect(kit.adapter.texts()).toEqual(['(answer cut short: unusable answer)']);
    await expect.poll(() => hostile.server.aborted.length).toBe(1);
    expect(hostile.sent.get('sse')!).toBeLessThan(1 * MiB + 16 * MiB);
    expect(logs.join('\n')).toContain('evil: a stream event over 1048576 characters');
    expectNoSecret(kit);
  });

  it('an NDJSON stream with no newline stops at the line cap too', async () => {
    hostile.server.route('POST', '/api/chat', (_, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' }).write('{"message":{"content":"');
      return writeEndless(res, Buffer.alloc(64 * 1024, 'y'), record('ndjson'));
    });
    const kit = await start({ type: 'ollama', baseUrl: hostile.url });
    await kit.run(kit.send('/ask q'));
    expect(kit.adapter.texts()).toEqual(['(answer cut short: unusable answer)']);
    await expect.poll(() => hostile.server.aborted.length).toBe(1);
    expect(hostile.sent.get('ndjson')!).toBeLessThan(1 * MiB + 16 * MiB);
  });

  it('an endless answer stops at maxAnswerChars with a note; the request is ended', async () => {
    hostile.server.route('POST', '/v1/chat/completions', (_, res) => {
      sse(res);
      return writeEndless(res, Buffer.from(token('blah ').repeat(100)), record('tokens'));
    });
    const kit = await start({}, { maxAnswerChars: 5000 });
    await kit.run(kit.send('/ask q'));
    const text = kit.adapter.texts().join('');
    expect(text.endsWith('\n\n(answer cut at 5000 characters)')).toBe(true);
    expect(text.length).toBe(5000 - 1 + '\n\n(answer cut at 5000 characters)'.length); // trailing space trimmed
    expect(kit.adapter.messages().length).toBeLessThanOrEqual(3);
    await expect.poll(() => hostile.server.aborted.length).toBe(1);
    expect(hostile.sent.get('tokens')!).toBeLessThan(16 * MiB);
  });

  it('a giant answer in one line is cut, and the history sent back stays within memory.maxChars', async () => {
    const bodies: { messages: { content: string }[] }[] = [];
    hostile.server.route('POST', '/v1/chat/completions', (_, res, body) => {
      bodies.push(JSON.parse(body.toString()));
      sse(res).end(`${token('z'.repeat(900_000))}data: [DONE]\n\n`);
    });
    const kit = await start({}, { maxAnswerChars: 20_000, memory: { path: ':memory:', maxChars: 30_000 } });
    for (const question of ['one', 'two', 'three']) await kit.run(kit.send(`/ask ${question}`));
    expect(kit.adapter.texts().at(-1)).toMatch(/\(answer cut at 20000 characters\)$/);
    const sizes = bodies.map((b) => b.messages.reduce((sum, m) => sum + m.content.length, 0));
    // Each remembered answer is 20,000 characters: one turn fits in 30,000, two do not.
    expect(sizes).toEqual([3, 3 + 20_000 + 3, 20_000 + 3 + 5]);
  });

  it('an error that echoes the key: the chat sees "refused (HTTP 401)", the log a redacted excerpt', async () => {
    hostile.server.route('POST', '/v1/chat/completions', (req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: `invalid key ${req.headers.authorization} / ${req.headers['x-api-key']}` }),
      );
    });
    const kit = await start({});
    await kit.run(kit.send('/ask q'));
    expect(kit.adapter.texts()).toEqual(['(answer cut short: refused (HTTP 401))']);
    expect(logs.join('\n')).toContain('evil answered HTTP 401: {\\"error\\":\\"invalid key Bearer *** / ***');
    expectNoSecret(kit);
  });

  it('a flood of questions from one user: one answered, three waiting under one notice, one refusal', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    hostile.server.route('POST', '/v1/chat/completions', async (_, res) => {
      await gate;
      sse(res).end(`${token('ok')}data: [DONE]\n\n`);
    });
    const kit = await start({});
    const jobs = Array.from({ length: 40 }, (_, i) => kit.send(`/ask q${i}`));
    await expect.poll(() => kit.adapter.texts().some((t) => t.startsWith('You already have 3'))).toBe(true);
    release();
    await kit.run(Promise.all(jobs));
    const texts = kit.adapter.texts();
    expect(texts.filter((t) => t === 'ok')).toHaveLength(4);
    expect(texts.filter((t) => t.startsWith('You already have 3 questions waiting'))).toHaveLength(1);
    expect(texts.filter((t) => t.startsWith('Your waiting questions'))).toHaveLength(1);
    expect(texts).toHaveLength(6);
    expect(hostile.server.requests).toHaveLength(4);
  });
});
