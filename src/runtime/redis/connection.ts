/**
 * The connection to Redis that `state: { redis: { url } }` names, shared by the Redis store,
 * budget, jobs and work queue of one process. ioredis reconnects on its own; at start the bot
 * waits for the first connection and says plainly when Redis cannot be reached (with the URL's
 * password left out).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ChorusError } from '../../errors.ts';

/** A Redis client, as ioredis makes it. */
export type RedisClient = Redis;

/** Options of {@link connectRedis}. */
export interface RedisConnectOptions {
  /** How long the first connection may take. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Extra ioredis options (tests use them; the config does not). */
  readonly redis?: RedisOptions;
}

/** The URL without its user and password, for messages. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'an unreadable URL';
  }
}

/**
 * Connects to the Redis at `url` (`redis://[:password@]host:port[/db]`, `rediss://` for TLS, or
 * `redis+unix:///path/to/socket`), waits until it answers a PING, and gives the client.
 * Fails with a `ChorusError` of code `REDIS_UNREACHABLE` when it does not answer in time.
 *
 * @example
 * const redis = await connectRedis('redis://127.0.0.1:6379');
 * await redis.quit();
 */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000;
  const common: RedisOptions = {
    lazyConnect: true,
    // Commands wait through a reconnect instead of failing after a fixed count of retries.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    connectionName: 'chorus',
    ...options.redis,
  };
  const socket = url.startsWith('redis+unix://') ? new URL(url).pathname : undefined;
  const client = socket ? new Redis({ ...common, path: socket }) : new Redis(url, common);
  // ioredis reports reconnects as 'error' events; without a listener Node would throw them.
  client.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    const reason = error instanceof Error ? error.message.replace(url, describeRedisUrl(url)) : String(error);
    throw new ChorusError(
      'REDIS_UNREACHABLE',
      `state.redis.url: cannot reach ${describeRedisUrl(url)}: ${reason}`,
    );
  } finally {
    clearTimeout(timer);
  }
  return client;
}
