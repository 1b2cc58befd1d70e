/**
 * Which Discord shards this process runs, agreed with the other processes of the bot through
 * leases on the Store seam: a shard is run by the process holding its lease, which renews it while
 * it runs the shard and releases it when it stops; a lease left by a process that died runs out
 * after `leaseMs` and another process takes the shard. With `shards: auto`, processes also keep a
 * membership entry, and each runs its share (`ceil(count / processes)`): a process that holds more
 * gives the surplus back, so a newcomer gets shards, and survivors take over a dead one's.
 * Works on any Store whose locks hold across processes (the SQLite file on one machine, Redis).
 */
import { randomUUID } from 'node:crypto';
import { type Clock, sleep } from '../../src/clock.ts';
import type { Logger } from '../../src/logger.ts';
import type { Store, StoreLock } from '../../src/store.ts';

/** Which shards a process runs: every one, its share of the free ones, or these. */
export type ShardChoice = 'all' | 'auto' | readonly number[];

/** Options of {@link ShardLeases}. */
export interface ShardLeasesOptions {
  /** Where the leases live; keys start with `prefix`. */
  readonly store: Store;
  /** Keys of this bot and shard count, e.g. `shards:<bot id>:<count>:`. */
  readonly prefix: string;
  readonly count: number;
  readonly choice: ShardChoice;
  readonly clock: Clock;
  readonly log: Logger;
  /** Starts running a shard; a rejection gives its lease back. */
  readonly open: (id: number) => Promise<void>;
  /** Stops running a shard. */
  readonly close: (id: number) => Promise<void>;
  /** How long a lease lasts unrenewed: a dead process's shards are taken over after this. Default 10 s. */
  readonly leaseMs?: number;
  /** How often leases are renewed and free shards looked for. Default `leaseMs / 5`. */
  readonly renewMs?: number;
  /**
   * How long a shard that failed to open is left alone before this process tries it again (each
   * IDENTIFY counts against Discord's daily session starts). Default 60 s.
   */
  readonly retryMs?: number;
}

interface HeldShard {
  readonly lock: StoreLock;
  /** Settles when the shard has opened (or failed to). */
  readonly opened: Promise<void>;
}

/** The leases of the shards this process runs. */
export class ShardLeases {
  readonly #options: ShardLeasesOptions;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #member = randomUUID();
  readonly #held = new Map<number, HeldShard>();
  readonly #waitingFor = new Set<number>();
  /** Shards that failed to open, and when this process may try each again. */
  readonly #retryAt = new Map<number, number>();
  #startErrors: unknown[] | undefined;
  /** The opens of the first round, which `start` waits for. */
  readonly #firstOpens: Promise<void>[] = [];
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #ticking: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: ShardLeasesOptions) {
    const { count, choice } = options;
    if (!Number.isInteger(count) || count < 1)
      throw new TypeError(`shard count must be at least 1, got ${count}`);
    if (Array.isArray(choice) && choice.some((id) => id >= count))
      throw new TypeError(`shard ids must be below the shard count (${count}), got ${choice.join(', ')}`);
    this.#options = options;
    this.#leaseMs = options.leaseMs ?? 10_000;
    this.#renewMs = options.renewMs ?? Math.floor(this.#leaseMs / 5);
    if (!(this.#renewMs > 0 && this.#renewMs < this.#leaseMs))
      throw new TypeError('renewMs must be positive and shorter than leaseMs');
  }

  /** The shards this process holds, in order. */
  get held(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  /**
   * Takes what leases it can and waits for those shards to open; then keeps renewing and looking.
   * Rejects (holding nothing) when one of them fails to open.
   */
  async start(): Promise<void> {
    this.#startErrors = [];
    await this.#tick();
    await Promise.all(this.#firstOpens);
    const [error] = this.#startErrors;
    this.#startErrors = undefined;
    // A shard that cannot open at start (a bad token, an invalid shard) fails the start, loudly.
    if (error !== undefined) {
      await this.stop();
      throw error;
    }
  }

  /** Stops renewing, closes every shard held and gives the leases back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.all(this.held.map((id) => this.#giveBack(id)));
    await this.#options.store.delete(this.#memberKey).catch(() => {});
  }

  /**
   * Closes a shard and gives its lease back (Discord closed it for good): another process may take
   * it at once, this one after `retryMs`.
   */
  async giveBack(id: number): Promise<void> {
    this.#retryAt.set(id, this.#options.clock.now() + (this.#options.retryMs ?? 60_000));
    await this.#giveBack(id);
  }

  get #memberKey(): string {
    return `${this.#options.prefix}member:${this.#member}`;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#ticking = this.#tick().catch((error: unknown) =>
        this.#options.log.warn('renewing discord shard leases failed', { error }),
      );
    }, this.#renewMs);
  }

  /** One round: renew, give back a surplus, take free shards. Rounds never overlap. */
  async #tick(): Promise<void> {
    const { store, prefix, count, choice, log } = this.#options;
    try {
      for (const [id, shard] of [...this.#held]) {
        if (await shard.lock.extend(this.#leaseMs)) continue;
        // Held too long unrenewed (a stalled process): another may run it now, so this one must not.
        log.warn('lost the lease of a discord shard; closing it', { shard: id, shards: count });
        this.#held.delete(id);
        await this.#close(id);
      }
      let wanted: readonly number[];
      let share = count;
      if (choice === 'auto') {
        await store.set(this.#memberKey, this.#options.clock.now(), { ttlMs: this.#leaseMs });
        const members = Math.max(1, (await store.list(`${prefix}member:`)).length);
        share = Math.ceil(count / members);
        for (const id of this.held.reverse()) {
          if (this.#held.size <= share) break;
          log.info('handing a discord shard to another process', { shard: id, shards: count });
          await this.#giveBack(id);
        }
        wanted = Array.from({ length: count }, (_, id) => id);
      } else {
        wanted = choice === 'all' ? Array.from({ length: count }, (_, id) => id) : choice;
      }
      for (const id of wanted) {
        if (this.#stopped || this.#held.size >= share) break;
        if (this.#held.has(id) || (this.#retryAt.get(id) ?? 0) > this.#options.clock.now()) continue;
        const lock = await store.lock(`${prefix}shard:${id}`, this.#leaseMs);
        if (!lock) {
          if (choice !== 'auto' && !this.#waitingFor.has(id)) {
            this.#waitingFor.add(id);
            log.warn('another process holds this discord shard; waiting for it', {
              shard: id,
              shards: count,
            });
          }
          continue;
        }
        this.#waitingFor.delete(id);
        const opened = this.#open(id, lock);
        if (this.#startErrors) this.#firstOpens.push(opened);
        this.#held.set(id, { lock, opened });
      }
    } finally {
      this.#schedule();
    }
  }

  /** Opens a shard in the background: renewals go on while it identifies. */
  async #open(id: number, lock: StoreLock): Promise<void> {
    try {
      await this.#options.open(id);
      this.#retryAt.delete(id);
    } catch (error) {
      this.#options.log.error('a discord shard failed to start; giving its lease back', {
        shard: id,
        shards: this.#options.count,
        error,
      });
      this.#startErrors?.push(error);
      this.#retryAt.set(id, this.#options.clock.now() + (this.#options.retryMs ?? 60_000));
      if (this.#held.get(id)?.lock === lock) this.#held.delete(id);
      await lock.release().catch(() => {});
    }
  }

  async #close(id: number): Promise<void> {
    await this.#options
      .close(id)
      .catch((error: unknown) =>
        this.#options.log.warn('closing a discord shard failed', { shard: id, error }),
      );
  }

  /** Closes a shard, then releases its lease (in that order: never two processes on one shard). */
  async #giveBack(id: number): Promise<void> {
    const shard = this.#held.get(id);
    if (!shard) return;
    this.#held.delete(id);
    await shard.opened;
    await this.#close(id);
    await shard.lock.release().catch(() => {});
  }
}

/**
 * An identify throttler for @discordjs/ws shared by every process of the bot: Discord lets
 * `maxConcurrency` shards identify per 5 s, one per bucket `shardId % maxConcurrency`. Each
 * IDENTIFY takes the bucket's lock in the store for 5 s and leaves it to run out.
 */
export function storeIdentifyThrottler(options: {
  readonly store: Store;
  readonly prefix: string;
  readonly maxConcurrency: number;
  readonly clock: Clock;
  readonly pollMs?: number;
}): { waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> } {
  const { store, prefix, maxConcurrency, clock, pollMs = 250 } = options;
  return {
    async waitForIdentify(shardId, signal) {
      const key = `${prefix}identify:${shardId % Math.max(1, maxConcurrency)}`;
      while (!(await store.lock(key, identifyWindowMs))) await sleep(clock, pollMs, signal);
    },
  };
}

/** Discord's window for `max_concurrency` identifies. */
export const identifyWindowMs = 5_000;

/** Parses `shards:` as a config or an environment variable gives it: `auto`, `all`, `3`, `0,2`, `[0, 2]`. */
export function parseShardChoice(value: unknown): unknown {
  if (typeof value === 'number') return [value];
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (text === 'auto' || text === 'all') return text;
  const list = text.replace(/^\[|\]$/g, '').trim();
  if (!/^\d+(\s*,\s*\d+)*$/.test(list)) return value;
  return list.split(',').map((id) => Number(id.trim()));
}

/** The bot's user id, which the first part of its token encodes: the leases are this bot's alone. */
export function botIdOfToken(token: string): string {
  const id = Buffer.from(token.split('.')[0] ?? '', 'base64').toString('utf8');
  return /^\d{17,20}$/.test(id) ? id : 'unknown';
}
