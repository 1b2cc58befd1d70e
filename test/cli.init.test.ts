/**
 * `chorus init DIR` and the command line's subcommands, through the real CLI. The whole journey
 * (pack, install, init, the new project's npm test and npm start) is test/package.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tsx = resolve(root, 'node_modules/.bin/tsx');

function chorus(args: string[], cwd: string, input = '') {
  const result = spawnSync(tsx, [resolve(root, 'src/runtime/cli.ts'), ...args], {
    cwd,
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('chorus init', () => {
  it('writes a project: package.json on this version of chorus-bot, config, plugin, test, tsconfig', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-init-'));
    const { code, stdout, stderr } = chorus(['init', 'My Bot'], dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(
      'chorus: wrote My Bot/: package.json, README.md, chorus.yaml, .gitignore, tsconfig.json, plugins/status/index.ts, plugins/status/status.test.ts',
    );
    // From this clone (chorus-bot is not on the registry yet), the install step names the tarball.
    expect(stdout).toContain(
      `\n  cd My Bot\n  npm install ${join(root, 'chorus-bot-0.1.0.tgz')}   # made by npm pack in ${root}\n`,
    );
    const ours = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      version: string;
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const pkg = JSON.parse(readFileSync(join(dir, 'My Bot/package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      name: 'my-bot',
      private: true,
      type: 'module',
      scripts: {
        start: 'chorus start --config chorus.yaml',
        dev: 'chorus start --watch --config chorus.yaml',
        test: 'tsc && vitest run',
      },
      dependencies: { 'chorus-bot': `^${ours.version}`, zod: ours.dependencies.zod },
      devDependencies: { typescript: ours.devDependencies.typescript, vitest: ours.devDependencies.vitest },
    });
    for (const file of ['chorus.yaml', 'plugins/status/index.ts', 'plugins/status/status.test.ts']) {
      expect(readFileSync(join(dir, 'My Bot', file), 'utf8')).toBe(
        readFileSync(join(root, 'starter', file), 'utf8'),
      );
    }
    expect(readFileSync(join(dir, 'My Bot/.gitignore'), 'utf8')).toContain('node_modules/');
    expect(existsSync(join(dir, 'My Bot/gitignore'))).toBe(false);
  });

  it('refuses a folder that is not empty, and changes nothing in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-init-'));
    mkdirSync(join(dir, 'bot'));
    writeFileSync(join(dir, 'bot/chorus.yaml'), 'mine');
    const { code, stderr } = chorus(['init', 'bot'], dir);
    expect(code).toBe(2);
    expect(stderr).toBe('chorus: bot exists and is not empty\n');
    expect(readFileSync(join(dir, 'bot/chorus.yaml'), 'utf8')).toBe('mine');
    expect(existsSync(join(dir, 'bot/package.json'))).toBe(false);
  });

  it('needs a folder', () => {
    const { code, stderr } = chorus(['init'], root);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^chorus: init needs the folder of the new project\nusage: chorus/);
  });

  it("the starter's config checks: its plugin is found and its section validates", () => {
    const { code, stdout, stderr } = chorus(
      ['start', '--check', '--config', 'chorus.yaml'],
      join(root, 'starter'),
    );
    expect(stderr).toBe('');
    expect(stdout).toBe(
      `chorus: config ok: ${join(root, 'starter/chorus.yaml')} (adapters: console; plugins: help, remind, status)\n`,
    );
    expect(code).toBe(0);
  });
});

describe('chorus subcommands', () => {
  it('`chorus start --config FILE` and `chorus --config FILE` run the same bot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-start-'));
    writeFileSync(join(dir, 'chorus.yaml'), 'adapters:\n  console: {}\nplugins:\n  remind: false\n');
    const explicit = chorus(['start', '--config', 'chorus.yaml'], dir, '/help\n');
    const implicit = chorus(['--config', 'chorus.yaml'], dir, '/help\n');
    expect(explicit.code).toBe(0);
    expect(explicit.stdout).toMatch(/\/help\b/);
    expect(implicit).toMatchObject({ code: 0, stdout: explicit.stdout });
  });

  it('an unknown command prints the usage and exits 2; --help and help print it and exit 0', () => {
    const unknown = chorus(['serve'], root);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^chorus: unknown command: serve\nusage: chorus \[start\]/);
    for (const args of [['--help'], ['help'], ['start', '--help'], ['init', '--help']]) {
      const help = chorus(args, root);
      expect(help.code, args.join(' ')).toBe(0);
      expect(help.stdout).toMatch(
        /^usage: chorus \[start\] \[--config FILE\] \[--check\] \[--watch\]\n {7}chorus init DIR\n/,
      );
    }
  }, 30_000);
});
