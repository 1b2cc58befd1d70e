import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createConsoleAdapter } from '../../adapters/console/index.ts';
import { consoleChat, imageExtension } from '../../adapters/console/normalize.ts';
import { createBot } from '../../src/bot.ts';
import { sleep, systemClock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

const plugin = definePlugin({
  name: 'demo',
  setup(ctx) {
    ctx.command({ name: 'echo', description: 'Echo' }, (c) => c.reply(c.command!.args).then(() => {}));
    ctx.command({ name: 'pics', description: 'Two images' }, async (c) => {
      await c.replyImages(
        [
          { data: png, filename: 'pic.png' },
          { data: png, mimeType: 'image/png' },
        ],
        {
          caption: 'demo: 2 images',
        },
      );
    });
    ctx.command({ name: 'work', description: 'A job that takes a while' }, async (c) => {
      const status = await c.status('working...');
      await sleep(systemClock, 150, c.signal);
      status.update('half way');
      await sleep(systemClock, 150, c.signal);
      await status.finish('work done');
    });
    ctx.command({ name: 'stream', description: 'Streams' }, async (c) => {
      async function* words() {
        for (const word of ['one ', 'two ', 'three']) {
          await sleep(systemClock, 20);
          yield word;
        }
      }
      await c.stream(words());
    });
  },
});

function setup(tty: boolean) {
  const input = new PassThrough();
  const output = new PassThrough();
  let printed = '';
  output.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
  });
  const imageDir = mkdtempSync(join(tmpdir(), 'chorus-console-'));
  const adapter = createConsoleAdapter({ input, output, imageDir, tty });
  const bot = createBot({
    adapters: [adapter],
    plugins: [{ plugin }],
    log: createLogger({ level: 'silent' }),
  });
  return { input, bot, imageDir, printed: () => printed };
}

describe('console adapter', () => {
  it('answers each line, saves images, prints only final texts when piped, and exits after jobs on EOF', async () => {
    const { input, bot, printed } = setup(false);
    await bot.start();
    input.write('/work\n/echo hello there\n/pics\n/stream\n');
    input.end();
    await bot.stopped;
    const out = printed();
    const lines = out.trim().split('\n');
    expect(lines).toContain('hello there');
    expect(lines).toContain('working...');
    expect(lines).toContain('work done');
    expect(lines).toContain('one two three');
    expect(out).not.toContain('half way');
    // The streamed answer is printed once, complete; never its first piece on its own.
    expect(lines.filter((line) => line.startsWith('one'))).toEqual(['one two three']);
    const images = lines.filter((line) => line.startsWith('  [image] '));
    expect(images).toHaveLength(2);
    for (const line of images) {
      const path = line.slice('  [image] '.length);
      expect(path.endsWith('.png')).toBe(true);
      expect(new Uint8Array(readFileSync(path))).toEqual(png);
    }
    // The job that took longest finished before the bot stopped.
    expect(lines.indexOf('work done')).toBeGreaterThan(lines.indexOf('hello there'));
  });

  it('with onInputEnd: continue, an empty input (a service manager) leaves the bot running', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const logs: string[] = [];
    const adapter = createConsoleAdapter({
      input,
      output,
      imageDir: mkdtempSync(join(tmpdir(), 'chorus-console-')),
      tty: false,
      onInputEnd: 'continue',
    });
    const bot = createBot({
      adapters: [adapter],
      plugins: [{ plugin }],
      log: createLogger({ level: 'info', write: (line) => logs.push(line) }),
    });
    await bot.start();
    input.end();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(logs.some((line) => line.includes('console input ended; the other adapters go on'))).toBe(true);
    expect(bot.readiness().ready).toBe(true);
    await bot.stop();
  });

  it('normalizes to one private console chat and knows image types by their bytes', () => {
    expect(consoleChat('console')).toEqual({
      adapter: 'console',
      platform: 'console',
      id: 'console',
      kind: 'private',
      title: 'Console',
    });
    expect(imageExtension(png)).toBe('png');
    expect(imageExtension(new Uint8Array([0xff, 0xd8, 0xff]))).toBe('jpg');
    expect(imageExtension(new Uint8Array([1, 2]), 'image/webp')).toBe('webp');
  });
});

describe('console images', () => {
  it('never overwrites the pictures of an earlier message', async () => {
    const { input, bot, printed } = setup(false);
    await bot.start();
    input.write('/pics\n/pics\n');
    input.end();
    await bot.stopped;
    const paths = printed()
      .split('\n')
      .filter((line) => line.startsWith('  [image] '));
    expect(paths).toHaveLength(4);
    expect(new Set(paths).size).toBe(4);
  });
});
