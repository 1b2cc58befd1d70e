/**
 * The Redis implementations of the Store, Budget and Jobs seams, run through the same contract
 * suites as the embedded ones, against a real redis-server.
 */
import { describe, expect, it, vi } from 'vitest';
import { RedisBudget } from '../../../src/runtime/redis/budget.ts';
import { connectRedis } from '../../../src/runtime/redis/connection.ts';
import { openRedisJobs, type RedisJobs } from '../../../src/runtime/redis/jobs.ts';
import { RedisSlots } from '../../../src/runtime/redis/slots.ts';
import { RedisStore } from '../../../src/runtime/redis/store.ts';
import { namespacedStore } from '../../../src/store.ts';
import { budgetContract } from '../budget.contract.ts';
import { jobsContract } from '../jobs.contract.ts';
import { slotsContract } from '../slots.contract.ts';
import { storeContract } from '../store.contract.ts';
import { useTestRedis } from './redis-server.ts';

const redis = useTestRedis();
/** A new connection; each test keeps to a prefix of its own, so it starts from an empty state. */
const connect = () => redis.connect();
let runs = 0;

storeContract('redis', async (clock) => {
  const prefix = `t${++runs}:`;
  const store = new RedisStore(await connect(), { clock, prefix });
  return {
    store,
    // Another process: its own connection, the same prefix.
    another: async () => new RedisStore(await connect(), { clock, prefix }),
    close: () => store.close(),
  };
});

storeContract('namespaced view of a redis store', async (clock) => {
  const prefix = `t${++runs}:`;
  const store = new RedisStore(await connect(), { clock, prefix });
  await namespacedStore(store, 'plugin:other:').set('k', 'theirs');
  return {
    store: namespacedStore(store, 'plugin:mine:'),
    another: async () => namespacedStore(new RedisStore(await connect(), { clock, prefix }), 'plugin:mine:'),
    close: () => store.close(),
  };
});

budgetContract('redis', async (clock) => {
  const prefix = `t${++runs}:`;
  return {
    budget: new RedisBudget(await connect(), { clock, prefix }),
    another: async () => new RedisBudget(await connect(), { clock, prefix }),
    close: async () => {},
  };
});

jobsContract('redis', async () => {
  const prefix = `t${++runs}:`;
  const opened: RedisJobs[] = [await openRedisJobs(await connect(), { prefix })];
  return {
    jobs: opened[0]!,
    another: async () => {
      const jobs = await openRedisJobs(await connect(), { prefix });
      opened.push(jobs);
      return jobs;
    },
    close: async () => {
      for (const jobs of opened) await jobs.close();
    },
  };
});

slotsContract('redis', async () => {
  const prefix = `t${++runs}:`;
  const opened = [await RedisSlots.open(await connect(), { prefix })];
  return {
    slots: opened[0]!,
    another: async () => {
      const slots = await RedisSlots.open(await connect(), { prefix });
      opened.push(slots);
      return slots;
    },
    close: async () => {
      for (const slots of opened) await slots.close();
    },
  };
});

describe('RedisSlots', () => {
  it('gives the slot of a process that stopped renewing to the next in line when its lease ends', async () => {
    const prefix = `t${++runs}:`;
    const dying = await RedisSlots.open(await connect(), { prefix, leaseMs: 300, pollMs: 50 });
    const living = await RedisSlots.open(await connect(), { prefix, leaseMs: 300, pollMs: 50 });
    expect(await dying.acquire({ key: 'backend:flux', capacity: 1 })).toBeTypeOf('function');
    const places: number[] = [];
    const next = living.acquire({ key: 'backend:flux', capacity: 1, onQueued: (n) => places.push(n) });
    // The holder is renewed while its process lives: the waiter stays in line past one lease.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(places).toEqual([0]);
    // Its process dies without releasing (no renewals, no goodbye).
    await dying.close();
    const release = await next;
    expect(release).toBeTypeOf('function');
    release!();
    await living.close();
  });

  it('drops a waiter whose process stopped looking, so it blocks nobody behind it', async () => {
    const prefix = `t${++runs}:`;
    const client = await connect();
    const holderSide = await RedisSlots.open(client, { prefix, leaseMs: 300, pollMs: 50 });
    const release = await holderSide.acquire({ key: 'k', capacity: 1 });
    // A waiter whose process dies: it joined the line, then nobody polls for it.
    const deadClient = await connect();
    const dead = await RedisSlots.open(deadClient, { prefix, leaseMs: 300, pollMs: 50 });
    const deadWait = dead.acquire({ key: 'k', capacity: 1 });
    deadWait.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    deadClient.disconnect();
    const places: number[] = [];
    const next = holderSide.acquire({ key: 'k', capacity: 1, onQueued: (n) => places.push(n) });
    await vi.waitFor(() => expect(places).toEqual([1, 0]), { timeout: 3000, interval: 20 });
    release!();
    expect(await next).toBeTypeOf('function');
    await holderSide.close();
    await dead.close();
  });
});

describe('RedisJobs', () => {
  it('forgets the jobs of a process whose heartbeat ran out', async () => {
    const prefix = `t${++runs}:`;
    const dyingClient = await connect();
    const dying = await openRedisJobs(dyingClient, { prefix, heartbeatMs: 300 });
    const living = await openRedisJobs(await connect(), { prefix });
    const chat = { adapter: 'telegram', platform: 'telegram', id: '5', kind: 'group' as const };
    await dying.add({ jobId: '1', plugin: 'draw', command: 'draw', chat, userId: 'ann' }, () => {});
    expect(await living.list()).toHaveLength(1);
    // The process stops beating without a goodbye, as kill -9 leaves it.
    dyingClient.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await living.list()).toEqual([]);
    await living.close();
  });
});

describe('connectRedis', () => {
  it('says which Redis it cannot reach, without the password', async () => {
    await expect(
      connectRedis('redis://:hunter2-secret@127.0.0.1:1', { connectTimeoutMs: 300 }),
    ).rejects.toThrow(/^state\.redis\.url: cannot reach redis:\/\/127\.0\.0\.1:1(?!.*hunter2)/);
  });
});
