/**
 * Shard leases on the Store seam, on a fake clock: several "processes" (ShardLeases on one store)
 * split the shards, never run one twice, hand shards to a newcomer and take a dead one's over
 * within `leaseMs + renewMs`. The same on two connections to one SQLite file, as two processes
 * sharing a state file have. Plus the `shards` / `shardCount` config as YAML and `${SHARDS}` give it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscordAdapter, discordConfig } from '../../adapters/discord/index.ts';
import {
  identifyWindowMs,
  type ShardChoice,
  ShardLeases,
  storeIdentifyThrottler,
} from '../../adapters/discord/shards.ts';
import { createBot } from '../../src/bot.ts';
import type { Clock, TimerHandle } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { openSqliteStore } from '../../src/runtime/sqlite-store.ts';
import { MemoryStore, type Store } from '../../src/store.ts';
import { FakeClock } from '../../src/testing.ts';
import { FakeDiscord } from '../fakes/discord/server.ts';

const leaseMs = 10_000;
const renewMs = 2_000;
const token = 'MTAwMDAwMDAwMDAwMDAwMDA5MDA.FakeDc.chorus-fake-discord-token-abcdefgh';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Shards as the processes run them; opening a shard someone else runs is recorded as a clash. */
class World {
  readonly clock = new FakeClock();
  readonly running = new Map<number, string>();
  readonly clashes: string[] = [];
  readonly events: string[] = [];
  readonly logs: string[] = [];

  constructor(readonly count: number) {}

  /** A process on `store`; `kill()` stops its timers for good (a kill -9), `pause()` until `resume()`. */
  process(name: string, store: Store, choice: ShardChoice = 'auto', failOpens = 0) {
    let state: 'alive' | 'paused' | 'dead' = 'alive';
    const parked: (() => void)[] = [];
    const clock: Clock = {
      now: () => this.clock.now(),
      setTimeout: (callback, ms): TimerHandle =>
        this.clock.setTimeout(() => {
          if (state === 'alive') callback();
          else if (state === 'paused') parked.push(callback);
        }, ms),
      clearTimeout: (handle) => this.clock.clearTimeout(handle),
    };
    const leases = new ShardLeases({
      store,
      prefix: 'shards:900:2:',
      count: this.count,
      choice,
      clock,
      leaseMs,
      renewMs,
      log: createLogger({ level: 'info', write: (line) => this.logs.push(`${name} ${line}`) }),
      open: async (id) => {
        if (failOpens-- > 0) throw new Error('gateway unreachable');
        const holder = this.running.get(id);
        if (holder !== undefined) this.clashes.push(`${name} opened ${id} while ${holder} ran it`);
        this.running.set(id, name);
        this.events.push(`${name} open ${id}`);
      },
      close: async (id) => {
        if (this.running.get(id) === name) this.running.delete(id);
        this.events.push(`${name} close ${id}`);
      },
    });
    return {
      leases,
      kill: () => {
        state = 'dead';
        for (const [id, holder] of this.running) if (holder === name) this.running.delete(id);
      },
      pause: () => {
        state = 'paused';
      },
      resume: () => {
        state = 'alive';
        for (const callback of parked.splice(0)) callback();
      },
    };
  }

  /** Ticks `renewMs` at a time until `done` holds; the fake time it took. */
  async until(done: () => boolean, limitMs = 60_000): Promise<number> {
    const started = this.clock.now();
    while (!done()) {
      if (this.clock.now() - started > limitMs) throw new Error(`not within ${limitMs} ms: ${this.events}`);
      await this.clock.tick(renewMs);
    }
    return this.clock.now() - started;
  }
}

describe('discord shard leases', () => {
  it('shards: auto — two processes split the shards; the survivor takes a killed one’s within leaseMs + renewMs', async () => {
    const w = new World(2);
    const store = new MemoryStore({ clock: w.clock });
    const a = w.process('A', store);
    const b = w.process('B', store);
    await a.leases.start();
    // Alone, A runs every shard.
    expect(a.leases.held).toEqual([0, 1]);
    await b.leases.start();
    expect(b.leases.held).toEqual([]);
    // B's membership shows up in A's next round: A hands one shard over, B takes it.
    const handover = await w.until(() => b.leases.held.length === 1);
    expect(handover).toBeLessThanOrEqual(2 * renewMs);
    expect(a.leases.held).toEqual([0]);
    expect(b.leases.held).toEqual([1]);
    expect(w.events).toEqual(['A open 0', 'A open 1', 'A close 1', 'B open 1']);

    // Steady: renewals keep the split as it is.
    await w.clock.tick(5 * leaseMs);
    expect([a.leases.held, b.leases.held]).toEqual([[0], [1]]);

    a.kill();
    const takeover = await w.until(() => b.leases.held.length === 2);
    expect(takeover).toBeGreaterThan(leaseMs - renewMs);
    expect(takeover).toBeLessThanOrEqual(leaseMs + renewMs);
    expect(w.events.at(-1)).toBe('B open 0');
    expect(w.clashes).toEqual([]);
    await b.leases.stop();
    expect(w.running.size).toBe(0);
  });

  it('three processes and five shards: each shard runs once, no process over its share of two', async () => {
    const w = new World(5);
    const store = new MemoryStore({ clock: w.clock });
    const processes = ['A', 'B', 'C'].map((name) => w.process(name, store));
    for (const p of processes) await p.leases.start();
    await w.until(() => w.running.size === 5 && processes.every((p) => p.leases.held.length <= 2));
    expect(processes.map((p) => p.leases.held.length).toSorted()).toEqual([1, 2, 2]);
    expect(new Set(processes.flatMap((p) => p.leases.held)).size).toBe(5);
    expect(w.clashes).toEqual([]);
    // A stop (SIGTERM) gives the shards back at once: the others take them within a round.
    const [first, ...rest] = processes;
    await first!.leases.stop();
    const taken = await w.until(() => w.running.size === 5);
    expect(taken).toBeLessThanOrEqual(2 * renewMs);
    expect(rest.map((p) => p.leases.held.length).toSorted()).toEqual([2, 3]);
    expect(rest.flatMap((p) => p.leases.held).toSorted()).toEqual([0, 1, 2, 3, 4]);
    expect(w.clashes).toEqual([]);
  });

  it('a process that stalls past its lease loses the shard and closes it when it wakes', async () => {
    const w = new World(1);
    const store = new MemoryStore({ clock: w.clock });
    const a = w.process('A', store);
    const b = w.process('B', store);
    await a.leases.start();
    await b.leases.start();
    a.pause();
    await w.until(() => b.leases.held.length === 1);
    a.resume();
    await w.clock.tick(renewMs);
    expect(a.leases.held).toEqual([]);
    expect(w.events).toEqual(['A open 0', 'B open 0', 'A close 0']);
    expect(w.logs.join('\n')).toMatch(/A .*lost the lease of a discord shard/);
    expect(w.running.get(0)).toBe('B');
  });

  it('a list: waits while another process holds its shard, and takes it once that one stops', async () => {
    const w = new World(2);
    const store = new MemoryStore({ clock: w.clock });
    const a = w.process('A', store, [0]);
    const b = w.process('B', store, [0, 1]);
    await a.leases.start();
    await b.leases.start();
    expect([a.leases.held, b.leases.held]).toEqual([[0], [1]]);
    await w.clock.tick(3 * renewMs);
    // Warned once, not every round.
    expect(w.logs.filter((line) => /B .*another process holds this discord shard/.test(line))).toHaveLength(
      1,
    );
    await a.leases.stop();
    await w.until(() => b.leases.held.length === 2);
    // Closed before its lease was released: never two processes on shard 0.
    expect(w.events).toEqual(['A open 0', 'B open 1', 'A close 0', 'B open 0']);
    expect(w.clashes).toEqual([]);
  });

  it('a shard that fails to open fails the start; later, it is left alone for retryMs', async () => {
    const w = new World(1);
    const store = new MemoryStore({ clock: w.clock });
    const a = w.process('A', store, 'all', 1);
    await expect(a.leases.start()).rejects.toThrow('gateway unreachable');
    expect(a.leases.held).toEqual([]);
    // It gave the lease back: another process takes the shard at once.
    const b = w.process('B', store);
    await b.leases.start();
    expect(b.leases.held).toEqual([0]);

    // Later rounds: C's open fails when B has stopped; C tries again only after 60 s.
    const c = w.process('C', store, 'auto', 1);
    await c.leases.start();
    await b.leases.stop();
    await w.clock.tick(renewMs);
    expect(w.logs.join('\n')).toMatch(/C .*failed to start; giving its lease back/);
    await w.clock.tick(60_000 - 2 * renewMs);
    expect(c.leases.held).toEqual([]);
    expect(await w.until(() => c.leases.held.length === 1)).toBeLessThanOrEqual(2 * renewMs);
    expect(w.events).toEqual(['B open 0', 'B close 0', 'C open 0']);
  });

  it('holds across two connections to one SQLite state file, as two processes have', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-shards-'));
    const w = new World(2);
    const one = await openSqliteStore(join(dir, 'state.sqlite'), { clock: w.clock });
    const two = await openSqliteStore(join(dir, 'state.sqlite'), { clock: w.clock });
    cleanups.push(
      () => one.close(),
      () => two.close(),
    );
    const a = w.process('A', one);
    const b = w.process('B', two);
    await a.leases.start();
    await b.leases.start();
    await w.until(() => b.leases.held.length === 1);
    expect([a.leases.held, b.leases.held]).toEqual([[0], [1]]);
    a.kill();
    const takeover = await w.until(() => b.leases.held.length === 2);
    expect(takeover).toBeLessThanOrEqual(leaseMs + renewMs);
    expect(w.clashes).toEqual([]);
  });

  it('checks its options', () => {
    const w = new World(2);
    const store = new MemoryStore();
    expect(() => w.process('A', store, [2])).toThrow(/below the shard count \(2\)/);
    expect(
      () =>
        new ShardLeases({
          store,
          prefix: 'x:',
          count: 0,
          choice: 'auto',
          clock: w.clock,
          log: createLogger({ level: 'silent' }),
          open: async () => {},
          close: async () => {},
        }),
    ).toThrow(/at least 1/);
  });
});

describe('the identify throttler in the store', () => {
  it('lets one IDENTIFY per bucket through per 5 s, across processes; other buckets go at once', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const options = { store, prefix: 'shards:900:4:', maxConcurrency: 2, clock };
    const one = storeIdentifyThrottler(options);
    const two = storeIdentifyThrottler(options);
    const signal = new AbortController().signal;
    const passed: string[] = [];
    const go = (throttler: typeof one, shard: number) =>
      throttler.waitForIdentify(shard, signal).then(() => passed.push(`${shard}@${clock.now()}`));
    const start = clock.now();
    const all = Promise.all([go(one, 0), go(two, 2), go(one, 1)]);
    await clock.tick(0);
    // Shards 0 and 1 are in buckets 0 and 1; shard 2 shares bucket 0 with shard 0.
    expect(passed).toEqual([`0@${start}`, `1@${start}`]);
    await clock.tick(identifyWindowMs - 250);
    expect(passed).toHaveLength(2);
    await clock.tick(250);
    await all;
    expect(passed[2]).toBe(`2@${start + identifyWindowMs}`);
  });

  it('stops waiting when the shard is destroyed', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock });
    const throttler = storeIdentifyThrottler({ store, prefix: 'p:', maxConcurrency: 1, clock });
    await throttler.waitForIdentify(0, new AbortController().signal);
    const controller = new AbortController();
    const waiting = throttler.waitForIdentify(1, controller.signal);
    controller.abort(new Error('destroyed'));
    await expect(waiting).rejects.toThrow('destroyed');
  });
});

describe('the discord adapter, sharded', () => {
  it('fails to start, saying what to change, when Discord requires more shards (4011)', async () => {
    const fake = await new FakeDiscord({ maxGuildsPerShard: 1 }).start();
    cleanups.push(() => fake.close());
    fake.addGuild('second');
    const logs: string[] = [];
    const bot = createBot({
      adapters: [createDiscordAdapter({ token: fake.token, api: `${fake.url}/api`, shardCount: 1 })],
      plugins: [],
      log: createLogger({ level: 'info', write: (line) => logs.push(line) }),
    });
    cleanups.push(() => bot.stop());
    await expect(bot.start()).rejects.toThrow(
      'discord closed shard 0 of 1 (4011 ShardingRequired): too many guilds per shard; raise shardCount or set it to auto',
    );
    expect(fake.identifies).toBe(0);
    expect(fake.closeCodes).toEqual([4011]);
  });

  it('runs shards: all with shardCount: auto as Discord recommends, one connection per shard', async () => {
    const fake = await new FakeDiscord({ shards: 2, maxConcurrency: 2 }).start();
    cleanups.push(() => fake.close());
    fake.addGuild('second');
    const logs: string[] = [];
    const bot = createBot({
      adapters: [createDiscordAdapter({ token: fake.token, api: `${fake.url}/api` })],
      plugins: [],
      log: createLogger({ level: 'info', write: (line) => logs.push(line) }),
    });
    cleanups.push(() => bot.stop());
    await bot.start();
    expect(fake.connectedShards().toSorted()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(logs.join('\n')).toMatch(/discord shards running="0,1" shards=2 mode=all/);
    await bot.stop();
    expect(fake.connectedShards()).toEqual([]);
  });
});

describe('the shards config', () => {
  const parse = (extra: Record<string, unknown>) => discordConfig.safeParse({ token, ...extra });

  it('takes auto, all, a list, and the strings ${SHARDS} and ${SHARD_COUNT} give', () => {
    expect(parse({}).data).toMatchObject({ shards: 'all', shardCount: 'auto' });
    expect(parse({ shards: 'auto', shardCount: 4 }).data).toMatchObject({ shards: 'auto', shardCount: 4 });
    expect(parse({ shards: [0, 2], shardCount: '4' }).data).toMatchObject({ shards: [0, 2], shardCount: 4 });
    expect(parse({ shards: '1' }).data).toMatchObject({ shards: [1] });
    expect(parse({ shards: ' 0, 3 ' }).data).toMatchObject({ shards: [0, 3] });
    expect(parse({ shards: '[0,1]' }).data).toMatchObject({ shards: [0, 1] });
  });

  it('names the key and what it expected on bad values', () => {
    const message = (extra: Record<string, unknown>) =>
      parse(extra).error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(message({ shards: 'some' })).toEqual([
      'shards: expected auto, all, or a list of shard ids such as [0, 1]',
    ]);
    expect(message({ shards: [0, 0] })).toEqual(['shards: each shard id once']);
    expect(message({ shards: [1, 2], shardCount: 2 })).toEqual([
      'shards: shard ids run from 0 to shardCount - 1 (1); got 2',
    ]);
    expect(message({ shardCount: 0 })).toEqual([
      'shardCount: expected auto or a number of shards (1 or more)',
    ]);
  });
});
