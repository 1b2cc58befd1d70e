/**
 * A clock for tests that moves only when told (`FakeClock`), and `flush`, which lets the promise
 * chains that can settle now settle. Exported by the test kit, `chorus-bot/testing`.
 */
import type { Clock, TimerHandle } from './clock.ts';

/** A clock that moves only when told. Timers run in time order; promises settle between them. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete((handle as { id: number }).id);
  }

  /** Timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** When the next timer fires, if any. */
  nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const timer of this.#timers.values()) if (at === undefined || timer.at < at) at = timer.at;
    return at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async tick(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    for (;;) {
      const due = this.#earliest(target);
      if (!due) break;
      this.#timers.delete(due.id);
      this.#now = Math.max(this.#now, due.at);
      due.callback();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  #earliest(limit: number): { id: number; at: number; callback: () => void } | undefined {
    let found: { id: number; at: number; callback: () => void } | undefined;
    for (const [id, timer] of this.#timers) {
      if (timer.at <= limit && (!found || timer.at < found.at)) found = { id, ...timer };
    }
    return found;
  }
}

/** Lets every promise chain that can settle now settle (real I/O callbacks included). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
