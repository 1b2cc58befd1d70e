/**
 * A real Redis for tests: Debian's `redis-server`, started on a unix socket in a temporary folder
 * (nothing to collide with on the machine), with no persistence, and stopped when done. Tests
 * that need it never skip: without `redis-server` they fail saying how to install it (`.ci/run`
 * does).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { connectRedis, type RedisClient } from '../../../src/runtime/redis/connection.ts';

const binary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path));

/** Why Redis cannot run here (the benchmark says so and goes on), or `undefined` when it can. */
export const redisMissing: string | undefined = binary
  ? undefined
  : 'redis-server is not installed (apt-get install -y redis-server; .ci/run does it)';

/** A running redis-server of a test's own. */
export interface TestRedis {
  /** `redis+unix:///…/redis.sock`, as `state.redis.url` takes it. */
  readonly url: string;
  readonly socket: string;
  stop(): Promise<void>;
}

/** Starts a redis-server on a unix socket in a new temporary folder; resolves once it answers. */
export async function startRedis(): Promise<TestRedis> {
  if (!binary) throw new Error(redisMissing);
  const dir = mkdtempSync(join(tmpdir(), 'chorus-redis-'));
  const socket = join(dir, 'redis.sock');
  const child: ChildProcess = spawn(
    binary,
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!/ready to accept connections/i.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `redis+unix://${socket}`,
    socket,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs one redis-cli command against `redis` (for counts the tests read, like INFO). */
export function redisCli(redis: TestRedis, ...args: string[]): string {
  return spawnSync('redis-cli', ['-s', redis.socket, ...args], { encoding: 'utf8' }).stdout;
}

/**
 * One redis-server for a test file, started before its tests and stopped after them, with every
 * connection `connect()` made closed then.
 */
export function useTestRedis(): { readonly url: string; connect(): Promise<RedisClient> } {
  let redis: TestRedis | undefined;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });
  return {
    get url() {
      if (!redis) throw new Error('the test redis-server has not started');
      return redis.url;
    },
    async connect() {
      const client = await connectRedis(this.url);
      clients.push(client);
      return client;
    },
  };
}
