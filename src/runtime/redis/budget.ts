/**
 * The Budget seam on Redis: the send budgets (per chat, per group, global) shared by every process
 * of one bot, so three processes together stay within Telegram's 30 messages a second. A take is
 * one Lua script, atomic over all its keys: each key is a sorted set of the times of the slots
 * taken in its window, as `MemoryBudget` keeps them in an array.
 */
import { randomUUID } from 'node:crypto';
import type { Budget, BudgetRule } from '../../budget.ts';
import type { Clock } from '../../clock.ts';
import type { RedisClient } from './connection.ts';
import { LuaScript } from './script.ts';

/**
 * ARGV: now (empty: Redis's own clock, in ms), a member name unique to this take, then count,
 * period and keepFree for each key. One clock for every process: a take stamped a little earlier
 * by a slower clock could otherwise slip into a window another process has already counted.
 */
const takeScript = new LuaScript(`
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[i * 3])
  local period = tonumber(ARGV[i * 3 + 1])
  local allowed = count - 1 - tonumber(ARGV[i * 3 + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local taken = redis.call('ZCARD', key)
  if taken > allowed then
    local w = period
    if allowed >= 0 then
      local stamp = redis.call('ZRANGE', key, taken - 1 - allowed, taken - 1 - allowed, 'WITHSCORES')
      w = tonumber(stamp[2]) + period - now
    end
    if w > wait then wait = w end
  end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[i * 3 + 1]) + 1000)
end
return '0'`);

/** Options of {@link RedisBudget}. */
export interface RedisBudgetOptions {
  /** Reads time for the windows. Default: Redis's own clock, the same for every process. */
  readonly clock?: Clock;
  /** Put before every budget key in Redis. Default `chorus:`. */
  readonly prefix?: string;
}

/**
 * Sliding-window send budgets in Redis, shared by every process that uses the same prefix.
 *
 * @example
 * const budget = new RedisBudget(await connectRedis(process.env.REDIS_URL!));
 * const waitMs = await budget.take([{ key: 'telegram:global', limit: { count: 30, periodMs: 1000 } }]);
 */
export class RedisBudget implements Budget {
  readonly #redis: RedisClient;
  readonly #clock: Clock | undefined;
  readonly #prefix: string;
  /** Makes each take's member unique: two takes in one millisecond are two slots. */
  readonly #tag = randomUUID().slice(0, 8);
  #seq = 0;

  constructor(redis: RedisClient, options: RedisBudgetOptions = {}) {
    this.#redis = redis;
    this.#clock = options.clock;
    this.#prefix = `${options.prefix ?? 'chorus:'}budget:`;
  }

  async take(rules: readonly BudgetRule[]): Promise<number> {
    if (rules.length === 0) return 0;
    const keys = rules.map((rule) => this.#prefix + rule.key);
    const args: (string | number)[] = [this.#clock?.now() ?? '', `${this.#tag}:${++this.#seq}`];
    for (const rule of rules) args.push(rule.limit.count, rule.limit.periodMs, rule.keepFree ?? 0);
    return Number(await takeScript.run(this.#redis, keys, args));
  }
}
