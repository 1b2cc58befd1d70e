/**
 * The remind plugin through the real CLI: a child process on the console adapter, stdin piped and
 * kept open while a reminder is pending, its state in a SQLite file that a second run reuses.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tsx = resolve(root, 'node_modules/.bin/tsx');

interface Run {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  /** Resolves once stdout matches `pattern`; rejects after `ms` of real time. */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

function startChorus(dir: string): Run {
  const child = spawn(tsx, [resolve(root, 'src/runtime/cli.ts'), '--config', 'chorus.yaml'], {
    cwd: dir,
    stdio: 'pipe',
    env: { ...process.env, TZ: 'UTC' },
  });
  let stdout = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of waiters) check();
  });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return {
    child,
    stdout: () => stdout,
    exited,
    waitFor: (pattern, ms = 20_000) =>
      new Promise((done, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`no ${pattern} in stdout within ${ms} ms; stdout so far:\n${stdout}`));
        }, ms);
        const check = () => {
          if (!pattern.test(stdout)) return;
          clearTimeout(timer);
          waiters.delete(check);
          done();
        };
        waiters.add(check);
        check();
      }),
  };
}

function projectDir(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-remind-'));
  writeFileSync(join(dir, 'chorus.yaml'), config);
  return dir;
}

const reminder = /⏰ Reminder for you: hi/;
const reminders = (stdout: string) => stdout.split('⏰ Reminder for you: hi').length - 1;

describe('remind through the CLI', () => {
  it('`/remind 3s hi` answers at once, lists it as pending, reminds after three seconds, exits 0', async () => {
    // remind is not listed: it is on by default.
    const dir = projectDir('adapters:\n  console: {}\nstate: { path: state/bot.sqlite }\n');
    const run = startChorus(dir);
    run.child.stdin.write('/remind 3s hi\n');
    await run.waitFor(/I will remind you at .* \(UTC\), in 3s\. Id: \w+/);
    run.child.stdin.write('/reminders\n');
    await run.waitFor(/Your reminders here \(UTC\):\n\w+ · [\d-]+ [\d:]+ · hi/);
    expect(run.stdout()).not.toMatch(reminder);
    await run.waitFor(reminder);
    run.child.stdin.end();
    expect(await run.exited).toBe(0);
    expect(reminders(run.stdout())).toBe(1);
    const lines = run.stdout().trim().split('\n');
    expect(lines.at(-1)).toBe('⏰ Reminder for you: hi');
  }, 40_000);

  it('a reminder set before a restart fires once, after it, from the same state file', async () => {
    const dir = projectDir('adapters:\n  console: {}\nstate: { path: state.sqlite }\n');
    const first = startChorus(dir);
    first.child.stdin.write('/remind 3s hi\n');
    await first.waitFor(/I will remind you/);
    first.child.stdin.end(); // the bot stops; the reminder stays in state.sqlite
    expect(await first.exited).toBe(0);

    const second = startChorus(dir);
    await second.waitFor(reminder);
    second.child.stdin.write('/reminders\n');
    await second.waitFor(/You have no pending reminders here\./);
    second.child.stdin.end();
    expect(await second.exited).toBe(0);
    expect(reminders(first.stdout()) + reminders(second.stdout())).toBe(1);
  }, 60_000);

  it('`remind: false` turns it off', async () => {
    const dir = projectDir(
      'adapters:\n  console: {}\nstate: { path: state.sqlite }\nplugins:\n  remind: false\n',
    );
    const run = startChorus(dir);
    run.child.stdin.end('/remind 3s hi\n');
    expect(await run.exited).toBe(0);
    expect(run.stdout().trim()).toBe('Unknown command /remind. Try /help.');
  }, 30_000);
});
