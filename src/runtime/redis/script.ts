/**
 * A Lua script run on Redis by its SHA1 (EVALSHA), sent in full only the first time a server
 * has not seen it: one round trip per call, and the text crosses the network once.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.ts';

/** A Lua script for Redis, run atomically with `run`. */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script with `keys` (KEYS) and `args` (ARGV); resolves with its reply. */
  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
