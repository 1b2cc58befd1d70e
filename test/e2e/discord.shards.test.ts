/**
 * Discord sharded over two `npm start -- --config FILE` processes, as the README runs it: one
 * config file, the shards from `${SHARDS}` in each process's environment, one state file they
 * share (whose leases say which process runs which shard), against the fake gateway with several
 * guilds. Each guild's messages are answered once, by the process running the guild's shard; with
 * `shards: auto`, the survivor takes a killed process's shard over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDiscord, type FakeDiscordUser, type FakeGuild, shardOf } from '../fakes/discord/server.ts';
import { checkDiscordRequests } from '../fakes/discord/spec.ts';
import { type RunningChorus, startChorus, until, workDir } from './harness.ts';

const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The README's "Discord shards" config, pointed at the fake. */
const config = (dir: string, discord: FakeDiscord, shardCount: string) =>
  [
    `state: { path: ${dir}/state.sqlite }`,
    'log: { level: debug }',
    'adapters:',
    '  discord:',
    '    token: ${DISCORD_BOT_TOKEN}',
    `    api: ${discord.url}/api`,
    '    shards: ${SHARDS}',
    `    shardCount: ${shardCount}`,
    '',
  ].join('\n');

async function world(guilds: number) {
  // Two shards recommended, one IDENTIFY per 5 s: the processes take turns through the store.
  const discord = await new FakeDiscord({ shards: 2 }).start();
  cleanups.push(() => discord.close());
  for (let i = 0; i < guilds; i++) discord.addGuild(`guild ${i}`);
  const dir = workDir('chorus-shards-');
  const start = (shards: string, shardCount = '2'): RunningChorus => {
    const bot = startChorus(dir, config(dir, discord, shardCount), {
      env: { DISCORD_BOT_TOKEN: discord.token, SHARDS: shards },
    });
    cleanups.push(() => bot.stop('SIGKILL'));
    return bot;
  };
  return { discord, start };
}

const answers = (discord: FakeDiscord, channelId: string) =>
  discord.channelMessages(channelId).filter((m) => m.author.id === discord.bot.id);

/** `!help` in every guild (and a DM); resolves with each message's id once every one is answered. */
async function askEveryGuild(discord: FakeDiscord, round: string) {
  const dm = discord.dm(ann);
  const asked = new Map<string, FakeGuild | undefined>();
  const before = new Map(
    [...discord.guilds.map((g) => g.general.id), dm.id].map((id) => [id, answers(discord, id).length]),
  );
  for (const guild of discord.guilds)
    asked.set(discord.userSays(guild.general, ann, `!help ${round}`).id, guild);
  asked.set(discord.userSays(dm, ann, `!help ${round}`).id, undefined);
  const answered = () =>
    [...before].every(([channel, count]) => answers(discord, channel).length >= count + 1);
  await until(answered, (done) => done, `an answer in every guild (${round})`, 30_000);
  return { asked, before, dm };
}

/** Every channel holds as many answers as questions (slash commands aside): none lost, none twice. */
function expectOneAnswerEach(discord: FakeDiscord) {
  for (const channel of [...discord.guilds.map((g) => g.general.id), discord.dm(ann).id]) {
    const messages = discord.channelMessages(channel).filter((m) => !m.interaction_token);
    const questions = messages.filter((m) => m.author.id === ann.id).length;
    expect(questions).toBeGreaterThan(0);
    expect(messages.length - questions).toBe(questions);
  }
}

/** The message ids a process's debug log says it took from the gateway, by shard. */
const taken = (bot: RunningChorus) =>
  [...bot.output().stderr.matchAll(/discord message id=(\d+) shard=(\d+)/g)].map(([, id, shard]) => ({
    id: id!,
    shard: Number(shard),
  }));

describe('npm start on Discord, two shards in two processes', () => {
  it('shards from ${SHARDS}: each guild answered exactly once, by the process running its shard; DMs by shard 0', async () => {
    const { discord, start } = await world(5);
    const zero = start('0');
    const one = start('1');
    await zero.waitFor(/discord shard ready shard=0 shards=2/, 30_000);
    await one.waitFor(/discord shard ready shard=1 shards=2/, 30_000);
    expect(discord.identified.toSorted()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // Both shards hold guilds.
    expect(new Set(discord.guilds.map((g) => shardOf(g.id, 2)))).toEqual(new Set([0, 1]));

    const first = await askEveryGuild(discord, 'one');
    const second = await askEveryGuild(discord, 'two');
    // A slash /help in every guild: deferred once and answered in the deferred reply.
    const slashes = discord.guilds.map((guild) => ({
      guild,
      id: discord.userRunsCommand(guild.general, ann, 'help'),
    }));
    const originals = () =>
      slashes.map(({ guild, id }) =>
        discord
          .channelMessages(guild.general.id)
          .filter((m) => m.interaction_token === discord.interactions.get(id)!.token),
      );
    await until(
      originals,
      (all) => all.every((m) => m[0]?.content.includes('/help - List the commands') ?? false),
      'every slash /help answered',
      30_000,
    );
    // SIGTERM finishes running jobs: a duplicate in flight would be sent before the exit.
    expect((await zero.stop('SIGTERM')).code).toBe(0);
    expect((await one.stop('SIGTERM')).code).toBe(0);

    expectOneAnswerEach(discord);
    for (const answer of originals()) expect(answer).toHaveLength(1);
    const byZero = taken(zero);
    const byOne = taken(one);
    for (const [id, guild] of [...first.asked, ...second.asked]) {
      const shard = guild ? shardOf(guild.id, 2) : 0;
      expect([byZero, byOne][shard]!.filter((m) => m.id === id)).toEqual([{ id, shard }]);
      expect([byZero, byOne][1 - shard]!.some((m) => m.id === id)).toBe(false);
    }
    for (const { guild, id } of slashes) {
      const shard = shardOf(guild.id, 2);
      const log = (bot: RunningChorus) =>
        bot.output().stderr.match(new RegExp(`discord interaction id=${id} `, 'g')) ?? [];
      expect(log([zero, one][shard]!)).toHaveLength(1);
      expect(log([zero, one][1 - shard]!)).toHaveLength(0);
    }
    // Each interaction was acknowledged once: a second callback would have been refused (40060).
    expect(discord.calls('POST', /^\/interactions\//)).toHaveLength(slashes.length);
    expect(checkDiscordRequests(discord.requests)).toEqual([]);
    expect(zero.output().stderr + one.output().stderr).not.toContain(discord.token);
  }, 90_000);

  it('shards: auto: the processes split the shards; after a kill -9 the survivor takes the dead one’s over', async () => {
    const { discord, start } = await world(3);
    const first = start('auto', 'auto');
    await first.waitFor(/discord shards running="0,1" shards=2 mode=auto/, 30_000);
    const second = start('auto', 'auto');
    // The first hands a shard over once it sees the second; the second runs it.
    await second.waitFor(/discord shard ready shard=\d shards=2/, 40_000);
    const handed = Number(
      /handing a discord shard to another process shard=(\d)/.exec(first.output().stderr)?.[1],
    );
    const kept = 1 - handed;
    expect(second.output().stderr).toContain(`discord shard ready shard=${handed} shards=2`);
    expect(first.output().stderr).toContain(`discord shard closed shard=${handed} shards=2`);

    const before = await askEveryGuild(discord, 'before');
    for (const [id, guild] of before.asked) {
      const shard = guild ? shardOf(guild.id, 2) : 0;
      expect((shard === kept ? taken(first) : taken(second)).filter((m) => m.id === id)).toHaveLength(1);
    }

    await first.stop('SIGKILL');
    // The dead process's lease runs out (10 s), the survivor's next round (every 2 s) takes it.
    await second.waitFor(new RegExp(`discord shard ready shard=${kept} shards=2`), 40_000);
    const after = await askEveryGuild(discord, 'after');
    expect((await second.stop('SIGTERM')).code).toBe(0);

    expectOneAnswerEach(discord);
    for (const id of after.asked.keys()) expect(taken(second).filter((m) => m.id === id)).toHaveLength(1);
    expect(checkDiscordRequests(discord.requests)).toEqual([]);
  }, 120_000);
});
