/**
 * The work queue on Redis Streams against a real redis-server, with two queues as two processes
 * would hold them: each chat's messages in order and once, a redelivery dropped, the messages of a
 * queue that died taken over, and a queue that stops leaving what it had not started to the other.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from '../../../src/message.ts';
import { RedisWorkQueue } from '../../../src/runtime/redis/queue.ts';
import type { WorkHandler } from '../../../src/work.ts';
import { useTestRedis } from './redis-server.ts';

const message = (chat: number, id: number): IncomingMessage => ({
  id: String(id),
  chat: { adapter: 'telegram', platform: 'telegram', id: String(chat), kind: 'private' },
  sender: { id: String(chat), name: 'U' },
  text: `m${id}`,
  mentionsBot: false,
  images: [],
  date: 0,
});

/** A handler that records what it routes (by queue) and ends each message's work when told. */
function recorder(name: string, log: { by: string; chat: string; id: string }[], hold?: Set<string>) {
  const waiting = new Map<string, () => void>();
  const handler: WorkHandler = {
    route: async (m) => {
      log.push({ by: name, chat: m.chat.id, id: m.id });
      return true;
    },
    settled: (m) =>
      hold?.has(m.id) ? new Promise<void>((resolve) => waiting.set(m.id, resolve)) : Promise.resolve(),
  };
  return { handler, release: (id: string) => waiting.get(id)?.() };
}

async function until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const redis = useTestRedis();
/** A new connection; each test keeps to a prefix of its own, so it starts from an empty state. */
const connect = () => redis.connect();
let runs = 0;

describe('RedisWorkQueue', () => {
  it('hands each message to one of two queues once, in order within its chat, and drops a redelivery', async () => {
    const prefix = `q${++runs}:`;
    const log: { by: string; chat: string; id: string }[] = [];
    const a = new RedisWorkQueue(await connect(), { prefix, leaseMs: 600, partitions: 4 });
    const b = new RedisWorkQueue(await connect(), { prefix, leaseMs: 600, partitions: 4 });
    await a.start(recorder('a', log).handler);
    await b.start(recorder('b', log).handler);
    // Both hold a share once they have seen each other.
    await until(() => a.partitions.length === 2 && b.partitions.length === 2, 'the streams shared out');
    for (let n = 0; n < 20; n++) {
      for (let chat = 1; chat <= 6; chat++) await (n % 2 ? a : b).push(message(chat, n));
    }
    await a.push(message(3, 7)); // a redelivery, at the other queue
    await until(() => log.length >= 120, 'every message handled');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(log).toHaveLength(120);
    for (let chat = 1; chat <= 6; chat++) {
      const mine = log.filter((entry) => entry.chat === String(chat));
      expect(mine.map((entry) => Number(entry.id))).toEqual(Array.from({ length: 20 }, (_, n) => n));
      // One queue handles each chat.
      expect(new Set(mine.map((entry) => entry.by)).size).toBe(1);
    }
    expect(new Set(log.map((entry) => entry.by))).toEqual(new Set(['a', 'b']));
    await a.stop();
    await b.stop();
  });

  it('takes over, in order, the messages of a queue whose process died mid-work', async () => {
    const prefix = `q${++runs}:`;
    const log: { by: string; chat: string; id: string }[] = [];
    const dyingClient = await connect();
    const dying = new RedisWorkQueue(dyingClient, { prefix, leaseMs: 600, partitions: 2 });
    // Its first message's work never ends: the process dies with it running.
    await dying.start(recorder('dying', log, new Set(['0'])).handler);
    await until(() => dying.partitions.length === 2, 'the first queue holding every stream');
    for (let n = 0; n < 3; n++) await dying.push(message(9, n));
    await until(() => log.length >= 3, 'the dying queue routing its messages');
    // kill -9: no renewals, no acknowledgements, no goodbye.
    dyingClient.disconnect();
    const heir = new RedisWorkQueue(await connect(), { prefix, leaseMs: 600, partitions: 2 });
    await heir.start(recorder('heir', log).handler);
    await heir.push(message(9, 3));
    await until(() => log.filter((entry) => entry.by === 'heir').length >= 2, 'the heir taking over');
    // The unfinished one runs again, before the next of its chat; those that had ended do not.
    expect(log.filter((entry) => entry.by === 'heir').map((entry) => entry.id)).toEqual(['0', '3']);
    await heir.stop();
  });

  it('leaves what it had not started to the other queue when it stops', async () => {
    const prefix = `q${++runs}:`;
    const log: { by: string; chat: string; id: string }[] = [];
    const first = new RedisWorkQueue(await connect(), { prefix, leaseMs: 600, partitions: 1 });
    const firstRecorder = recorder('first', log, new Set(['0']));
    await first.start(firstRecorder.handler);
    await until(() => first.partitions.length === 1, 'the first queue holding the stream');
    const second = new RedisWorkQueue(await connect(), { prefix, leaseMs: 600, partitions: 1 });
    await second.start(recorder('second', log).handler);
    await first.push(message(5, 0));
    await until(() => log.length === 1, 'the first message routed');
    const stopped = first.stop();
    // Pushed while the first is stopping: it does not start them.
    await second.push(message(5, 1));
    await second.push(message(5, 2));
    firstRecorder.release('0');
    await stopped;
    await until(() => log.length >= 3, 'the second queue taking the rest');
    expect(log.map((entry) => `${entry.by}:${entry.id}`)).toEqual(['first:0', 'second:1', 'second:2']);
    await second.stop();
  });
});
