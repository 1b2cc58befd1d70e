/**
 * Per-user turns for a plugin's jobs, with a bounded line: at most `perUser` of a user's jobs run
 * at once, at most `maxQueued` more wait, and the rest are refused with one reply (not one per
 * message: a user who floods the bot hears it once until the line has room again). The waiting
 * jobs of one user in one chat share a single notice message that counts them, instead of one
 * message each.
 */
import type { Context } from './context.ts';
import { createKeyedLimiter } from './limit.ts';
import type { Button, SentMessage } from './message.ts';
import type { Slots } from './slots.ts';

/** What a user reads about their waiting jobs. */
export interface TurnTexts {
  /** The shared notice while `count` (at least 1) of the user's jobs in this chat wait. */
  waiting(count: number): string;
  /** The notice's last text, once none of them waits any more. */
  readonly started: string;
  /** The notice's last text when the last waiting job was cancelled instead. */
  readonly cancelled: string;
  /** The one reply when the user's line is full. */
  readonly full: string;
  /** Buttons on the notice (a Cancel button, say). */
  readonly buttons?: readonly (readonly Button[])[];
}

/** Options of {@link createTurns}. */
export interface TurnsOptions {
  /** Jobs of one user that run at once. */
  readonly perUser: number;
  /** Jobs of one user that may wait; more are refused. */
  readonly maxQueued: number;
  /**
   * Where the turns are counted: a plugin passes `ctx.slots`, so a user's turns and line hold for
   * every process of the bot (on Redis). Unset: this process counts its own.
   */
  readonly slots?: Slots | undefined;
  /** The first part of each user's key among the slots. Default `turn`. */
  readonly key?: string;
}

/** Per-user turns. */
export interface Turns {
  /**
   * Waits for the user's turn. Resolves with the function that ends it, or with `undefined` when
   * the user's line is full (the user has been told, once). Rejects with the signal's reason when
   * the job is cancelled while it waits.
   */
  take(c: Context, texts: TurnTexts): Promise<(() => void) | undefined>;
  /**
   * Takes the user's turn only if it is free now, without waiting, notice or reply: resolves with
   * the function that ends it, or `undefined` when the user's jobs already fill their turns.
   */
  tryTake(c: Context): Promise<(() => void) | undefined>;
  /** Jobs of the user `userKey` (`adapter:userId`) waiting now (in this process, with `slots`). */
  queued(userKey: string): number;
  /** True when a job of `userKey` would have to wait now (as far as this process knows, with `slots`). */
  busy(userKey: string): boolean;
}

interface Notice {
  count: number;
  /** Edits in order: each waits for the message to exist and for the edit before it. */
  chain: Promise<SentMessage | undefined>;
}

/**
 * Creates per-user turns.
 *
 * @example
 * const turns = createTurns({ perUser: 1, maxQueued: 3 });
 * const end = await turns.take(c, texts);
 * if (!end) return; // refused: the line is full
 * try { await work(); } finally { end(); }
 */
export function createTurns(options: TurnsOptions): Turns {
  if (!(Number.isInteger(options.maxQueued) && options.maxQueued >= 0))
    throw new TypeError(`maxQueued must be an integer >= 0, got ${String(options.maxQueued)}`);
  const limiter = createKeyedLimiter(options.perUser);
  const { slots } = options;
  const slotKey = (user: string) => `${options.key ?? 'turn'}:${user}`;
  /** With `slots`: turns this process's jobs hold, per user. */
  const holding = new Map<string, number>();
  const hold = (user: string, end: () => void) => {
    holding.set(user, (holding.get(user) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (holding.get(user) ?? 1) - 1;
      if (left > 0) holding.set(user, left);
      else holding.delete(user);
      end();
    };
  };
  const queued = new Map<string, number>();
  const refused = new Set<string>();
  const notices = new Map<string, Notice>();

  const setQueued = (user: string, count: number) => {
    if (count > 0) queued.set(user, count);
    else queued.delete(user);
    if (count < options.maxQueued) refused.delete(user);
  };

  const show = (c: Context, key: string, notice: Notice, texts: TurnTexts, final?: string) => {
    const text = final ?? texts.waiting(notice.count);
    notice.chain = notice.chain.then(async (sent) => {
      if (!sent) {
        if (final !== undefined) return undefined;
        return c.reply({ text, ...(texts.buttons && { buttons: texts.buttons }) });
      }
      await c.edit(sent, { text, ...(final !== undefined && texts.buttons && { buttons: [] }) });
      return sent;
    });
    notice.chain = notice.chain.catch((error: unknown) => {
      c.log.debug('queue notice failed', { error });
      return undefined;
    });
    if (final !== undefined && notices.get(key) === notice) notices.delete(key);
  };

  const refuse = async (c: Context, user: string, texts: TurnTexts) => {
    if (!refused.has(user)) {
      refused.add(user);
      await c.reply(texts.full);
    } else c.log.debug('queue full, message dropped', { user });
    return undefined;
  };

  /** A turn among shared slots: the notice appears once the slots say the job waits. */
  const takeShared = async (shared: Slots, c: Context, texts: TurnTexts) => {
    const user = `${c.chat.adapter}:${c.user.id}`;
    const key = `${user}:${c.chat.id}:${c.chat.threadId ?? ''}`;
    let notice: Notice | undefined;
    const onQueued = () => {
      if (notice) return;
      notice = notices.get(key);
      if (!notice) {
        notice = { count: 0, chain: Promise.resolve(undefined) };
        notices.set(key, notice);
      }
      setQueued(user, (queued.get(user) ?? 0) + 1);
      notice.count++;
      show(c, key, notice, texts);
    };
    const leave = (how: 'started' | 'cancelled') => {
      if (!notice) return;
      setQueued(user, (queued.get(user) ?? 1) - 1);
      notice.count--;
      if (notice.count > 0) show(c, key, notice, texts);
      else show(c, key, notice, texts, how === 'started' ? texts.started : texts.cancelled);
    };
    let end: (() => void) | undefined;
    try {
      end = await shared.acquire({
        key: slotKey(user),
        capacity: options.perUser,
        maxWaiting: options.maxQueued,
        onQueued,
        signal: c.signal,
      });
    } catch (error) {
      leave('cancelled');
      throw error;
    }
    if (!end) return refuse(c, user, texts);
    refused.delete(user);
    leave('started');
    return hold(user, end);
  };

  return {
    queued: (user) => queued.get(user) ?? 0,
    busy: (user) => (slots ? holding.has(user) : limiter.busy(user)) || queued.has(user),
    async tryTake(c) {
      const user = `${c.chat.adapter}:${c.user.id}`;
      if (slots) {
        const end = await slots.acquire({ key: slotKey(user), capacity: options.perUser, maxWaiting: 0 });
        return end && hold(user, end);
      }
      return this.busy(user) ? undefined : limiter.acquire(user, c.signal);
    },
    async take(c, texts) {
      if (slots) return takeShared(slots, c, texts);
      const user = `${c.chat.adapter}:${c.user.id}`;
      if (!this.busy(user)) return limiter.acquire(user, c.signal);
      const count = queued.get(user) ?? 0;
      if (count >= options.maxQueued) return refuse(c, user, texts);
      setQueued(user, count + 1);
      const key = `${user}:${c.chat.id}:${c.chat.threadId ?? ''}`;
      let notice = notices.get(key);
      if (!notice) {
        notice = { count: 0, chain: Promise.resolve(undefined) };
        notices.set(key, notice);
      }
      notice.count++;
      show(c, key, notice, texts);
      const leave = (how: 'started' | 'cancelled') => {
        setQueued(user, (queued.get(user) ?? 1) - 1);
        notice.count--;
        if (notice.count > 0) show(c, key, notice, texts);
        else show(c, key, notice, texts, how === 'started' ? texts.started : texts.cancelled);
      };
      try {
        const end = await limiter.acquire(user, c.signal);
        leave('started');
        return end;
      } catch (error) {
        leave('cancelled');
        throw error;
      }
    },
  };
}
