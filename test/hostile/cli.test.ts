/**
 * The product as users run it: `npm start -- --config FILE` on the console, piped input, against
 * a hostile backend that hands out a redirect chain into an internal service, a stream without a
 * newline, and an error that echoes the key it was sent.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  type Hostile,
  hostileRoutes,
  type Internal,
  startHostile,
  startInternal,
  writeEndless,
} from './servers.ts';

const root = resolve(import.meta.dirname, '../..');
const secret = 'vendor-0123456789abcdef';

let hostile: Hostile;
let internal: Internal;
beforeEach(async () => {
  hostile = await startHostile();
  internal = await startInternal();
  hostileRoutes(hostile, internal);
});
afterEach(async () => {
  await hostile.close();
  await internal.close();
});

/** Runs the CLI without blocking this process, which serves the fake backends. */
function chorus(args: string[], input: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn('npm', ['start', '--silent', '--', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

it('through the CLI: refused links, a capped stream, a short reason, no secret in output or log', async () => {
  hostile.server.route('POST', '/v1/chat/completions', (_, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' }).write('data: ');
    return writeEndless(res, Buffer.alloc(64 * 1024, 'x'), () => {});
  });
  const dir = mkdtempSync(join(tmpdir(), 'chorus-hostile-'));
  const file = join(dir, 'chorus.yaml');
  writeFileSync(
    file,
    [
      'log: { level: debug }',
      'adapters:',
      `  console: { imageDir: ${join(dir, 'images')} }`,
      'plugins:',
      '  draw:',
      '    backends:',
      `      - { name: evil, type: openai-images, baseUrl: "${hostile.url}/urls", headers: { X-Api-Key: "\${VENDOR_KEY}" } }`,
      `      - { name: echo, type: openai-images, baseUrl: "${hostile.url}/echo", apiKey: "\${VENDOR_KEY}" }`,
      '  ask:',
      `    memory: { path: ${join(dir, 'ask.sqlite')} }`,
      '    backends:',
      `      - { name: llm, type: openai, model: m, baseUrl: "${hostile.url}/v1", apiKey: "\${VENDOR_KEY}" }`,
    ].join('\n'),
  );
  const { code, stdout, stderr } = await chorus(
    ['--config', file],
    `/draw ${hostile.url}/hop1\n/ask hello\n`,
    { VENDOR_KEY: secret },
  );
  expect(code).toBe(0);
  expect(stdout).toContain('✗ evil: refused to follow a link to a private address');
  expect(stdout).toContain('✗ echo: refused (HTTP 401)');
  expect(stdout).toContain('(answer cut short: unusable answer)');
  expect(internal.hits()).toBe(0);
  expect(stderr).toContain('refused');
  expect(stderr).toContain('answered HTTP 401');
  expect(`${stdout}\n${stderr}`).not.toContain(secret);
  expect(`${stdout}\n${stderr}`).not.toContain('0123456789abcdef');
});
