/**
 * Chorus as its users get it: `npm pack`, the tarball installed into a new project from the
 * registry's dependencies, `npx chorus-bot init my-bot`, the new project's own `npm test` and
 * `npm start`, nothing of this repository on the way. Two npm installs (each builds better-sqlite3)
 * make it slow, so `npm run test:package` runs it, and `.ci/run` runs that after `npm test`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const minutes = (n: number) => n * 60_000;

/** The environment of a user's shell: no npm script variables, no source export condition. */
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(npm_|NODE_OPTIONS$|VITEST|TEST$|NODE_ENV$|INIT_CWD$|FORCE_COLOR$)/i.test(name),
    ),
  ),
  NO_COLOR: '1',
};

function run(command: string, args: readonly string[], cwd: string, timeout = minutes(5), input = '') {
  const result = spawnSync(command, args, { cwd, env, input, encoding: 'utf8', timeout });
  result.stdout = stripVTControlCharacters(result.stdout);
  const output = `$ ${command} ${args.join(' ')} (in ${cwd}), status ${result.status}\n${result.stdout}\n${result.stderr}`;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output };
}

let dir: string;
let tarball: string;
let app: string;
let bot: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'chorus-package-'));
  const packed = run('npm', ['pack', '--json', '--pack-destination', dir], root);
  expect(packed.status, packed.output).toBe(0);
  const [manifest] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(dir, manifest!.filename);
  expect(manifest!.files.map((file) => file.path)).toEqual(
    expect.arrayContaining([
      'LICENSE',
      'README.md',
      'docs/api.md',
      'docs/architecture.md',
      'package.json',
      'dist/src/runtime/cli.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/testing.js',
      'dist/src/testing.d.ts',
      'dist/adapters/console/index.js',
      'dist/adapters/web/index.js',
      'dist/adapters/web/page/index.html',
      'dist/adapters/web/page/app.js',
      'dist/adapters/web/page/markdown.js',
      'dist/adapters/web/page/style.css',
      'dist/plugins/help/index.js',
      'starter/gitignore',
      'starter/plugins/status/index.ts',
    ]),
  );
  expect(
    manifest!.files.filter(
      (file) => /\.test\.|^src\/|^test\//.test(file.path) && !file.path.startsWith('starter/'),
    ),
  ).toEqual([]);

  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
  const installed = run('npm', ['install', '--no-audit', '--no-fund', tarball], app);
  expect(installed.status, installed.output).toBe(0);
}, minutes(10));

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the package, installed from its tarball', () => {
  it(
    '`npx chorus-bot init my-bot` writes a project that installs and passes its own npm test',
    () => {
      const init = run('npx', ['chorus-bot', 'init', 'my-bot'], app, minutes(1));
      expect(init.status, init.output).toBe(0);
      expect(init.stdout).toContain('plugins/status/index.ts, plugins/status/status.test.ts');
      bot = join(app, 'my-bot');
      const pkg = JSON.parse(readFileSync(join(bot, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      expect(pkg.dependencies['chorus-bot']).toBe('^0.1.0');
      expect(readFileSync(join(bot, '.gitignore'), 'utf8')).toContain('node_modules/');

      // chorus-bot is not on the registry yet: the tarball stands in for it; the rest comes from there.
      const installed = run('npm', ['install', '--no-audit', '--no-fund', tarball], bot);
      expect(installed.status, installed.output).toBe(0);
      const tested = run('npm', ['test'], bot);
      expect(tested.status, tested.output).toBe(0);
      expect(tested.stdout).toMatch(/Tests\s+2 passed/);
    },
    minutes(10),
  );

  it(
    'ships real type declarations: a type error against the API is reported',
    () => {
      const probe = join(bot, 'plugins/status/probe.ts');
      writeFileSync(
        probe,
        "import { asCompleted } from 'chorus-bot';\nimport { createTestBot } from 'chorus-bot/testing';\n" +
          'export const a: number = asCompleted;\nexport const b: string = createTestBot;\n',
      );
      const checked = run('npx', ['tsc'], bot, minutes(1));
      rmSync(probe);
      expect(checked.status, checked.output).toBe(2);
      expect(checked.stdout).toMatch(
        /probe\.ts\(3,14\): error TS2322: Type '.*Settled<.*' is not assignable to type 'number'/,
      );
      expect(checked.stdout).toMatch(
        /probe\.ts\(4,14\): error TS2322: Type '\(options: TestBotOptions\) => Promise<TestBot>'/,
      );
    },
    minutes(1),
  );

  it(
    '`npm start` runs the bot offline on the console: built-in and own plugins',
    () => {
      const started = run('npm', ['start', '--silent'], bot, minutes(1), '/help\n');
      expect(started.status, started.output).toBe(0);
      expect(started.stdout).toMatch(/\/status\b.*Ask every status page at once/);
      expect(started.stdout).toMatch(/\/remind\b/); // a built-in plugin, compiled, found in dist/
      expect(started.stderr).toMatch(/INFO {2}\[chorus\] adapter ready adapter=console/);
      expect(started.stderr).not.toMatch(/ (WARN|ERROR) /);
    },
    minutes(1),
  );

  it(
    'serves the web chat page and its files from the installed package',
    async () => {
      writeFileSync(join(bot, 'web.yaml'), 'adapters:\n  web: { port: 0 }\n');
      const child = spawn('npm', ['start', '--silent', '--', '--config', 'web.yaml'], { cwd: bot, env });
      let stderr = '';
      const ready = new Promise<string>((resolve) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const url = stderr.match(/web chat page ready url=(\S+)/)?.[1];
          if (url) resolve(url);
        });
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), minutes(1));
      try {
        const url = await Promise.race([ready, once(child, 'exit').then(() => '')]);
        expect(url, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
        const page = await fetch(url);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('<script type="module" src="/web/app.js">');
        for (const file of ['app.js', 'markdown.js', 'style.css'])
          expect((await fetch(new URL(`/web/${file}`, url))).status, file).toBe(200);
      } finally {
        child.kill('SIGTERM');
        await once(child, 'exit').catch(() => {});
        clearTimeout(timer);
      }
    },
    minutes(2),
  );

  it(
    'runs the TypeScript plugin of the project: /status against a local status page',
    async () => {
      const server = createServer((_request, response) =>
        response.end(
          JSON.stringify({ status: { indicator: 'none', description: 'All Systems Operational' } }),
        ),
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/status.json`;
      writeFileSync(
        join(bot, 'local.yaml'),
        `adapters:\n  console: {}\nplugins:\n  status:\n    pages:\n      - { name: Local, url: "${url}" }\n`,
      );
      // Asynchronous: the status page answers from this process while the bot runs.
      const child = spawn('npm', ['start', '--silent', '--', '--config', 'local.yaml'], { cwd: bot, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.stdin.end('/status\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), minutes(1));
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(timer);
      server.close();
      expect(code, stderr).toBe(0);
      expect(stdout.trim()).toBe('✓ Local: All Systems Operational');
    },
    minutes(2),
  );
});
