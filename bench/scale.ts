/**
 * Several processes, one bot (`state.redis`): messages per second with 1, 2 and 3 `chorus start`
 * processes on one redis-server, and the Redis commands each message costs. Telegram in webhook
 * mode against the fake Bot API (budgets lifted: this measures the code and Redis, not Telegram's
 * limits); the bench posts 2,000 `/start` updates over 200 chats to the processes' ports in turn,
 * as a load balancer would, and times them until every one has its reply. Commands per message
 * come from Redis's INFO commandstats; a MULTI block (MULTI, its commands, EXEC) is one round trip.
 *
 * The processes, Redis and this driver share the machine's cores: on 2 cores, a third process
 * adds no CPU, and the figures say how far the work spreads, not how far it would scale on more.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/e2e/harness.ts';
import { FakeTelegram } from '../test/fakes/telegram/server.ts';
import { redisCli, redisMissing, startRedis, type TestRedis } from '../test/src/runtime/redis-server.ts';
import type { Row } from './core.ts';

const root = resolve(import.meta.dirname, '..');
const count = 2000;
const chats = 200;
const secret = 'bench-webhook-secret';

/** Starts one `chorus start` and resolves once its adapter is ready. */
function startProcess(config: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=chorus-source', '--import', 'tsx', 'src/cli.ts', '--config', config],
    {
      cwd: root,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((done, fail) => {
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (/adapter ready/.test(log)) done(child);
    });
    child.on('exit', () => fail(new Error(`chorus exited:\n${log}`)));
  });
}

/**
 * Round trips to Redis, from MONITOR's lines: each command a client sent is one, except that a
 * MULTI block (MULTI, its commands, EXEC) is one; what a Lua script calls inside Redis is none.
 */
function countRoundTrips(lines: readonly string[]): { roundTrips: number; perCommand: Map<string, number> } {
  const inMulti = new Set<string>();
  const perCommand = new Map<string, number>();
  let roundTrips = 0;
  for (const line of lines) {
    const match = /^[\d.]+ \[\d+ ([^\]]+)\] "(\w+)"/.exec(line);
    if (!match || match[1] === 'lua') continue;
    const [, client, name] = match as unknown as [string, string, string];
    const command = name.toLowerCase();
    if (inMulti.has(client)) {
      if (command === 'exec') inMulti.delete(client);
      continue;
    }
    if (command === 'multi') inMulti.add(client);
    roundTrips++;
    perCommand.set(command, (perCommand.get(command) ?? 0) + 1);
  }
  return { roundTrips, perCommand };
}

/** Seconds of CPU the redis-server has used (user and system). */
function redisCpuSeconds(redis: TestRedis): number {
  const info = redisCli(redis, 'INFO', 'cpu');
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return read('used_cpu_user') + read('used_cpu_sys');
}

async function runWith(
  processes: number,
  measure = false,
): Promise<{ perSecond: number; roundTrips: number; top: string; redisCpuUs: number }> {
  const redis = await startRedis();
  const telegram = await new FakeTelegram({
    limits: { perChatMs: 0, perGroupPerMinute: 1e9, globalPerSecond: 1e9 },
  }).start();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-scale-'));
  const config = join(dir, 'chorus.yaml');
  writeFileSync(
    config,
    [
      'http:',
      `  server: { port: \${PORT} }`,
      'state:',
      `  redis: { url: \${REDIS_URL} }`,
      'adapters:',
      '  telegram:',
      `    token: ${telegram.token}`,
      `    apiRoot: ${telegram.url}`,
      '    mode: webhook',
      `    webhook: { url: "https://bot.example.com/telegram", path: /telegram, secretToken: ${secret} }`,
      '    rateLimits: { perChatPerSecond: 1000, perGroupPerMinute: 1000000, globalPerSecond: 1000000 }',
      'plugins: { remind: false }',
      '',
    ].join('\n'),
  );
  const ports: number[] = [];
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < processes; i++) {
      const port = await freePort();
      ports.push(port);
      children.push(await startProcess(config, { PORT: String(port), REDIS_URL: redis.url }));
    }
    telegram.webhook = undefined;
    // Let the processes share the streams out before the clock starts.
    await new Promise((done) => setTimeout(done, 2_500));
    const updates = Array.from({ length: count }, (_, n) => {
      const id = 20_000 + (n % chats);
      telegram.userSays(
        { id, type: 'private', first_name: 'U' },
        { id, is_bot: false, first_name: 'U' },
        '/start',
      );
      return telegram.update(telegram.lastUpdateId);
    });
    const monitor = measure
      ? spawn('redis-cli', ['-s', redis.socket, 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] })
      : undefined;
    let monitored = '';
    monitor?.stdout?.on('data', (chunk: Buffer) => {
      monitored += chunk.toString();
    });
    if (monitor) await new Promise((done) => setTimeout(done, 200));
    const replies = () => telegram.calls('sendMessage').length;
    const cpuBefore = redisCpuSeconds(redis);
    const start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < updates.length) {
          const n = next++;
          await fetch(`http://127.0.0.1:${ports[n % ports.length]}/telegram`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret },
            body: JSON.stringify(updates[n]),
          });
        }
      }),
    );
    while (replies() < count) await new Promise((done) => setTimeout(done, 5));
    const seconds = (performance.now() - start) / 1000;
    const redisCpuUs = ((redisCpuSeconds(redis) - cpuBefore) * 1e6) / count;
    if (monitor) await new Promise((done) => setTimeout(done, 500));
    monitor?.kill();
    const { roundTrips, perCommand } = countRoundTrips(monitored.split('\n'));
    const top = [...perCommand]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 7)
      .map(([name, n]) => `${name} ${(n / count).toFixed(2)}`)
      .join(', ');
    return { perSecond: count / seconds, roundTrips: roundTrips / count, top, redisCpuUs };
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await telegram.close();
    await redis.stop();
  }
}

/** Rows for `npm run bench`. */
export async function benchScale(): Promise<Row[]> {
  if (redisMissing) return [{ name: 'several processes', value: 'skipped', note: redisMissing }];
  const rows: Row[] = [];
  for (const processes of [1, 2, 3]) {
    const last = await runWith(processes);
    rows.push({
      name: `${processes} process${processes > 1 ? 'es' : ''}, one Redis`,
      value: `${Math.round(last.perSecond)} msg/s`,
      note: `${count} /start webhooks over ${chats} chats, ${cpus().length} cores; Redis CPU ${Math.round(last.redisCpuUs)} µs/message`,
    });
  }
  // Apart, with MONITOR on (it slows Redis down): what each message costs in round trips.
  const measured = await runWith(3, true);
  rows.push({
    name: 'Redis round trips per message',
    value: measured.roundTrips.toFixed(1),
    note: measured.top,
  });
  return rows;
}

if (import.meta.filename === resolve(process.argv[1] ?? '')) {
  for (const row of await benchScale())
    process.stdout.write(`${row.name}: ${row.value} (${row.note ?? ''})\n`);
}
