/**
 * The WorkQueue seam on Redis Streams. Incoming messages go to one of `partitions` streams by
 * their chat, so a chat's messages stay in one stream, in order. Each stream is read by exactly
 * one process at a time, the holder of its lease; the processes alive share the streams out
 * evenly. A message leaves its stream (XACK and XDEL in one MULTI) once what it set off has
 * ended; until then it stays in the consumer group's pending list, and when its process dies
 * the next holder of the stream claims it (XAUTOCLAIM) and runs it again, in order, before
 * anything newer. A message seen before (a platform's redelivery) is not queued twice.
 *
 * Why Redis Streams and not BullMQ: per-chat order needs one reader per chat at a time, which a
 * lease per stream gives directly; BullMQ's groups (per-key order) are a paid Pro feature, and
 * its job model (a hash per job, several scripts per job) costs more round trips per message.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../../logger.ts';
import type { IncomingMessage } from '../../message.ts';
import type { WorkHandler, WorkQueue } from '../../work.ts';
import type { RedisClient } from './connection.ts';
import { LuaScript } from './script.ts';

/** Options of {@link RedisWorkQueue}. */
export interface RedisWorkQueueOptions {
  /** Put before every key. Default `chorus:`. */
  readonly prefix?: string;
  /** How many streams the chats are spread over: the most processes that can share the work. Default 16. */
  readonly partitions?: number;
  /** How long a stream stays with a process that stopped renewing its lease. Default 10 s: a process stalled by a busy machine keeps its streams, and runs nothing twice. */
  readonly leaseMs?: number;
  /** Most messages one process has started and not yet seen end. Default 256. */
  readonly maxInFlight?: number;
  /**
   * How long a message id is remembered, so a redelivery is dropped. Default 1 h: a platform
   * redelivers what it could not hand over within seconds or minutes, and each id kept costs
   * about 100 bytes of Redis memory (at 1,000 messages a second, an hour is 3.6 million ids).
   */
  readonly seenMs?: number;
  readonly log?: Logger;
}

const group = 'chorus';

/** Queues a message unless its key was seen: SET NX, then XADD, atomically. */
const pushScript = new LuaScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
  return 1
end
return 0`);

/** Keeps a lease this process holds; 0 when it is someone else's now. */
const renewScript = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`);

const releaseScript = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`);

/** FNV-1a: the same chat lands in the same stream in every process. */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % partitions;
}

const chatKey = (message: IncomingMessage) =>
  `${message.chat.adapter}:${message.chat.id}${message.chat.threadId === undefined ? '' : `:${message.chat.threadId}`}`;

type Entry = [id: string, fields: string[]];

interface Partition {
  readonly index: number;
  /** Messages of this stream started and not yet ended. */
  inFlight: number;
  /** Given up: read no more from it; its lease goes once `inFlight` is 0 and no read of it is pending. */
  releasing: boolean;
  /** The read round during which it was given up: a read begun before may still bring its messages. */
  releasingSince: number;
}

/**
 * Incoming messages on Redis Streams, shared by every process of one bot.
 *
 * @example
 * const queue = new RedisWorkQueue(await connectRedis(process.env.REDIS_URL!));
 */
export class RedisWorkQueue implements WorkQueue {
  readonly #redis: RedisClient;
  /** Blocking reads wait on a connection of their own. */
  #reader: RedisClient | undefined;
  readonly #prefix: string;
  readonly #partitions: number;
  readonly #leaseMs: number;
  readonly #maxInFlight: number;
  readonly #seenMs: number;
  readonly #log: Logger | undefined;
  /** This process's consumer name: host, pid and a random part, unique across restarts. */
  readonly consumer = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #owned = new Map<number, Partition>();
  /** Per chat, the last message routed or waiting to be: the next one goes after it. */
  readonly #chains = new Map<string, Promise<void>>();
  #handler: WorkHandler | undefined;
  #inFlight = 0;
  /** Stream and entry ids of the messages started and not yet ended, so a claim never starts one twice. */
  readonly #started = new Set<string>();
  /** Read rounds completed. */
  #readRounds = 0;
  #stopping = false;
  #ticker: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #drained: (() => void) | undefined;
  #stopped: Promise<void> | undefined;

  constructor(redis: RedisClient, options: RedisWorkQueueOptions = {}) {
    this.#redis = redis;
    this.#prefix = `${options.prefix ?? 'chorus:'}work:`;
    this.#partitions = options.partitions ?? 16;
    this.#leaseMs = options.leaseMs ?? 10_000;
    this.#maxInFlight = options.maxInFlight ?? 256;
    this.#seenMs = options.seenMs ?? 60 * 60 * 1000;
    this.#log = options.log;
  }

  async push(message: IncomingMessage): Promise<void> {
    const chat = chatKey(message);
    const stream = this.#stream(partitionOf(chat, this.#partitions));
    const queued = await pushScript.run(
      this.#redis,
      [`${this.#prefix}seen:${chat}:${message.id}`, stream],
      [this.#seenMs, JSON.stringify(message)],
    );
    if (queued !== 1) this.#log?.debug('dropped a message queued before', { chat, id: message.id });
  }

  async start(handler: WorkHandler): Promise<void> {
    this.#handler = handler;
    for (let index = 0; index < this.#partitions; index++) {
      await this.#redis
        .xgroup('CREATE', this.#stream(index), group, '0', 'MKSTREAM')
        .catch((error: unknown) => {
          if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
        });
    }
    this.#reader = this.#redis.duplicate();
    this.#reader.on('error', () => {});
    await this.#tick();
    this.#ticker = setInterval(
      () => {
        this.#ticking ??= this.#tick()
          .catch((error: unknown) => this.#log?.warn('work queue: lease round failed', { error }))
          .finally(() => {
            this.#ticking = undefined;
          });
      },
      Math.max(50, Math.floor(this.#leaseMs / 3)),
    );
    this.#reading = this.#read();
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  /** The streams this process reads now (for tests and stats). */
  get partitions(): readonly number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b);
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#ticker);
    this.#wake?.();
    // A blocked read returns within its BLOCK time; the reader then ends.
    await this.#reading;
    await this.#ticking;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    for (const index of this.#owned.keys()) {
      await releaseScript.run(this.#redis, [this.#lease(index)], [this.consumer]);
    }
    this.#owned.clear();
    await this.#redis.zrem(`${this.#prefix}members`, this.consumer);
    this.#reader?.disconnect();
  }

  #stream(index: number): string {
    return `${this.#prefix}${index}`;
  }

  #lease(index: number): string {
    return `${this.#prefix}lease:${index}`;
  }

  /** One round: say this process is alive, keep its leases, and take or give up streams to share them evenly. */
  async #tick(): Promise<void> {
    if (this.#stopping) return;
    const now = Date.now();
    const members = `${this.#prefix}members`;
    const [, , count] = (await this.#redis
      .multi()
      .zadd(members, now + this.#leaseMs, this.consumer)
      .zremrangebyscore(members, '-inf', now)
      .zcard(members)
      .exec()) as [unknown, unknown, [Error | null, number]];
    const target = Math.ceil(this.#partitions / Math.max(1, count[1]));
    for (const partition of [...this.#owned.values()]) {
      const kept = await renewScript.run(
        this.#redis,
        [this.#lease(partition.index)],
        [this.consumer, this.#leaseMs],
      );
      if (kept !== 1) {
        this.#log?.warn('work queue: lost a stream to another process', { stream: partition.index });
        this.#owned.delete(partition.index);
      }
    }
    const active = [...this.#owned.values()].filter((p) => !p.releasing);
    for (const partition of active.slice(target)) {
      partition.releasing = true;
      partition.releasingSince = this.#readRounds;
    }
    for (const partition of this.#owned.values()) {
      if (partition.releasing && partition.inFlight === 0 && this.#readRounds > partition.releasingSince) {
        this.#owned.delete(partition.index);
        await releaseScript.run(this.#redis, [this.#lease(partition.index)], [this.consumer]);
      }
    }
    // A message read for a stream just as it changed hands waits in its reader's pending list:
    // the holder takes it once it has been idle a lease's time (its own running ones it skips).
    for (const partition of this.#owned.values()) {
      if (!partition.releasing) await this.#claim(partition, this.#leaseMs);
    }
    let wanted = target - active.length;
    if (wanted <= 0) return;
    // Start at a different stream in each process, so they do not all race for the same ones.
    const offset = partitionOf(this.consumer, this.#partitions);
    for (let step = 0; step < this.#partitions && wanted > 0 && !this.#stopping; step++) {
      const index = (offset + step) % this.#partitions;
      if (this.#owned.has(index)) continue;
      const taken = await this.#redis.set(this.#lease(index), this.consumer, 'PX', this.#leaseMs, 'NX');
      if (taken !== 'OK') continue;
      wanted--;
      const partition: Partition = { index, inFlight: 0, releasing: false, releasingSince: 0 };
      // What the stream's last holder left unfinished goes first, in order.
      await this.#claim(partition, 0);
      this.#owned.set(index, partition);
      this.#wake?.();
    }
  }

  /** Takes over the stream's messages pending at least `minIdleMs` (with any consumer) and starts them, in order. */
  async #claim(partition: Partition, minIdleMs: number): Promise<void> {
    let cursor = '0-0';
    do {
      const [next, entries] = (await this.#redis.xautoclaim(
        this.#stream(partition.index),
        group,
        this.consumer,
        minIdleMs,
        cursor,
        'COUNT',
        100,
      )) as [string, Entry[], string[]];
      const fresh = entries.filter(([id]) => !this.#started.has(`${partition.index}/${id}`));
      if (fresh.length > 0)
        this.#log?.info('work queue: took over unfinished messages', {
          stream: partition.index,
          count: fresh.length,
        });
      for (const entry of fresh) this.#dispatch(partition, entry);
      cursor = next;
    } while (cursor !== '0-0');
  }

  /** Reads new messages from the streams this process holds, until it stops. */
  async #read(): Promise<void> {
    const reader = this.#reader!;
    while (!this.#stopping) {
      const streams = [...this.#owned.values()].filter((p) => !p.releasing).map((p) => p.index);
      if (streams.length === 0 || this.#inFlight >= this.#maxInFlight) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
        this.#readRounds++;
        continue;
      }
      let reply: [string, Entry[]][] | null;
      try {
        reply = (await reader.xreadgroup(
          'GROUP',
          group,
          this.consumer,
          'COUNT',
          Math.min(100, this.#maxInFlight - this.#inFlight),
          'BLOCK',
          Math.max(50, Math.floor(this.#leaseMs / 6)),
          'STREAMS',
          ...streams.map((index) => this.#stream(index)),
          ...streams.map(() => '>'),
        )) as [string, Entry[]][] | null;
      } catch (error) {
        if (this.#stopping) return;
        this.#log?.warn('work queue: read failed', { error });
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const [stream, entries] of reply ?? []) {
        const partition = this.#owned.get(Number(stream.slice(this.#prefix.length)));
        // Read just as the stream was lost: the new holder claims these from our pending list.
        if (!partition) continue;
        for (const entry of entries) this.#dispatch(partition, entry);
      }
      this.#readRounds++;
    }
  }

  /** Puts a message behind the last one of its chat; acknowledges it once its work has ended. */
  #dispatch(partition: Partition, [id, fields]: Entry): void {
    const text = fields[fields.indexOf('m') + 1];
    let message: IncomingMessage;
    try {
      message = JSON.parse(text ?? '') as IncomingMessage;
    } catch {
      void this.#ack(partition.index, id);
      return;
    }
    const handler = this.#handler!;
    const chat = chatKey(message);
    const started = `${partition.index}/${id}`;
    if (this.#started.has(started)) return;
    this.#started.add(started);
    partition.inFlight++;
    this.#inFlight++;
    const routed = (this.#chains.get(chat) ?? Promise.resolve()).then(() =>
      this.#stopping ? false : handler.route(message),
    );
    const chain = routed.then(
      () => {},
      () => {},
    );
    this.#chains.set(chat, chain);
    void routed
      .then(async (taken) => {
        if (!taken) return;
        await handler.settled(message);
        await this.#ack(partition.index, id);
      })
      .catch((error: unknown) => this.#log?.error('work queue: a message failed', { error }))
      .finally(() => {
        if (this.#chains.get(chat) === chain) this.#chains.delete(chat);
        this.#started.delete(started);
        partition.inFlight--;
        if (--this.#inFlight === 0) this.#drained?.();
        if (this.#inFlight < this.#maxInFlight) this.#wake?.();
      });
  }

  async #ack(index: number, id: string): Promise<void> {
    const stream = this.#stream(index);
    await this.#redis.multi().xack(stream, group, id).xdel(stream, id).exec();
  }
}
