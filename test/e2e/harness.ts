/**
 * Runs Chorus the way its users do: `npm start -- --config FILE`, a child process, with the config
 * written to a temporary folder. The platform and backend fakes run in the test's process on
 * 127.0.0.1; the bot reaches them over real HTTP and WebSocket connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type FakeImageBackends, startFakeImageBackends } from '../fakes/images.ts';
import { type FakeLlm, startFakeLlm } from '../fakes/llm.ts';

const root = resolve(import.meta.dirname, '../..');

/** A running `npm start`. */
export interface RunningChorus {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  readonly output: () => { stdout: string; stderr: string };
  /** Resolves once `pattern` shows up on stderr (the log) or stdout; rejects after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  /** Sends `signal` (SIGKILL: to the bot under npm too) and resolves with the exit code and how long the exit took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
}

/** A port nothing listens on now, for a bot to take (through `${PORT}` in its config). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A fresh folder for one test's config and state. */
export function workDir(prefix = 'chorus-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts `npm start -- --config <dir>/chorus.yaml` with `config` as the file. With `cwd`, runs the
 * same command (`node --import tsx src/runtime/cli.ts`, through tsx's binary) in that folder, as a bot
 * project with its own `plugins/` does; `args` go after the config.
 */
export function startChorus(
  dir: string,
  config: string,
  options: { env?: Record<string, string>; cwd?: string; args?: readonly string[] } = {},
): RunningChorus {
  const file = join(dir, 'chorus.yaml');
  writeFileSync(file, config);
  const args = ['--config', file, ...(options.args ?? [])];
  const [command, argv] = options.cwd
    ? [join(root, 'node_modules/.bin/tsx'), [join(root, 'src/runtime/cli.ts'), ...args]]
    : ['npm', ['start', '--silent', '--', ...args]];
  const child = spawn(command, argv, {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
    // A process group of its own, so that SIGKILL reaches the bot under npm, not npm alone.
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of watchers) check();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const check of watchers) check();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => ({ stdout, stderr }),
    exited,
    waitFor(pattern, ms = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stderr) || pattern.test(stdout)) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`waited ${ms} ms for ${pattern}; the bot printed:\n${stderr}\n${stdout}`));
        }, ms);
        void exited.then(() => {
          if (!watchers.has(check)) return;
          watchers.delete(check);
          clearTimeout(timer);
          check();
          reject(new Error(`the bot exited before ${pattern}; it printed:\n${stderr}\n${stdout}`));
        });
        watchers.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) {
        // npm passes SIGTERM and SIGINT on to the bot; SIGKILL cannot be passed on, so it goes
        // to the whole group (npm, its shell, the bot), as a crash takes the whole container.
        if (signal === 'SIGKILL' && child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      }
      const code = await exited;
      return { code, ms: Date.now() - started };
    },
  };
}

/** Polls `read` (a value, or a promise of one) until `ok` holds; fails after `ms` saying what it waited for. */
export async function until<T>(
  read: () => T | Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`waited ${ms} ms for ${what}; last seen: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The backends every end-to-end run draws and asks with, on 127.0.0.1. */
export interface Backends {
  readonly images: FakeImageBackends;
  readonly llm: FakeLlm;
  /** The `plugins:` section a user would write for them (`n` images per backend). */
  plugins(dir: string, n: number): string[];
  close(): Promise<void>;
}

/** The key the config gives the chat model: it must never show up in a log line. */
export const llmApiKey = 'sk-test-secret-key-123456';

/** Four image backends of 150, 300 (failing), 600 and 1500 ms, and a chat model `gpt-test`. */
export async function startBackends(): Promise<Backends> {
  const images = await startFakeImageBackends();
  const llm = await startFakeLlm();
  images.set('quick', 'ok', 150);
  images.set('broken', 'error500', 300);
  images.set('steady', 'ok', 600);
  images.set('slow', 'ok', 1500);
  return {
    images,
    llm,
    plugins: (dir, n) => [
      'plugins:',
      '  draw:',
      '    backends:',
      ...['quick', 'broken', 'steady', 'slow'].map(
        (name) =>
          `      - { name: ${name}, type: openai-images, baseUrl: ${images.server.url}/openai/${name}, n: ${n} }`,
      ),
      '  ask:',
      `    memory: { turns: 20, path: ${dir}/ask.sqlite }`,
      '    backends:',
      `      - { name: gpt, type: openai, baseUrl: ${llm.url}/v1, apiKey: \${OPENAI_API_KEY}, model: gpt-test }`,
    ],
    close: async () => {
      await images.close();
      await llm.close();
    },
  };
}
