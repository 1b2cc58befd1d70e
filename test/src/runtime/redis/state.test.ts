/**
 * The Redis implementations of the Store, Budget and Jobs seams, run through the same contract
 * suites as the embedded ones, against a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBudget } from '../../../../src/runtime/redis/budget.ts';
import { connectRedis, type RedisClient } from '../../../../src/runtime/redis/connection.ts';
import { openRedisJobs, type RedisJobs } from '../../../../src/runtime/redis/jobs.ts';
import { RedisStore } from '../../../../src/runtime/redis/store.ts';
import { namespacedStore } from '../../../../src/store.ts';
import { budgetContract } from '../../budget.contract.ts';
import { jobsContract } from '../../jobs.contract.ts';
import { storeContract } from '../../store.contract.ts';
import { redisMissing, startRedis, type TestRedis } from './server.ts';

if (redisMissing) {
  describe.skip(`Redis seams: ${redisMissing}`, () => {
    it('needs redis-server', () => {});
  });
} else {
  let redis: TestRedis;
  const clients: RedisClient[] = [];
  let runs = 0;
  /** A new connection and a prefix of its own, so each test starts from an empty state. */
  const connect = async () => {
    const client = await connectRedis(redis.url);
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });

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
      another: async () =>
        namespacedStore(new RedisStore(await connect(), { clock, prefix }), 'plugin:mine:'),
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
}
