/**
 * Messages per second and latency through real grammY clients and the fake Bot API on 127.0.0.1,
 * the fake in a process of its own and each bot in another: Chorus (adapter, bus, router, job,
 * outbox, SQLite state store) against grammY with @grammyjs/runner (updates handled concurrently,
 * the strongest plain baseline) and grammY's sequential `bot.start()`. Budgets are lifted on every
 * side: this measures the code, not Telegram's limits.
 *
 * After a warm-up of 2,000 updates, a burst of 10,000 over 200 private chats gives messages/s; then,
 * after a second's pause (so that cleaning up after the burst does not fall into it), 5,000 more
 * at a steady 1,000 a second give the latency from an update being queued to its reply reaching
 * the fake, p50 and p99. The bot process's CPU time per message of the burst is the
 * steadiest figure on a busy machine. Memory is the bot process's peak RSS. Each contender runs
 * five times, in turn with the others, in fresh processes; the table shows the medians, and the
 * median of the ratios Chorus / runner within each round.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Row } from '../core.ts';

const count = 10_000;
const warmUp = 2000;
const paced = 5000;
const rounds = 5;
const chats = 200;
const pacedPerSecond = 1000;
const contenders = ['chorus', 'runner', 'sequential'] as const;
type Contender = (typeof contenders)[number];

interface Done {
  readonly ms: number;
  readonly latenciesMs: number[];
}

function spawn(file: string, args: string[]): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The next IPC message of `type` from `child`; an error after two minutes without it. */
function next<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return;
      done();
      resolve(message as T);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`child exited (${code}) before "${type}"`));
    };
    const timer = setTimeout(() => {
      done();
      child.kill('SIGKILL');
      reject(new Error(`no "${type}" within two minutes`));
    }, 120_000);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

export interface TelegramFigures {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxRssMb: number;
  /** The bot process's CPU time (user and system) per message of the burst: robust on a busy machine. */
  readonly cpuMicrosPerMessage: number;
}

/** One contender against a fresh fake: a burst, then a paced run. */
export async function measure(contender: Contender): Promise<TelegramFigures> {
  const fake = spawn('./fake.ts', []);
  let bot: ChildProcess | undefined;
  try {
    const { url, token } = await next<{ url: string; token: string }>(fake, 'ready');
    bot = spawn('./bot.ts', [contender, url, token]);
    return await run(fake, bot);
  } finally {
    bot?.kill('SIGKILL');
    fake.kill('SIGKILL');
  }
}

async function run(fake: ChildProcess, bot: ChildProcess): Promise<TelegramFigures> {
  await next(bot, 'ready');
  // A warm-up, so the figures are of running code, not of the JIT's first pass.
  fake.send({ type: 'burst', count: warmUp, chats });
  await next<Done>(fake, 'done');
  const cpu = async () => {
    bot.send({ type: 'cpu' });
    return (await next<{ micros: number }>(bot, 'cpu')).micros;
  };
  const cpuBefore = await cpu();
  fake.send({ type: 'burst', count, chats });
  const burst = await next<Done>(fake, 'done');
  const cpuMicrosPerMessage = ((await cpu()) - cpuBefore) / count;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  fake.send({ type: 'paced', count: paced, chats, perSecond: pacedPerSecond });
  const steady = await next<Done>(fake, 'done');
  bot.send({ type: 'stop' });
  const { maxRssBytes } = await next<{ maxRssBytes: number }>(bot, 'stopped');
  fake.send({ type: 'close' });
  await new Promise((resolve) => fake.once('exit', resolve));
  const sorted = steady.latenciesMs.sort((a, b) => a - b);
  return {
    perSecond: (count / burst.ms) * 1000,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxRssMb: maxRssBytes / 1024 / 1024,
    cpuMicrosPerMessage,
  };
}

const labels: Record<Contender, string> = {
  chorus: 'Chorus',
  runner: 'grammY + @grammyjs/runner',
  sequential: 'grammY, sequential bot.start()',
};

const median = (values: number[]): number => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

export async function benchTelegram(): Promise<Row[]> {
  const runs = new Map<Contender, TelegramFigures[]>(contenders.map((contender) => [contender, []]));
  for (let round = 0; round < rounds; round++) {
    for (const contender of contenders) {
      // A run that never finishes (a reply lost for good) is told and run again, once.
      const figures = await measure(contender).catch((error: unknown) => {
        process.stderr.write(`telegram bench: ${contender}: ${String(error)}; running it again\n`);
        return measure(contender);
      });
      runs.get(contender)!.push(figures);
    }
  }
  const rows: Row[] = [];
  for (const contender of contenders) {
    const all = runs.get(contender)!;
    const of = (pick: (figures: TelegramFigures) => number) => median(all.map(pick));
    rows.push(
      {
        name: `telegram: ${labels[contender]}: messages/s`,
        value: of((f) => f.perSecond).toFixed(0),
        note: `burst of ${count} over ${chats} chats, fake Bot API in its own process; median of ${rounds}`,
      },
      {
        name: `telegram: ${labels[contender]}: latency p50 / p99 (ms)`,
        value: `${of((f) => f.p50Ms).toFixed(1)} / ${of((f) => f.p99Ms).toFixed(1)}`,
        note: `${paced} at ${pacedPerSecond}/s`,
      },
      {
        name: `telegram: ${labels[contender]}: bot CPU per message (µs)`,
        value: of((f) => f.cpuMicrosPerMessage).toFixed(0),
        note: 'user + system, during the burst',
      },
      { name: `telegram: ${labels[contender]}: peak RSS (MB)`, value: of((f) => f.maxRssMb).toFixed(0) },
    );
  }
  // Each round runs the contenders one after another, so a ratio within a round is not thrown off
  // by the machine getting busier or quieter between rounds.
  const chorus = runs.get('chorus')!;
  const runner = runs.get('runner')!;
  const ratio = (pick: (figures: TelegramFigures) => number) =>
    median(chorus.map((figures, round) => pick(figures) / pick(runner[round]!))).toFixed(2);
  rows.push({
    name: 'telegram: Chorus / runner, each round: messages/s, p99, CPU per message, peak RSS',
    value: `${ratio((f) => f.perSecond)} / ${ratio((f) => f.p99Ms)} / ${ratio((f) => f.cpuMicrosPerMessage)} / ${ratio((f) => f.maxRssMb)}`,
    note: `median of ${rounds} rounds`,
  });
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await benchTelegram())
    process.stdout.write(`${row.name}  ${row.value}  ${row.note ?? ''}\n`);
}
