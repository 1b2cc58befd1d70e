/**
 * The Slots seam on Redis: a backend's concurrency and a user's turns counted once for every
 * process of a bot. Each key is three sorted sets: the holders (score: when their lease ends),
 * the line (score: order of arrival) and the waiters' leases. One Lua script takes a slot or
 * reports the caller's place, atomically; a released slot is announced on a channel, and waiters
 * also look again every `pollMs`, so a holder whose process died frees its slot when its lease
 * ends. Leases of live holders and waiters are renewed while they hold or wait.
 */
import { randomUUID } from 'node:crypto';
import { abortReason } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import { checkSlotRequest, type ReleaseSlot, type SlotRequest, type Slots } from '../../slots.ts';
import type { RedisClient } from './connection.ts';
import { LuaScript } from './script.ts';

/**
 * KEYS: holders, line, waiter leases, arrival counter. ARGV: token, capacity, maxWaiting (-1: no
 * bound), leaseMs. Replies -1 when the slot is taken, -2 when the line is full, else the callers
 * ahead. A caller not in the line (new, or dropped after its lease ran out) joins at its end.
 */
const acquireScript = new LuaScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local token, capacity, maxWaiting, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, member in ipairs(gone) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZREM', KEYS[2], member)
end
local free = capacity - redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], token)
if not rank then
  if redis.call('ZSCORE', KEYS[1], token) then return -1 end
  local waiting = redis.call('ZCARD', KEYS[2])
  if waiting >= free and maxWaiting >= 0 and waiting - math.max(free, 0) >= maxWaiting then return -2 end
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), token)
  rank = waiting
end
local keep = lease * 4 + 60000
if rank < free then
  redis.call('ZREM', KEYS[2], token)
  redis.call('ZREM', KEYS[3], token)
  redis.call('ZADD', KEYS[1], now + lease, token)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
  return -1
end
redis.call('ZADD', KEYS[3], now + lease, token)
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
return rank - math.max(free, 0)`);

/**
 * KEYS: holders, line, waiter leases. ARGV: token, channel, key. Leaves the line or gives the slot
 * back, and tells the waiters (in the same round trip).
 */
const releaseScript = new LuaScript(`
local n = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`);

/** KEYS: holders. ARGV: leaseMs, then the tokens held. Renews their leases if still held. */
const renewScript = new LuaScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 0`);

/** Options of {@link RedisSlots}. */
export interface RedisSlotsOptions {
  /** Put before every key in Redis. Default `chorus:`. */
  readonly prefix?: string;
  /** How long a slot or a place in line outlives its process's last renewal. Default 15 s. */
  readonly leaseMs?: number;
  /** How often waiters look again without being woken (a dead holder's lease may have ended). Default 1 s. */
  readonly pollMs?: number;
  readonly log?: Logger;
}

interface Waiting {
  readonly key: string;
  /** Looks again now. */
  readonly poll: () => void;
}

interface Held {
  readonly key: string;
  readonly token: string;
}

/**
 * Slots in Redis, shared by every process that uses the same prefix.
 *
 * @example
 * const slots = await RedisSlots.open(await connectRedis(process.env.REDIS_URL!));
 * const release = await slots.acquire({ key: 'backend:flux', capacity: 2 });
 * try { await draw(); } finally { release?.(); }
 */
export class RedisSlots implements Slots {
  readonly #redis: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #log: Logger | undefined;
  readonly #waiting = new Set<Waiting>();
  readonly #held = new Set<Held>();
  readonly #renewal: NodeJS.Timeout;
  #closed = false;

  private constructor(redis: RedisClient, subscriber: RedisClient, options: RedisSlotsOptions) {
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#prefix = `${options.prefix ?? 'chorus:'}slots:`;
    this.#channel = `${this.#prefix}released`;
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#pollMs = options.pollMs ?? 1_000;
    this.#log = options.log;
    this.#renewal = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#leaseMs / 3)));
    this.#renewal.unref();
    subscriber.on('message', (channel: string, key: string) => {
      if (channel !== this.#channel) return;
      for (const waiting of this.#waiting) if (waiting.key === key) waiting.poll();
    });
  }

  /** Opens slots on `redis`, with a second connection of its own that listens for released slots. */
  static async open(redis: RedisClient, options: RedisSlotsOptions = {}): Promise<RedisSlots> {
    const subscriber = redis.duplicate();
    subscriber.on('error', () => {});
    const slots = new RedisSlots(redis, subscriber, options);
    await subscriber.subscribe(slots.#channel);
    return slots;
  }

  acquire(request: SlotRequest): Promise<ReleaseSlot | undefined> {
    checkSlotRequest(request);
    const { signal, onQueued } = request;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#closed) return Promise.reject(new Error('slots closed'));
    const key = this.#prefix + request.key;
    const keys = [`${key}:held`, `${key}:line`, `${key}:leases`, `${key}:arrivals`];
    const token = randomUUID();
    const args = [token, request.capacity, request.maxWaiting ?? -1, this.#leaseMs];
    return new Promise((resolve, reject) => {
      let lastAhead = -1;
      let timer: NodeJS.Timeout | undefined;
      let busy = false;
      let again = false;
      let done = false;
      const finish = () => {
        done = true;
        clearTimeout(timer);
        this.#waiting.delete(waiting);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (done) return;
        finish();
        // Leaving changes the places behind: they hear it as a release.
        void this.#release(key, token).finally(() => reject(abortReason(signal!)));
      };
      const poll = () => {
        if (done) return;
        if (busy) {
          again = true;
          return;
        }
        busy = true;
        clearTimeout(timer);
        acquireScript.run(this.#redis, keys, args).then(
          (reply) => {
            busy = false;
            if (done) return;
            const ahead = Number(reply);
            if (ahead === -1) {
              finish();
              resolve(this.#hold(key, token));
            } else if (ahead === -2) {
              finish();
              resolve(undefined);
            } else {
              if (ahead !== lastAhead) {
                lastAhead = ahead;
                onQueued?.(ahead);
              }
              if (again) {
                again = false;
                poll();
              } else timer = setTimeout(poll, this.#pollMs);
            }
          },
          (error: unknown) => {
            busy = false;
            if (done) return;
            finish();
            void this.#release(key, token);
            reject(error);
          },
        );
      };
      const waiting: Waiting = { key, poll };
      this.#waiting.add(waiting);
      signal?.addEventListener('abort', onAbort, { once: true });
      poll();
    });
  }

  /** Stops renewing and listening; slots still held end with their leases. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewal);
    this.#waiting.clear();
    await this.#subscriber.quit().catch(() => {});
  }

  #hold(key: string, token: string): ReleaseSlot {
    const held: Held = { key, token };
    this.#held.add(held);
    return () => {
      if (!this.#held.delete(held)) return;
      void this.#release(key, token);
    };
  }

  async #release(key: string, token: string): Promise<void> {
    try {
      await releaseScript.run(
        this.#redis,
        [`${key}:held`, `${key}:line`, `${key}:leases`],
        [token, this.#channel, key],
      );
    } catch (error) {
      // The lease ends the slot anyway.
      this.#log?.warn('slot not released', { key, error });
    }
  }

  async #renew(): Promise<void> {
    const byKey = new Map<string, string[]>();
    for (const { key, token } of this.#held) byKey.set(key, [...(byKey.get(key) ?? []), token]);
    for (const [key, tokens] of byKey) {
      try {
        await renewScript.run(this.#redis, [`${key}:held`], [this.#leaseMs, ...tokens]);
      } catch (error) {
        this.#log?.warn('slot lease not renewed', { key, error });
      }
    }
  }
}
