import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tsx = resolve(root, 'node_modules/.bin/tsx');

function chorus(args: string[], input: string, env: Record<string, string> = {}) {
  const result = spawnSync(tsx, [resolve(root, 'src/runtime/cli.ts'), ...args], {
    cwd: root,
    input,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-cli-'));
  const file = join(dir, 'chorus.yaml');
  writeFileSync(file, text);
  return file;
}

describe('chorus CLI', () => {
  it('`printf "/help\\n" | npm start` prints the command list and exits 0', () => {
    const { code, stdout } = chorus([], '/help\n');
    expect(code).toBe(0);
    expect(stdout).toContain('Commands:');
    expect(stdout).toContain('/help - List the commands');
    expect(stdout).toContain('/cancel - Cancel your running jobs');
  });

  it('`printf "/draw a red fox\\n" | npm start` shows demo albums arriving one by one, offline', () => {
    const { code, stdout } = chorus([], '/draw a red fox\n');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('Drawing with 3 backends...');
    const fast = lines.findIndex((line) => /^demo-fast · \d+\.\ds$/.test(line));
    const steady = lines.findIndex((line) => /^demo-steady · \d+\.\ds$/.test(line));
    expect(fast).toBeGreaterThan(0);
    expect(steady).toBeGreaterThan(fast);
    const images = lines.filter((line) => line.startsWith('  [image] ')).map((line) => line.slice(10));
    expect(images.length).toBeGreaterThanOrEqual(5);
    for (const image of images) expect(readFileSync(image).subarray(1, 4).toString()).toBe('PNG');
    expect(lines.find((line) => line.startsWith('Finished: '))).toMatch(
      /^Finished: [23]\/3 backends delivered$/,
    );
  });

  it('`printf "/ask why is the sky blue?\\n" | npm start` streams a demo answer offline, printed once', () => {
    const { code, stdout } = chorus([], '/ask why is the sky blue?\n');
    expect(code).toBe(0);
    expect(stdout).toContain("**[demo model]** This answer comes from Chorus's built-in demo model");
    expect(stdout).toContain('You asked: “why is the sky blue?”');
    expect(stdout.split('[demo model]')).toHaveLength(2);
  });

  it('a config fails at start with every problem in one run, one line each, no stack trace, no secret', () => {
    const file = configFile(
      [
        'adapters:',
        '  consle: {}',
        '  slack: { token: "${SLACK_TOKEN}" }',
        '  console: { userName: "${CHORUS_TEST_UNSET}" }',
        'plugins:',
        '  nosuchplugin: {}',
        '  draw: { maxPerUsr: 2 }',
        'http:',
        '  proxi: x',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = chorus(['--config', file], '', {
      SLACK_TOKEN: 'xoxb-very-secret-value',
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const available = '(available: console, discord, telegram, web)';
    expect(stderr.trim().split('\n')).toEqual([
      'chorus: config error: adapters.console.userName: environment variable CHORUS_TEST_UNSET is not set',
      'chorus: config error: http.proxi: unknown key (did you mean "proxy"?)',
      'chorus: config error: adapters.consle: unknown adapter "consle": no folder adapters/consle and no installed npm package "consle" (did you mean "console"? available: console, discord, telegram, web)',
      `chorus: config error: adapters.slack: unknown adapter "slack": no folder adapters/slack and no installed npm package "slack" ${available}`,
      'chorus: config error: plugins.nosuchplugin: unknown plugin "nosuchplugin": no folder plugins/nosuchplugin and no installed npm package "nosuchplugin" (available: ask, draw, help, remind)',
      'chorus: config error: plugins.draw.backends: required (expected array)',
      'chorus: config error: plugins.draw.maxPerUsr: unknown key (did you mean "maxPerUser"?)',
    ]);
    expect(stderr).not.toContain('xoxb-very-secret-value');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('answers /start and /help in every config, unless the config says help: false', () => {
    const on = chorus(
      ['--config', configFile('adapters:\n  console: {}\nplugins:\n  remind: false\n')],
      '/start\n',
    );
    expect(on.code).toBe(0);
    expect(on.stdout).toMatch(/^Hi you! I am /);
    expect(on.stdout).toContain('/help - List the commands');
    const off = chorus(
      ['--config', configFile('adapters:\n  console: {}\nplugins:\n  help: false\n  remind: false\n')],
      '/help\n/start\n',
    );
    expect(off.code).toBe(0);
    expect(off.stdout).not.toContain('List the commands');
    expect(off.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/\/help/),
      expect.stringMatching(/\/start/),
    ]);
  });

  it('a platform that cannot be reached at start says why and what to check, without the token', async () => {
    // A port that refuses connections: listen, note the port, close.
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const token = '123456:ABCdefGhIJKlmnoPQRsTUVwxyz0123456789';
    const file = configFile(
      `adapters:\n  telegram:\n    token: \${TELEGRAM_BOT_TOKEN}\n    apiRoot: http://127.0.0.1:${port}\nplugins:\n  help: {}\n`,
    );
    const { code, stderr } = chorus(['--config', file], '', { TELEGRAM_BOT_TOKEN: token });
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n').slice(-3);
    expect(lines[0]).toBe('chorus: AdapterError(ADAPTER_NETWORK): telegram unreachable (getMe)');
    expect(lines[1]).toMatch(/^chorus: {3}because: /);
    expect(lines[2]).toContain('the platform was not reached: check the network, a proxy (HTTPS_PROXY)');
    expect(stderr).not.toContain(token.split(':')[1]);
  });

  it('an unknown command-line flag prints the usage and exits 2', () => {
    const { code, stdout, stderr } = chorus(['--confg', 'x.yaml'], '');
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toBe('chorus: unknown argument: --confg');
    expect(stderr).toContain('usage: chorus [start] [--config FILE] [--check]');
  });

  it('takes ${VAR} inside YAML flow maps, and a number from a variable in a numeric key', () => {
    const file = configFile(
      [
        'adapters:',
        '  console: { userName: ${CHORUS_TEST_NAME} }',
        'plugins:',
        '  draw: { maxPerUser: ${CHORUS_TEST_MAX}, backends: [{ name: d, type: demo, latencyMs: 1 }] }',
        '',
      ].join('\n'),
    );
    const ok = chorus(['--config', file], '/help\n', { CHORUS_TEST_NAME: 'ann', CHORUS_TEST_MAX: '2' });
    expect(ok.stderr).not.toContain('config error');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('/draw');
    const bad = chorus(['--config', file], '', { CHORUS_TEST_NAME: 'ann', CHORUS_TEST_MAX: 'many' });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe(
      'chorus: config error: plugins.draw.maxPerUser: expected a number, got "many"',
    );
  });
});

describe('plugin loading', () => {
  it('loads a plugin from an npm package installed in the bot’s project', async () => {
    const { mkdirSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'chorus-npm-'));
    const pkg = join(dir, 'node_modules/chorus-plugin-hello');
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: 'chorus-plugin-hello',
        type: 'module',
        exports: { '.': { import: './dist/index.js' } },
      }),
    );
    writeFileSync(
      join(pkg, 'dist/index.js'),
      `export default {
  name: 'hello',
  setup(ctx, config) {
    ctx.command({ name: 'hello', description: 'Say hello' }, (c) => c.reply('hello, ' + config.who));
  },
};
`,
    );
    writeFileSync(
      join(dir, 'chorus.yaml'),
      'adapters:\n  console: {}\nplugins:\n  chorus-plugin-hello: { who: world }\n',
    );
    const result = spawnSync(tsx, [resolve(root, 'src/runtime/cli.ts'), '--config', 'chorus.yaml'], {
      cwd: dir,
      input: '/hello\n',
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe('hello, world');
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM stops taking messages, aborts jobs, finishes their status messages, exits 0', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdirSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'chorus-sig-'));
    mkdirSync(join(dir, 'plugins/slow'), { recursive: true });
    writeFileSync(
      join(dir, 'plugins/slow/index.ts'),
      `import { definePlugin } from ${JSON.stringify(resolve(root, 'src/index.ts'))};
export const plugin = definePlugin({
  name: 'slow',
  setup(ctx) {
    ctx.command({ name: 'slow', description: 'never ends' }, async (c) => {
      await c.status('Drawing with 3 backends...');
      await new Promise((_, reject) => c.signal.addEventListener('abort', () => reject(c.signal.reason)));
    });
  },
});
`,
    );
    writeFileSync(join(dir, 'chorus.yaml'), 'adapters:\n  console: {}\nplugins:\n  slow: {}\n');
    const child = spawn(tsx, [resolve(root, 'src/runtime/cli.ts'), '--config', 'chorus.yaml'], {
      cwd: dir,
      stdio: 'pipe',
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('Drawing with 3 backends...') && !child.killed) child.kill('SIGTERM');
    });
    child.stdin.write('/slow\n');
    const code = await new Promise<number | null>((done) => child.on('exit', (status) => done(status)));
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([
      'Drawing with 3 backends...',
      'Stopped: the bot is shutting down.',
    ]);
  });
});
