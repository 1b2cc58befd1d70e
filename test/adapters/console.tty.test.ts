/**
 * The console on a terminal, checked on a VT100 screen model: what a user would see after each
 * step, including what was left behind (fragments) and where the prompt and cursor are.
 */
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsoleAdapter } from '../../adapters/console/index.ts';
import { displayPosition, wrapText } from '../../adapters/console/normalize.ts';
import { type Bot, createBot } from '../../src/bot.ts';
import { createLogger } from '../../src/logger.ts';
import { definePlugin } from '../../src/plugin.ts';
import { VirtualTerminal } from './terminal.ts';

/** Pieces a test hands to a streaming command one at a time. */
class Feed {
  readonly #queue: (string | null)[] = [];
  #wake: (() => void) | undefined;
  push(piece: string | null): void {
    this.#queue.push(piece);
    this.#wake?.();
  }
  async *pieces(): AsyncGenerator<string> {
    for (;;) {
      while (this.#queue.length === 0) await new Promise<void>((resolve) => (this.#wake = resolve));
      const piece = this.#queue.shift()!;
      if (piece === null) return;
      yield piece;
    }
  }
}

const feeds = new Map<string, Feed>();
const feed = (name: string) => {
  const found = feeds.get(name) ?? new Feed();
  feeds.set(name, found);
  return found;
};

const plugin = definePlugin({
  name: 'demo',
  setup(ctx) {
    ctx.command({ name: 'echo', description: 'Echo' }, async (c) => {
      await c.reply(c.command!.args);
    });
    ctx.command({ name: 'stream', description: 'Streams what the test feeds' }, async (c) => {
      await c.stream(feed(c.command!.args).pieces());
    });
    ctx.command({ name: 'both', description: 'Two answers side by side' }, async (c) => {
      await Promise.all([c.stream(feed('left').pieces()), c.stream(feed('right').pieces())]);
    });
    ctx.command({ name: 'evil', description: 'Answers with escape sequences' }, async (c) => {
      await c.reply('\x1b[2J\x1b[Hsafe\x1b[31m text\x07');
    });
  },
});

/** Lets the adapter, readline and the outbox do what they do next. */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
};

const running: Bot[] = [];
afterEach(async () => {
  for (const bot of running.splice(0)) await bot.stop();
  feeds.clear();
});

async function terminal(columns = 40, rows = 12) {
  const input = new PassThrough();
  const screen = new VirtualTerminal(columns, rows);
  const logLines: string[] = [];
  const log = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  const adapter = createConsoleAdapter({ input, output: screen, tty: true, prompt: true, logOutput: log });
  const logger = createLogger({ level: 'warn', write: (line) => log.write(`${line}\n`) });
  const bot = createBot({ adapters: [adapter], plugins: [{ plugin }], log: logger });
  running.push(bot);
  await bot.start();
  await settle();
  const type = async (keys: string) => {
    input.write(keys);
    await settle();
  };
  return { screen, type, logger, logLines, bot };
}

describe('console on a terminal', () => {
  it('shows a prompt and edits the line with arrows, keeps a history', async () => {
    const { screen, type } = await terminal();
    expect(screen.transcript()).toEqual(['you›']);
    await type('/echo wrld');
    await type('\x1b[D\x1b[D\x1b[D'); // three times left
    await type('o');
    expect(screen.transcript()).toEqual(['you› /echo world']);
    expect(screen.cursor).toEqual({ row: 0, col: 'you› /echo wo'.length });
    await type('\r');
    await type('\x1b[A'); // up: the last line again
    expect(screen.transcript()).toEqual(['you› /echo world', '/echo world', 'you› /echo world']);
    await type('\x7f\x7f\x7f\x7f\x7fthere\r'); // backspace five times
    expect(screen.transcript()).toEqual([
      'you› /echo world',
      '/echo world',
      'you› /echo there',
      '/echo there',
      'you›',
    ]);
  });

  it('grows a streamed answer in place, wrapped under its label, and leaves only the final text', async () => {
    const { screen, type } = await terminal(40, 12);
    await type('/stream a\r');
    const text = 'The sky is blue because air scatters short wavelengths of sunlight more than long ones.';
    const pieces = text.match(/.{1,9}/g)!;
    for (const [index, piece] of pieces.entries()) {
      feed('a').push(piece);
      await settle();
      const sofar = pieces.slice(0, index + 1).join('');
      const rows = wrapText(sofar.trimEnd(), 40 - 2 - '/stream'.length - 1);
      const live = rows.map((row, i) => `${i === 0 ? '/stream' : '       '} ${row}`.trimEnd());
      // Exactly what was typed, the live region, the prompt: no fragment of an earlier state.
      expect(screen.transcript()).toEqual(['you› /stream a', ...live, 'you›']);
    }
    feed('a').push(null);
    await settle();
    const final = displayPosition(`/stream ${text}`, 40).rows + 1;
    expect(screen.transcript()).toHaveLength(1 + final + 1);
    // The terminal wraps the final text (a space at a row's end is not seen): compare without spaces.
    const unspaced = (value: string) => value.replace(/ /g, '');
    expect(unspaced(screen.transcript().join(''))).toBe(unspaced(`you› /stream a/stream ${text}you›`));
    expect(screen.transcript().at(-1)).toBe('you›');
  });

  it('shows every concurrent answer in its own labelled live region, and log lines above them', async () => {
    const { screen, type, logger } = await terminal(50, 14);
    await type('/both\r');
    await type('/stream solo\r');
    feed('left').push('left model says hi');
    feed('right').push('right model says hello');
    feed('solo').push('alone');
    await settle();
    expect(screen.transcript()).toEqual([
      'you› /both',
      'you› /stream solo',
      '/both left model says hi',
      '/both right model says hello',
      '/stream alone',
      'you›',
    ]);
    logger.warn('backend slow', { backend: 'gpt' });
    await settle();
    const lines = screen.transcript();
    expect(lines.slice(0, 2)).toEqual(['you› /both', 'you› /stream solo']);
    expect(lines.slice(2, -4).join('')).toMatch(/WARN {2}\[chorus\] backend slow backend=gpt$/);
    expect(lines.slice(-4)).toEqual([
      '/both left model says hi',
      '/both right model says hello',
      '/stream alone',
      'you›',
    ]);
    // Typing goes on at the prompt while answers grow.
    await type('/ec');
    feed('right').push(', and more');
    await settle();
    expect(screen.transcript().slice(-2)).toEqual(['/stream alone', 'you› /ec']);
    expect(screen.transcript()).toContain('/both right model says hello, and more');
    for (const name of ['left', 'right', 'solo']) feed(name).push(null);
    await settle();
    expect(screen.transcript().slice(-4)).toEqual([
      '/both left model says hi',
      '/both right model says hello, and more',
      '/stream alone',
      'you› /ec',
    ]);
  });

  it('wraps wide characters by their width and clears them without leaving pieces', async () => {
    const { screen, type } = await terminal(30, 10);
    await type('/stream cjk\r');
    feed('cjk').push('画'.repeat(25));
    await settle();
    const live = screen.transcript().slice(1, -1);
    expect(live.length).toBeGreaterThan(1);
    for (const row of live) expect(displayPosition(row, 1000).cols).toBeLessThan(30);
    feed('cjk').push(null);
    await settle();
    expect(screen.transcript().join('')).toBe(`you› /stream cjk/stream ${'画'.repeat(25)}you›`);
  });

  it('keeps escape sequences in answers from reaching the terminal', async () => {
    const { screen, type } = await terminal();
    await type('/echo before\r');
    await type('/evil\r');
    expect(screen.transcript()).toEqual([
      'you› /echo before',
      '/echo before',
      'you› /evil',
      '/evil safe text',
      'you›',
    ]);
  });
});

describe('console on a terminal, stopping', () => {
  it('clears its live regions and prompt, so what the log says last starts on a clean row', async () => {
    const { screen, type, bot } = await terminal();
    await type('/stream late\r');
    feed('late').push('half an answer');
    await settle();
    const stopping = bot.stop();
    feed('late').push(null);
    await stopping;
    // No prompt left behind, and the cursor at the start of a clean row for whatever comes next.
    expect(screen.transcript()).toEqual(['you› /stream late', '/stream half an answer', '', '(cancelled)']);
    expect(screen.cursor.col).toBe(0);
    expect(screen.screen()[screen.cursor.row]).toBe('');
  });
});
