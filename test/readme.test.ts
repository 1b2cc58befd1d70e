import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

describe('README', () => {
  it('shows the example plugin and its test exactly as they are in examples/ (where they are tested)', () => {
    expect(blocks).toContain(readFileSync(resolve(root, 'examples/nudge/index.ts'), 'utf8'));
    expect(blocks).toContain(readFileSync(resolve(root, 'examples/nudge/nudge.test.ts'), 'utf8'));
  });

  it('gives the quick-start commands that package.json and .ci/run use', () => {
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const ci = readFileSync(resolve(root, '.ci/run'), 'utf8');
    expect(readme).toContain('\nnpm ci && npm start ');
    expect(readme).toContain('\nnpm test ');
    expect(pkg.scripts.start).toBeDefined();
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
  });

  it('has configs that start: every yaml block with adapters passes `chorus --check`', () => {
    const configs = [...readme.matchAll(/```ya?ml\n(.*?)```/gs)]
      .map((match) => match[1]!)
      .filter((block) => /^adapters:/m.test(block));
    expect(configs.length).toBeGreaterThanOrEqual(2);
    const dir = mkdtempSync(join(tmpdir(), 'chorus-readme-'));
    for (const [index, config] of configs.entries()) {
      const file = join(dir, `readme-${index}.yaml`);
      writeFileSync(file, config);
      const env: Record<string, string> = {};
      for (const [, name] of config.matchAll(/\$\{([A-Z0-9_]+)/g)) {
        env[name!] = /TELEGRAM.*TOKEN/.test(name!)
          ? '123456789:AAHplaceholderplaceholderplace'
          : /DISCORD.*TOKEN/.test(name!)
            ? 'MTAxMjM0NTY3ODkwMTIzNDU2Nzg5.GhXyZa.placeholderplaceholderplaceholder12'
            : /REDIS.*URL/.test(name!)
              ? 'redis://127.0.0.1:6379'
              : name === 'PORT'
                ? '8080'
                : 'placeholder-value-0123456789';
      }
      const result = spawnSync(
        process.execPath,
        ['--import', 'tsx', resolve(root, 'src/runtime/cli.ts'), '--check', '--config', file],
        {
          cwd: root,
          env: { ...process.env, ...env },
          encoding: 'utf8',
          timeout: 30_000,
        },
      );
      expect(result.stderr, `README config ${index + 1}:\n${config}`).toBe('');
      expect(result.stdout).toMatch(/^chorus: config ok: /);
      expect(result.status).toBe(0);
    }
  }, 60_000);

  it('has the lines for several processes take, beside a webhook adapter, a port and a Redis URL from the environment', () => {
    const fragment = [...readme.matchAll(/```ya?ml\n(.*?)```/gs)]
      .map((match) => match[1]!)
      .find((block) => /^state:\n {2}redis:/m.test(block) && !/^adapters:/m.test(block));
    expect(fragment).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'chorus-readme-'));
    const file = join(dir, 'several.yaml');
    writeFileSync(
      file,
      `${fragment}adapters:\n  telegram:\n    token: \${TELEGRAM_BOT_TOKEN}\n    mode: webhook\n` +
        '    webhook: { url: "https://bot.example.com/telegram", path: /telegram, secretToken: s3cret-s3cret }\n',
    );
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', resolve(root, 'src/runtime/cli.ts'), '--check', '--config', file],
      {
        cwd: root,
        env: {
          ...process.env,
          PORT: '8081',
          REDIS_URL: 'redis://127.0.0.1:6379',
          TELEGRAM_BOT_TOKEN: '123456789:AAHplaceholderplaceholderplace',
        },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^chorus: config ok: /);
  });

  it('lists every folder in its layout table', () => {
    const layout = readme.slice(readme.indexOf('## Project layout'), readme.indexOf('## Benchmarks'));
    const folders = ['.', 'adapters', 'plugins', 'test'].flatMap((parent) =>
      readdirSync(resolve(root, parent), { withFileTypes: true })
        .filter(
          (entry) => entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules',
        )
        .map((entry) => (parent === '.' ? entry.name : `${parent}/${entry.name}`)),
    );
    for (const folder of folders) {
      const listed =
        layout.includes(`\`${folder}/\``) ||
        (folder.startsWith('test/') && layout.includes(`\`${folder.slice(5)}/\``));
      expect(listed, `${folder}/ in the layout table`).toBe(true);
    }
  });
});
