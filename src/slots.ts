/**
 * The Slots seam: keyed semaphores with a waiting line, shared by whoever holds the same Slots
 * (one process in memory; every process of a bot when Redis implements it). Under one key at most
 * `capacity` callers hold a slot at once; the others wait in the order they came, learn their
 * place each time it changes, and may leave the line by aborting. Limiters (`createLimiter`,
 * `createTurns`) take their slots here when given one, so a backend's `concurrency: 2` means two
 * requests in flight for the whole bot, not two per process.
 */
import { onAbort } from './abort.ts';
import { abortReason } from './errors.ts';

/** Ends a held slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

/** One {@link Slots.acquire} call. */
export interface SlotRequest {
  /** What is limited: `backend:flux`, `user:telegram:42`. */
  readonly key: string;
  /** Holders of `key` at once, an integer >= 1. Every caller of one key should give the same. */
  readonly capacity: number;
  /**
   * Callers that may wait in the line before this one is refused (resolves `undefined`).
   * 0: take a slot only when one is free now. Default: no bound.
   */
  readonly maxWaiting?: number;
  /** Aborting it while waiting leaves the line and rejects with its reason. */
  readonly signal?: AbortSignal;
  /** Called when the caller has to wait, and again each time its place changes: `ahead` callers before it. */
  readonly onQueued?: (ahead: number) => void;
}

/** Keyed semaphores with a first-come, first-served line. */
export interface Slots {
  /**
   * Takes a slot under `request.key`: at once when one is free and nobody waits, otherwise when the
   * callers before it have had theirs. Resolves with the function that releases it, or with
   * `undefined` when the line already holds `maxWaiting` callers.
   */
  acquire(request: SlotRequest): Promise<ReleaseSlot | undefined>;
}

/** Throws a TypeError naming the bad option of a slot request. */
export function checkSlotRequest(request: SlotRequest): void {
  const { capacity, maxWaiting } = request;
  if (!(Number.isInteger(capacity) && capacity >= 1))
    throw new TypeError(`capacity must be an integer >= 1, got ${String(capacity)}`);
  if (maxWaiting !== undefined && !(Number.isInteger(maxWaiting) && maxWaiting >= 0))
    throw new TypeError(`maxWaiting must be an integer >= 0, got ${String(maxWaiting)}`);
}

interface Waiter {
  readonly grant: () => void;
  readonly onQueued: ((ahead: number) => void) | undefined;
  lastAhead: number;
}

interface Semaphore {
  held: number;
  readonly line: Waiter[];
}

/** Slots in this process's memory. */
export class MemorySlots implements Slots {
  readonly #keys = new Map<string, Semaphore>();

  /** Keys with a holder or a waiter now. */
  get size(): number {
    return this.#keys.size;
  }

  acquire(request: SlotRequest): Promise<ReleaseSlot | undefined> {
    checkSlotRequest(request);
    const { key, capacity, maxWaiting, signal, onQueued } = request;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    let semaphore = this.#keys.get(key);
    if (!semaphore) {
      semaphore = { held: 0, line: [] };
      this.#keys.set(key, semaphore);
    }
    const sem = semaphore;
    if (sem.line.length === 0 && sem.held < capacity) return Promise.resolve(this.#take(key, sem));
    if (maxWaiting !== undefined && sem.line.length >= maxWaiting) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        onQueued,
        lastAhead: -1,
        grant: () => {
          stopWaiting?.();
          resolve(this.#take(key, sem));
        },
      };
      sem.line.push(waiter);
      const stopWaiting =
        signal &&
        onAbort(signal, () => {
          const index = sem.line.indexOf(waiter);
          if (index < 0) return;
          sem.line.splice(index, 1);
          this.#announce(sem);
          this.#forget(key, sem);
          reject(abortReason(signal));
        });
      this.#announce(sem);
    });
  }

  #take(key: string, sem: Semaphore): ReleaseSlot {
    sem.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      sem.held--;
      const next = sem.line.shift();
      if (next) {
        next.grant();
        this.#announce(sem);
      }
      this.#forget(key, sem);
    };
  }

  #announce(sem: Semaphore): void {
    sem.line.forEach((waiter, ahead) => {
      if (ahead === waiter.lastAhead) return;
      waiter.lastAhead = ahead;
      waiter.onQueued?.(ahead);
    });
  }

  #forget(key: string, sem: Semaphore): void {
    if (sem.held === 0 && sem.line.length === 0 && this.#keys.get(key) === sem) this.#keys.delete(key);
  }
}

/**
 * A view of `slots` whose keys all start with `prefix`: each plugin's `ctx.slots` is one, so two
 * plugins' `backend:flux` are two semaphores.
 */
export function namespacedSlots(slots: Slots, prefix: string): Slots {
  return { acquire: (request) => slots.acquire({ ...request, key: prefix + request.key }) };
}
