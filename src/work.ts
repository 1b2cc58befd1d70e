/**
 * The WorkQueue seam: where incoming messages wait to be handled when several processes make one
 * bot. Without one, an adapter's message goes straight to this process's router (as it always
 * has); with one (Redis Streams, `src/redis/queue.ts`), any process may take a message from its
 * platform and any process may handle it, in order within each chat, once.
 */
import type { IncomingMessage } from './message.ts';

/** Hands a queued message to the bot. */
export interface WorkHandler {
  /**
   * Routes the message; resolves once the router has taken it (the next message of its chat may
   * go) with true, or with false when the bot is stopping and did not take it (it stays queued).
   */
  route(message: IncomingMessage): Promise<boolean>;
  /** Resolves once everything the message set off has ended (then it leaves the queue). */
  settled(message: IncomingMessage): Promise<void>;
}

/** A queue of incoming messages shared by the processes of one bot. */
export interface WorkQueue {
  /**
   * Queues a message taken from a platform; resolves once it is safely queued (the adapter may
   * then confirm it). A message queued before (a platform's redelivery) is dropped.
   */
  push(message: IncomingMessage): Promise<void>;
  /** Starts handing this process's share of the queued messages to `handler`. */
  start(handler: WorkHandler): Promise<void>;
  /**
   * Stops taking work at once: messages not yet started stay queued for the other processes.
   * Resolves once the messages this process started have settled and its share is given up.
   */
  stop(): Promise<void>;
}
