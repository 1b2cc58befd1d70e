/**
 * Hostile input at the edges: a YAML alias bomb, duplicate backend names, non-HTTP URLs, a lone
 * surrogate in a prompt, a megabyte-long unknown command, secrets under unusual names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { askConfig } from '../../plugins/ask/config.ts';
import { drawConfig } from '../../plugins/draw/config.ts';
import { plugin as draw } from '../../plugins/draw/index.ts';
import { ConfigError } from '../../src/errors.ts';
import { Redactor } from '../../src/logger.ts';
import { validateConfig } from '../../src/plugin.ts';
import { parseConfig } from '../../src/runtime/config.ts';
import { createTestBot, type TestBot } from '../../src/testing.ts';
import { startFakeServer } from '../fakes/http.ts';
import { labelledPng } from '../fakes/images.ts';

const kits: TestBot[] = [];
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
});

async function configIssues(run: () => Promise<unknown>): Promise<readonly string[]> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).issues;
}

describe('hostile config and input', () => {
  it('a YAML alias bomb is one config error with its position, not a frozen or crashed bot', async () => {
    const bomb = [
      'adapters: { console: {} }',
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n');
    expect(await configIssues(() => parseConfig(bomb, { env: {}, file: 'bot.yaml' }))).toEqual([
      'bot.yaml:3:8: aliases expand too much (more than 100 times): an alias bomb?',
    ]);
    expect(
      await configIssues(() => parseConfig('adapters: *nowhere\n', { env: {}, file: 'bot.yaml' })),
    ).toEqual(['bot.yaml:1:11: alias *nowhere has no anchor before it']);
  });

  it('duplicate backend names and non-HTTP URLs are config errors naming the key', async () => {
    const backend = { type: 'openai-images', baseUrl: 'https://a.example/v1' };
    expect(
      await configIssues(() =>
        validateConfig(
          drawConfig,
          {
            backends: [
              { name: 'a', ...backend },
              { name: 'a', ...backend },
              { name: 'b', type: 'openai-images', baseUrl: 'ftp://files.example/', proxy: 'socks5://p:1' },
            ],
          },
          'plugins.draw',
        ),
      ),
    ).toEqual([
      'plugins.draw.backends[2].proxy: an http:// or https:// URL',
      'plugins.draw.backends[2].baseUrl: an http:// or https:// URL',
      'plugins.draw.backends[1].name: "a" is taken by backends[0]',
    ]);
    expect(
      await configIssues(() =>
        validateConfig(
          askConfig,
          {
            backends: [
              { name: 'x', type: 'ollama', model: 'm', baseUrl: 'file:///tmp/socket' },
              { name: 'x', type: 'demo' },
            ],
          },
          'plugins.ask',
        ),
      ),
    ).toEqual([
      'plugins.ask.backends[0].baseUrl: an http:// or https:// URL',
      'plugins.ask.backends[1].name: "x" is taken by backends[0]',
    ]);
  });

  it('secrets from variables named *KEY*, *TOKEN*, *SECRET*, *PASSWORD* and from any header are redacted', async () => {
    const redactor = new Redactor();
    await parseConfig(
      [
        'adapters: { console: {} }',
        'plugins:',
        '  draw:',
        '    backends:',
        '      - { name: a, type: http-image, url: "http://a.example/{prompt}", headers: { X-Api-Key: "${VENDOR_KEY}", X-Tenant: literal-tenant-id } }',
      ].join('\n'),
      {
        env: { VENDOR_KEY: 'vendor-key-value-1', DB_PASSWORD: 'hunter2-password', UNRELATED: 'plain-value' },
        redactor,
      },
    );
    redactor.addEnv({ DB_PASSWORD: 'hunter2-password', UNRELATED: 'plain-value' });
    expect(
      redactor.redact(
        'vendor-key-value-1 literal-tenant-id hunter2-password plain-value vendor-key-value-1%20 "hunter2-password"',
      ),
    ).toBe('*** *** *** plain-value ***%20 "***"');
    expect(redactor.redact(encodeURIComponent('a b/vendor-key-value-1?'))).not.toContain(
      'vendor-key-value-1',
    );
  });

  it('a lone surrogate in a prompt is sanitized; a megabyte unknown command is not echoed', async () => {
    const server = await startFakeServer();
    const seen: string[] = [];
    server.route('GET', '/img', (req, res) => {
      seen.push(new URL(req.url!, server.url).searchParams.get('p')!);
      res.writeHead(200, { 'content-type': 'image/png' }).end(labelledPng('ok'));
    });
    const kit = await createTestBot({
      plugins: [
        {
          plugin: draw,
          config: { backends: [{ name: 'b', type: 'http-image', url: `${server.url}/img?p={prompt}` }] },
        },
      ],
      realTime: true,
    });
    kits.push(kit);
    await kit.run(kit.send('/draw fox \uD83D tail'));
    expect(seen).toEqual(['fox \uFFFD tail']);
    expect(kit.adapter.messages()[0]!.text).toMatch(/^Finished: 1\/1/);
    await kit.run(kit.send(`/${'x'.repeat(1024 * 1024)}`));
    await kit.run(kit.send('/nosuchcommand'));
    expect(kit.adapter.texts().slice(-1)).toEqual(['Unknown command /nosuchcommand. Try /help.']);
    expect(kit.adapter.texts().every((text) => text.length < 1000)).toBe(true);
    await server.close();
  });
});
