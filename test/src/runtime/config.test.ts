import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../../../src/errors.ts';
import { Redactor } from '../../../src/logger.ts';
import { validateConfig } from '../../../src/plugin.ts';
import { loadConfig, parseConfig } from '../../../src/runtime/config.ts';

async function issuesOf(promise: Promise<unknown>): Promise<readonly string[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('fills defaults and interpolates ${VAR} and ${VAR:-default}', async () => {
    const config = await parseConfig(
      'adapters:\n  console: { userName: "${WHO}" }\nhttp:\n  proxy: ${PROXY:-http://127.0.0.1:3128}\n',
      { env: { WHO: 'ada' } },
    );
    expect(config.adapters.console).toEqual({ userName: 'ada' });
    expect(config.http).toEqual({
      proxy: 'http://127.0.0.1:3128',
      connectTimeoutMs: 10_000,
      firstByteTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
    });
    expect(config.locale).toBe('en');
    expect(config.plugins).toEqual({});
  });

  it('names the key path of a missing environment variable', async () => {
    expect(
      await issuesOf(parseConfig('adapters:\n  telegram:\n    token: ${TELEGRAM_BOT_TOKEN}\n', { env: {} })),
    ).toEqual(['adapters.telegram.token: environment variable TELEGRAM_BOT_TOKEN is not set']);
  });

  it('suggests the right key for a typo, and says what was expected for a wrong type', async () => {
    const issues = await issuesOf(
      parseConfig(
        'adapters: { console: {} }\nhtpp: {}\nhttp:\n  conectTimeoutMs: 5\n  idleTimeoutMs: soon\n',
        { env: {} },
      ),
    );
    expect(issues).toEqual([
      'http.idleTimeoutMs: expected a number, got "soon"',
      'http.conectTimeoutMs: unknown key (did you mean "connectTimeoutMs"?)',
      'htpp: unknown key (did you mean "http"?)',
    ]);
  });

  it('reports YAML syntax errors with line and column', async () => {
    const issues = await issuesOf(parseConfig('adapters:\n  console: {\n', { env: {}, file: 'bot.yaml' }));
    expect(issues[0]).toMatch(/^bot\.yaml:\d+:\d+: /);
  });

  it('requires at least one adapter', async () => {
    expect(await issuesOf(parseConfig('adapters: {}\n', { env: {} }))).toEqual([
      'adapters: at least one adapter is needed (for example `console: {}`)',
    ]);
  });

  it('validates plugin sections through any Standard Schema, naming the path', async () => {
    const schema = z.strictObject({
      backends: z.array(z.strictObject({ name: z.string(), timeoutMs: z.number().positive() })),
    });
    const issues = await issuesOf(
      validateConfig(
        schema,
        {
          backends: [
            { name: 'flux', timeoutMs: -1 },
            { nmae: 'x', timeoutMs: 1 },
          ],
        },
        'plugins.draw',
      ),
    );
    expect(issues).toEqual([
      'plugins.draw.backends[0].timeoutMs: Too small: expected number to be >0',
      'plugins.draw.backends[1].name: required (expected string)',
      'plugins.draw.backends[1].nmae: unknown key (did you mean "name"?)',
    ]);
  });

  it('reads --config, then CHORUS_CONFIG, then config/chorus.yaml; a .env file fills unset variables', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
    writeFileSync(join(dir, 'bot.yaml'), 'locale: zh-CN\nadapters:\n  console: { userName: "${NAME}" }\n');
    writeFileSync(join(dir, '.env'), 'NAME=from-dotenv\nAPI_TOKEN=abcdef123456\n');
    const fromFlag = await loadConfig({ path: 'bot.yaml', cwd: dir, env: {} });
    expect(fromFlag.config.locale).toBe('zh-CN');
    expect(fromFlag.config.adapters.console).toEqual({ userName: 'from-dotenv' });
    const fromEnv = await loadConfig({ cwd: dir, env: { CHORUS_CONFIG: 'bot.yaml', NAME: 'from-env' } });
    expect(fromEnv.config.adapters.console).toEqual({ userName: 'from-env' });
    const fallback = await loadConfig({ cwd: dir, env: {}, fallback: 'adapters: { console: {} }' });
    expect(fallback.path).toBeUndefined();
    expect(await issuesOf(loadConfig({ path: 'missing.yaml', cwd: dir, env: {} }))).toEqual([
      `config file not found: ${join(dir, 'missing.yaml')}`,
    ]);
  });

  it('registers secrets read into secret-looking keys so logs can hide them', async () => {
    const redactor = new Redactor();
    await parseConfig('adapters:\n  console: {}\n  x:\n    token: ${TG}\n    apiKey: literal-key-123\n', {
      env: { TG: '12345:secret-token-value' },
      redactor,
    });
    expect(redactor.redact('a 12345:secret-token-value b literal-key-123')).toBe('a *** b ***');
  });
});

describe('state', () => {
  it('lives in .chorus/state.sqlite unless state.path says otherwise; typos are named', async () => {
    const env = {};
    expect((await parseConfig('adapters:\n  console: {}\n', { env })).state).toEqual({
      path: '.chorus/state.sqlite',
    });
    expect(
      (await parseConfig('adapters:\n  console: {}\nstate: { path: /var/lib/bot.sqlite }\n', { env })).state,
    ).toEqual({ path: '/var/lib/bot.sqlite' });
    expect(await issuesOf(parseConfig('adapters:\n  console: {}\nstate: { pth: x }\n', { env }))).toEqual([
      'state.pth: unknown key (did you mean "path"?)',
    ]);
  });
});
