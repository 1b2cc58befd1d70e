/**
 * Chorus on Discord as its users run it: `npm start -- --config FILE` against the fake REST API and
 * gateway (Retry-After 429s enforced), with draw and ask on fake backends over HTTP, the REST calls
 * through the proxy `http.proxy` names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeDiscord, type FakeDiscordUser } from '../fakes/discord/server.ts';
import { checkDiscordRequests } from '../fakes/discord/spec.ts';
import { startFakeProxy } from '../fakes/http.ts';
import {
  type Backends,
  llmApiKey,
  type RunningChorus,
  startBackends,
  startChorus,
  until,
  workDir,
} from './harness.ts';

const ann: FakeDiscordUser = { id: '500000000000000501', username: 'ann', global_name: 'Ann' };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface World extends Backends {
  readonly discord: FakeDiscord;
  /** Forwards every tunnel to the fake Discord, whatever host it was asked for. */
  readonly proxy: Awaited<ReturnType<typeof startFakeProxy>>;
  readonly dir: string;
}

async function world(): Promise<World> {
  const discord = await new FakeDiscord().start();
  const proxy = await startFakeProxy({ port: Number(new URL(discord.url).port) });
  const backends = await startBackends();
  cleanups.push(
    () => discord.close(),
    () => proxy.close(),
    () => backends.close(),
  );
  return { ...backends, discord, proxy, dir: workDir() };
}

/** The README's Discord section, pointed at the fakes: the REST API by a name only the proxy knows. */
function run(w: World): RunningChorus {
  const config = [
    // A state store of this run's own: the fake's event ids repeat from one run to the next.
    `state: { path: ${w.dir}/state.sqlite }`,
    `http: { proxy: ${w.proxy.url} }`,
    'adapters:',
    '  discord:',
    '    token: ${DISCORD_BOT_TOKEN}',
    '    prefix: "!"',
    '    api: http://discord.test/api',
    ...w.plugins(w.dir, 2),
    '',
  ].join('\n');
  const bot = startChorus(w.dir, config, {
    env: { DISCORD_BOT_TOKEN: w.discord.token, OPENAI_API_KEY: llmApiKey },
  });
  cleanups.push(() => bot.stop('SIGKILL'));
  return bot;
}

const botMessages = (fake: FakeDiscord, channelId: string) =>
  fake.channelMessages(channelId).filter((m) => m.author.id === fake.bot.id);

describe('npm start on Discord', () => {
  it('a slash /draw and a prefix !draw in a thread each send every album with its attachments', async () => {
    const w = await world();
    const bot = run(w);
    await bot.waitFor(/adapter ready adapter=discord/);

    w.discord.userSays(w.discord.general, ann, '!help');
    await until(
      () => botMessages(w.discord, w.discord.general.id),
      (m) => m.length === 1,
      'the /help list',
    );
    expect(botMessages(w.discord, w.discord.general.id)[0]!.content).toContain('!draw <prompt>');

    w.discord.userRunsCommand(w.discord.general, ann, 'draw', { prompt: 'a red fox' });
    const slashStatus = await until(
      () => botMessages(w.discord, w.discord.general.id).find((m) => m.interaction_token),
      (m) => m?.content.startsWith('Finished: ') ?? false,
      'the slash draw’s finished status',
    );
    expect(slashStatus!.content.split('\n')[0]).toBe('Finished: 3/4 backends delivered');
    const slashAlbums = botMessages(w.discord, w.discord.general.id).filter((m) => m.attachments.length > 0);
    expect(slashAlbums.map((m) => [m.content.split(' · ')[0], m.attachments.length])).toEqual([
      ['quick', 2],
      ['steady', 2],
      ['slow', 2],
    ]);

    w.discord.userSays(w.discord.thread, ann, '!draw a blue whale');
    const threadStatus = await until(
      () => botMessages(w.discord, w.discord.thread.id)[0],
      (m) => m?.content.startsWith('Finished: ') ?? false,
      'the thread draw’s finished status',
    );
    expect(threadStatus!.content).toContain('✗ broken: refused (HTTP 500)');
    const threadAlbums = botMessages(w.discord, w.discord.thread.id).filter((m) => m.attachments.length > 0);
    expect(threadAlbums.map((m) => m.content.split(' · ')[0])).toEqual(['quick', 'steady', 'slow']);
    // Replies to the thread stay in the thread.
    expect(botMessages(w.discord, w.discord.general.id).filter((m) => /blue whale/.test(m.content))).toEqual(
      [],
    );

    // A slash /ask streams through the deferred reply.
    w.llm.script('gpt-test', { pieces: ['Rayleigh ', 'scattering ', 'makes ', 'it ', 'blue.'], gapMs: 150 });
    w.discord.userRunsCommand(w.discord.general, ann, 'ask', { question: 'why is the sky blue?' });
    const answer = await until(
      () => botMessages(w.discord, w.discord.general.id).find((m) => m.content.includes('Rayleigh')),
      (m) => m?.content.includes('Rayleigh scattering makes it blue.') ?? false,
      'the whole answer',
    );
    expect(answer!.edits).toBeGreaterThan(0);

    const { code, ms } = await bot.stop('SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(checkDiscordRequests(w.discord.requests)).toEqual([]);
    // Every REST call went through the proxy (the gateway and the loopback backends do not).
    expect(new Set(w.proxy.hosts)).toEqual(new Set(['discord.test:80']));
    expect(bot.output().stderr).not.toMatch(/unreachable|action is not a function/);
    expect(bot.output().stderr).not.toContain(w.discord.token);
  }, 60_000);
});
