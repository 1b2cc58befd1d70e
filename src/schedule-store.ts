/**
 * Where scheduled jobs are kept: one `Store` key per job (`schedule:<plugin>:<id>`), one lock key
 * per job for the process that runs it, listing soonest first, and the short ids jobs and their
 * revisions get. Plain reads and writes: what to write when is the scheduler's (`schedule.ts`).
 */
import type { Clock, TimerHandle } from './clock.ts';
import type { Logger } from './logger.ts';
import type { ScheduledJob, ScheduleFilter } from './schedule-jobs.ts';
import type { Json, Store, StoreLock } from './store.ts';

const prefix = 'schedule:';
const lockPrefix = 'schedule-lock:';
const idAlphabet = 'abcdefghjkmnpqrstuvwxyz23456789';

/** The scheduled jobs in a {@link Store}, by key. */
export class ScheduleStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** The key of `plugin`'s job `id`. */
  keyOf(plugin: string, id: string): string {
    return `${prefix}${plugin}:${id}`;
  }

  /** The job under `key`, if any. */
  get(key: string): Promise<ScheduledJob | undefined> {
    return this.#store.get<Json>(key).then((value) => value as unknown as ScheduledJob);
  }

  /** Writes `job` under `key`, replacing what was there. */
  set(key: string, job: ScheduledJob): Promise<void> {
    return this.#store.set(key, job as unknown as Json);
  }

  /** Deletes the job under `key`. True when it existed. */
  delete(key: string): Promise<boolean> {
    return this.#store.delete(key);
  }

  /** Takes the lock of the job under `key` for `leaseMs`; `undefined` while another holds it. */
  lock(key: string, leaseMs: number): Promise<StoreLock | undefined> {
    return this.#store.lock(`${lockPrefix}${key.slice(prefix.length)}`, leaseMs);
  }

  /** The jobs of `plugin` (every plugin's when left out), soonest first. */
  async list(plugin?: string): Promise<ScheduledJob[]> {
    const entries = await this.#store.list<Json>(plugin === undefined ? prefix : `${prefix}${plugin}:`);
    return entries
      .map((entry) => entry.value as unknown as ScheduledJob)
      .sort((a, b) => a.runAt - b.runAt || a.id.localeCompare(b.id));
  }
}

/**
 * Runs `run` (a run of `job`) while holding its `lock`, which is extended every third of `leaseMs`
 * so no other process takes the job while it runs; a lock that is lost or cannot be extended is
 * logged.
 */
export async function holdWhile<T>(
  lock: StoreLock,
  leaseMs: number,
  clock: Clock,
  log: Logger,
  job: ScheduledJob,
  run: () => Promise<T>,
): Promise<T> {
  let renewal: TimerHandle | undefined;
  const renew = () => {
    renewal = clock.setTimeout(() => {
      void lock.extend(leaseMs).then(
        (held) => {
          if (!held) log.warn('lost the lock of a running job', { plugin: job.plugin, id: job.id });
          else renew();
        },
        (error: unknown) => log.warn('could not extend a job lock', { error }),
      );
    }, leaseMs / 3);
  };
  renew();
  try {
    return await run();
  } finally {
    if (renewal !== undefined) clock.clearTimeout(renewal);
  }
}

/** Whether a job passes `filter`: its chat (same adapter and chat id) and the user who scheduled it. */
export function matches(filter: ScheduleFilter): (job: ScheduledJob) => boolean {
  return (job) =>
    (filter.chat === undefined ||
      (job.chat.adapter === filter.chat.adapter && job.chat.id === filter.chat.id)) &&
    (filter.user === undefined || job.user?.id === filter.user);
}

/** A short id that is easy to read out and type: 8 characters, no 0/o or 1/l. */
export function newId(): string {
  let id = '';
  // Bytes past the last whole multiple of the alphabet are skipped, so every letter is equally likely.
  const limit = 256 - (256 % idAlphabet.length);
  while (id.length < 8) {
    for (const byte of crypto.getRandomValues(new Uint8Array(8))) {
      if (byte < limit && id.length < 8) id += idAlphabet[byte % idAlphabet.length];
    }
  }
  return id;
}
