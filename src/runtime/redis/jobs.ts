/**
 * The Jobs seam on Redis: the running jobs of every process of one bot, as plain records in one
 * hash, so `/cancel` sent to any process reaches a job wherever it runs. A cancel marks each
 * matching job once (SADD, atomic), then tells the process that runs it over pub/sub; that
 * process aborts the job and answers, and the cancel resolves once every answer is in (or after
 * `ackTimeoutMs`, for a process that died). A process keeps a heartbeat key while it lives; the
 * jobs of one whose heartbeat ran out are dropped from the records.
 */
import { randomUUID } from 'node:crypto';
import { CancelledError, ChorusError } from '../../errors.ts';
import { type JobFilter, type JobRecord, type Jobs, matchesJob } from '../../jobs.ts';
import type { Json } from '../../store.ts';
import type { RedisClient } from './connection.ts';

/** Options of {@link openRedisJobs}. */
export interface RedisJobsOptions {
  /** Put before every key and channel in Redis. Default `chorus:`. */
  readonly prefix?: string;
  /** How long a cancel waits for the process that runs a job to confirm. Default 2 s. */
  readonly ackTimeoutMs?: number;
  /** How long a process counts as alive after its last heartbeat. Default 10 s (beats every third of it). */
  readonly heartbeatMs?: number;
  /** This process's name in the records (the work queue's consumer name). Default: a random id. */
  readonly owner?: string;
}

/** A job as the hash keeps it. */
interface StoredJob {
  readonly job: JobRecord;
  readonly owner: string;
  readonly seq: number;
}

/** A cancel on its way to the process that runs the job. */
interface CancelNote {
  readonly field: string;
  readonly reason: Json;
  readonly replyTo: string;
  readonly request: string;
}

/** A reason as it crosses processes: errors by name and message, plain values as they are. */
function encodeReason(reason: unknown): Json {
  if (reason instanceof Error)
    return {
      error: { name: reason.name, message: reason.message, code: (reason as ChorusError).code ?? null },
    };
  try {
    const text = JSON.stringify(reason);
    return text === undefined ? null : { value: JSON.parse(text) as Json };
  } catch {
    return { value: String(reason) };
  }
}

function decodeReason(encoded: Json): unknown {
  if (encoded && typeof encoded === 'object' && !Array.isArray(encoded)) {
    const { error, value } = encoded as {
      error?: { name: string; message: string; code: string | null };
      value?: Json;
    };
    if (error) {
      if (error.name === 'CancelledError') return new CancelledError(error.message);
      const rebuilt = new ChorusError(error.code ?? 'REMOTE_CANCEL', error.message);
      rebuilt.name = error.name;
      return rebuilt;
    }
    if ('value' in encoded) return value;
  }
  return encoded;
}

/**
 * Running jobs in Redis, for every process of one bot. Made by {@link openRedisJobs}; `close`
 * ends its subscription and heartbeat (the client stays open).
 */
export class RedisJobs implements Jobs {
  readonly #redis: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #owner: string;
  readonly #hash: string;
  readonly #cancelled: string;
  readonly #alivePrefix: string;
  readonly #channelPrefix: string;
  readonly #ackTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #local = new Map<string, (reason: unknown) => void>();
  readonly #waiting = new Map<string, () => void>();
  #beat: NodeJS.Timeout | undefined;
  #added = 0;

  /** Use {@link openRedisJobs}. */
  constructor(redis: RedisClient, subscriber: RedisClient, options: RedisJobsOptions = {}) {
    const prefix = `${options.prefix ?? 'chorus:'}jobs:`;
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#hash = `${prefix}running`;
    this.#cancelled = `${prefix}cancelled`;
    this.#alivePrefix = `${prefix}alive:`;
    this.#channelPrefix = `${prefix}to:`;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 2_000;
    this.#heartbeatMs = options.heartbeatMs ?? 10_000;
    this.#owner = options.owner ?? randomUUID();
  }

  /** Subscribes to this process's channel and starts the heartbeat. */
  async open(): Promise<this> {
    this.#subscriber.on('message', (_channel: string, text: string) => this.#heard(text));
    await this.#subscriber.subscribe(this.#channelPrefix + this.#owner);
    await this.#alive();
    this.#beat = setInterval(() => void this.#alive().catch(() => {}), Math.floor(this.#heartbeatMs / 3));
    this.#beat.unref();
    return this;
  }

  async add(job: JobRecord, cancel: (reason: unknown) => void): Promise<void> {
    const field = `${this.#owner}/${job.jobId}`;
    this.#local.set(field, cancel);
    // Oldest first by the time it started (ties in one process by its own count): one round trip, no counter.
    const seq = Date.now() * 1000 + (this.#added++ % 1000);
    const stored: StoredJob = { job, owner: this.#owner, seq };
    await this.#redis.hset(this.#hash, field, JSON.stringify(stored));
  }

  async remove(jobId: string): Promise<void> {
    const field = `${this.#owner}/${jobId}`;
    this.#local.delete(field);
    await this.#redis.multi().hdel(this.#hash, field).srem(this.#cancelled, field).exec();
  }

  async list(filter: JobFilter = {}): Promise<readonly JobRecord[]> {
    return (await this.#matching(filter)).map(([, stored]) => stored.job);
  }

  async cancel(filter: JobFilter, reason: unknown): Promise<number> {
    let count = 0;
    const acks: Promise<void>[] = [];
    for (const [field, stored] of await this.#matching(filter)) {
      // Each job once, however many cancels race for it.
      if ((await this.#redis.sadd(this.#cancelled, field)) !== 1) continue;
      count++;
      if (stored.owner === this.#owner) {
        this.#local.get(field)?.(reason);
        continue;
      }
      const request = randomUUID();
      const note: CancelNote = { field, reason: encodeReason(reason), replyTo: this.#owner, request };
      const acked = new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.#waiting.get(request)?.(), this.#ackTimeoutMs);
        this.#waiting.set(request, () => {
          clearTimeout(timer);
          this.#waiting.delete(request);
          resolve();
        });
      });
      const heard = await this.#redis.publish(this.#channelPrefix + stored.owner, JSON.stringify(note));
      if (heard === 0) this.#waiting.get(request)?.();
      acks.push(acked);
    }
    await Promise.all(acks);
    return count;
  }

  /** Ends the heartbeat and the subscription; this process's jobs are forgotten by the others. */
  async close(): Promise<void> {
    clearInterval(this.#beat);
    await this.#subscriber.quit().catch(() => {});
    const fields = [...this.#local.keys()];
    if (fields.length > 0) await this.#redis.hdel(this.#hash, ...fields);
    await this.#redis.del(this.#alivePrefix + this.#owner);
  }

  /** The live jobs that match, oldest first; those of processes that died are dropped. */
  async #matching(filter: JobFilter): Promise<[string, StoredJob][]> {
    const all = Object.entries(await this.#redis.hgetall(this.#hash)).map(
      ([field, text]) => [field, JSON.parse(text) as StoredJob] as [string, StoredJob],
    );
    const owners = [...new Set(all.map(([, stored]) => stored.owner))];
    const alive = new Set<string>();
    if (owners.length > 0) {
      const beats = await this.#redis.mget(...owners.map((owner) => this.#alivePrefix + owner));
      for (const [index, beat] of beats.entries()) if (beat !== null) alive.add(owners[index]!);
    }
    const dead = all.filter(([, stored]) => !alive.has(stored.owner)).map(([field]) => field);
    if (dead.length > 0)
      await this.#redis
        .multi()
        .hdel(this.#hash, ...dead)
        .srem(this.#cancelled, ...dead)
        .exec();
    const cancelled = new Set(await this.#redis.smembers(this.#cancelled));
    return all
      .filter(
        ([field, stored]) =>
          alive.has(stored.owner) && !cancelled.has(field) && matchesJob(stored.job, filter),
      )
      .sort(([, a], [, b]) => a.seq - b.seq);
  }

  async #alive(): Promise<void> {
    await this.#redis.set(this.#alivePrefix + this.#owner, '1', 'PX', this.#heartbeatMs);
  }

  /** A message on this process's channel: a cancel to carry out, or the answer to one of ours. */
  #heard(text: string): void {
    let note: Partial<CancelNote> & { ack?: string };
    try {
      note = JSON.parse(text) as typeof note;
    } catch {
      return;
    }
    if (typeof note.ack === 'string') {
      this.#waiting.get(note.ack)?.();
      return;
    }
    if (typeof note.field !== 'string' || typeof note.replyTo !== 'string') return;
    this.#local.get(note.field)?.(decodeReason(note.reason ?? null));
    void this.#redis
      .publish(this.#channelPrefix + note.replyTo, JSON.stringify({ ack: note.request }))
      .catch(() => {});
  }
}

/**
 * Opens the Jobs seam on Redis: `redis` for commands, and a second connection of its own for the
 * cancels sent to this process.
 *
 * @example
 * const jobs = await openRedisJobs(await connectRedis(process.env.REDIS_URL!));
 */
export async function openRedisJobs(redis: RedisClient, options: RedisJobsOptions = {}): Promise<RedisJobs> {
  const subscriber = redis.duplicate();
  subscriber.on('error', () => {});
  return new RedisJobs(redis, subscriber, options).open();
}
