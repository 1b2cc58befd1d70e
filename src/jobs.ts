/**
 * The Jobs seam: which jobs are running, and a way to cancel them by chat and user wherever they
 * run. A job is plain data (ids, the chat, the user); what cancels it is the `cancel` callback of
 * the process that runs it. The in-memory implementation serves one process; a Redis one will
 * carry a cancel to the process that runs the job.
 */
import type { ChatAddress } from './message.ts';

/** A running job, as plain data. */
export interface JobRecord {
  readonly jobId: string;
  readonly plugin: string;
  readonly command: string;
  readonly chat: ChatAddress;
  readonly userId: string;
}

/** Which jobs: those of one user in one chat (the chat's adapter and id), or every job. */
export interface JobFilter {
  readonly adapter?: string;
  readonly chatId?: string;
  readonly userId?: string;
}

/** The running jobs. */
export interface Jobs {
  /**
   * Registers a job that has started; `cancel` is called when a cancel reaches it. May return
   * nothing when it is done at once (in memory), or a promise to wait for.
   */
  add(job: JobRecord, cancel: (reason: unknown) => void): void | Promise<void>;
  /** Forgets a job that has ended (at once, or with a promise to wait for). */
  remove(jobId: string): void | Promise<void>;
  /** Cancels the jobs that match (each once); resolves with how many were cancelled. */
  cancel(filter: JobFilter, reason: unknown): Promise<number>;
  /** The running jobs that match, oldest first. */
  list(filter?: JobFilter): Promise<readonly JobRecord[]>;
}

/** Whether `job` is one of those `filter` names. */
export function matchesJob(job: JobRecord, filter: JobFilter): boolean {
  return (
    (filter.adapter === undefined || job.chat.adapter === filter.adapter) &&
    (filter.chatId === undefined || job.chat.id === filter.chatId) &&
    (filter.userId === undefined || job.userId === filter.userId)
  );
}

/** The jobs of this process. */
export class MemoryJobs implements Jobs {
  readonly #jobs = new Map<
    string,
    { job: JobRecord; cancel: (reason: unknown) => void; cancelled: boolean }
  >();

  add(job: JobRecord, cancel: (reason: unknown) => void): void {
    this.#jobs.set(job.jobId, { job, cancel, cancelled: false });
  }

  remove(jobId: string): void {
    this.#jobs.delete(jobId);
  }

  cancel(filter: JobFilter, reason: unknown): Promise<number> {
    let count = 0;
    for (const entry of this.#jobs.values()) {
      if (entry.cancelled || !matchesJob(entry.job, filter)) continue;
      entry.cancelled = true;
      count++;
      entry.cancel(reason);
    }
    return Promise.resolve(count);
  }

  list(filter: JobFilter = {}): Promise<readonly JobRecord[]> {
    return Promise.resolve(
      [...this.#jobs.values()].filter((e) => matchesJob(e.job, filter)).map((e) => e.job),
    );
  }

  /** The running jobs, without a promise (for this process's own bookkeeping). */
  get size(): number {
    return this.#jobs.size;
  }
}
