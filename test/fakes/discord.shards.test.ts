/**
 * The fake gateway shards as Discord does, checked with discord.js itself (no Chorus in between):
 * GET /gateway/bot recommends a count, IDENTIFY's `shard` picks the guilds, DMs go to shard 0,
 * and a bad shard or too many guilds per shard closes the connection with Discord's codes.
 */
import { Client, Events, type Message, Partials } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayIntents } from '../../adapters/discord/gateway.ts';
import { eventually } from '../adapters/contract.ts';
import { FakeDiscord, type FakeDiscordUser, shardOf } from './discord/server.ts';
import { checkDiscordRequests } from './discord/spec.ts';

const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeWith(guilds: number, options: ConstructorParameters<typeof FakeDiscord>[0] = {}) {
  const fake = await new FakeDiscord(options).start();
  cleanups.push(() => fake.close());
  for (let i = 0; i < guilds; i++) fake.addGuild(`guild ${i}`);
  return fake;
}

/** A discord.js client on the fake, recording every message with the shard that brought it. */
function client(fake: FakeDiscord, sharding: { shards?: 'auto' | number[]; shardCount?: number }) {
  const c = new Client({
    intents: gatewayIntents,
    partials: [Partials.Channel],
    rest: { api: `${fake.url}/api` },
    ...sharding,
  });
  cleanups.push(() => c.destroy());
  const seen: { content: string; shard: number; guild: string | null }[] = [];
  c.on(Events.MessageCreate, (message: Message) =>
    seen.push({ content: message.content, shard: message.guild?.shardId ?? 0, guild: message.guildId }),
  );
  return { c, seen };
}

describe('the fake Discord gateway, sharded, with discord.js', () => {
  it('shards: auto spawns the recommended count; each guild and its events on (id >> 22) % count, DMs on 0', async () => {
    const fake = await fakeWith(4, { shards: 2, maxConcurrency: 2 });
    const { c, seen } = client(fake, { shards: 'auto' });
    const ready = new Promise((resolve) => c.once(Events.ClientReady, resolve));
    await c.login(fake.token);
    await ready;
    expect(fake.identified.toSorted()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // Every guild arrived, on the shard the formula gives.
    expect(c.guilds.cache.size).toBe(fake.guilds.length);
    for (const guild of fake.guilds) expect(c.guilds.cache.get(guild.id)!.shardId).toBe(shardOf(guild.id, 2));
    // The added guilds alternate between the two shards.
    expect(fake.guilds.slice(1).map((g) => shardOf(g.id, 2))).toEqual([0, 1, 0, 1]);

    for (const guild of fake.guilds) fake.userSays(guild.general, ann, `hello ${guild.name}`);
    fake.userSays(fake.dm(ann), ann, 'a DM');
    await eventually(
      () => seen.length,
      (n) => n === fake.guilds.length + 1,
      'every message',
    );
    for (const guild of fake.guilds)
      expect(seen.filter((m) => m.content === `hello ${guild.name}`)).toEqual([
        { content: `hello ${guild.name}`, shard: shardOf(guild.id, 2), guild: guild.id },
      ]);
    expect(seen.find((m) => m.content === 'a DM')).toEqual({ content: 'a DM', shard: 0, guild: null });
    expect(checkDiscordRequests(fake.requests)).toEqual([]);
  });

  it('a client running shard 1 of 2 gets only its guilds, their messages and interactions, and no DMs', async () => {
    const fake = await fakeWith(4);
    const { c, seen } = client(fake, { shards: [1], shardCount: 2 });
    const interactions: string[] = [];
    c.on(Events.InteractionCreate, (interaction) => interactions.push(interaction.guildId ?? 'dm'));
    const ready = new Promise((resolve) => c.once(Events.ClientReady, resolve));
    await c.login(fake.token);
    await ready;
    const mine = fake.guilds.filter((g) => shardOf(g.id, 2) === 1);
    const others = fake.guilds.filter((g) => shardOf(g.id, 2) === 0);
    expect(mine.length).toBeGreaterThan(0);
    expect(others.length).toBeGreaterThan(0);
    expect([...c.guilds.cache.keys()].toSorted()).toEqual(mine.map((g) => g.id).toSorted());

    // What is not this shard's goes out first: had the fake sent it here, it would arrive first.
    for (const guild of others) {
      fake.userSays(guild.general, ann, `not mine ${guild.name}`);
      fake.userRunsCommand(guild.general, ann, 'draw', { prompt: 'x' });
    }
    fake.userSays(fake.dm(ann), ann, 'a DM');
    for (const guild of mine) {
      fake.userSays(guild.general, ann, `mine ${guild.name}`);
      fake.userRunsCommand(guild.general, ann, 'draw', { prompt: 'x' });
    }
    await eventually(
      () => seen.length + interactions.length,
      (n) => n === 2 * mine.length,
      'this shard’s events',
    );
    expect(seen.map((m) => m.content).toSorted()).toEqual(mine.map((g) => `mine ${g.name}`).toSorted());
    expect(interactions.toSorted()).toEqual(mine.map((g) => g.id).toSorted());
  });

  it('closes an IDENTIFY with an invalid shard with 4010, and one that would hold too many guilds with 4011', async () => {
    const fake = await fakeWith(2, { maxGuildsPerShard: 2, maxConcurrency: 2 });
    const codes = async (sharding: { shards: number[]; shardCount: number }) => {
      const { c } = client(fake, sharding);
      const closed = new Promise<number>((resolve) =>
        c.on(Events.ShardDisconnect, (event) => resolve(event.code)),
      );
      // discord.js gives up: these codes are not worth reconnecting for.
      await expect(c.login(fake.token)).rejects.toThrow(/Invalid shard|Sharding is required/);
      return closed;
    };
    // Shard 2 of 2 does not exist (ids run from 0 to count - 1).
    expect(await codes({ shards: [2], shardCount: 2 })).toBe(4010);
    // Three guilds on one shard, where the fake allows two: sharding is required.
    expect(await codes({ shards: [0], shardCount: 1 })).toBe(4011);
    // Two shards hold them.
    const { c } = client(fake, { shards: [0, 1], shardCount: 2 });
    const ready = new Promise((resolve) => c.once(Events.ClientReady, resolve));
    await c.login(fake.token);
    await ready;
    expect(c.guilds.cache.size).toBe(3);
    expect(fake.closeCodes).toEqual([4010, 4011]);
  });
});
