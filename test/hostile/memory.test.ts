/**
 * The ask plugin's memory in a SQLite file of its own (`memory.path`) under faults: a file another
 * process keeps locked, a read-only file, a corrupt file, a file deleted under the bot. None of
 * them may block the event loop, stop the bot, or lose a turn without a word.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plugin as ask } from '../../plugins/ask/index.ts';
import { busyTimeoutMs, ConversationMemory } from '../../plugins/ask/memory.ts';
import { createLogger } from '../../src/logger.ts';
import { openSqliteStore } from '../../src/runtime/sqlite-store.ts';
import { createTestBot, type TestBot } from '../../src/testing.ts';
import { type FakeServer, startFakeServer } from '../fakes/http.ts';

let dir: string;
let logs: string[];
let llm: FakeServer;
const cleanups: (() => void)[] = [];
const kits: TestBot[] = [];
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chorus-memory-'));
  logs = [];
  llm = await startFakeServer();
  llm.route('POST', '/v1/chat/completions', (_, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(
      `data: ${JSON.stringify({ choices: [{ delta: { content: 'an answer' }, finish_reason: 'stop' }] })}\n\n`,
    );
  });
});
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.stop();
  for (const cleanup of cleanups.splice(0)) cleanup();
  await llm.close();
  rmSync(dir, { recursive: true, force: true });
});

const log = () => createLogger({ level: 'debug', write: (line) => logs.push(line) });

/** Makes `path` unwritable, even for root (who ignores file modes). */
function makeReadOnly(path: string): void {
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', path]);
    cleanups.push(() => execFileSync('chattr', ['-i', path]));
  } else chmodSync(path, 0o444);
}

async function startBot(path: string) {
  const kit = await createTestBot({
    plugins: [
      {
        plugin: ask,
        config: {
          memory: { path },
          editIntervalMs: { private: 0, group: 0 },
          backends: [{ name: 'm', type: 'openai', model: 'm', baseUrl: `${llm.url}/v1` }],
        },
      },
    ],
    realTime: true,
    log: log(),
  });
  kits.push(kit);
  return kit;
}

/** Holds the write lock of the database at `path` from another connection, as another process would. */
function holdLock(path: string): () => void {
  const other = new Database(path);
  other.exec('BEGIN IMMEDIATE');
  other.prepare('INSERT INTO kv (key, value) VALUES (?, ?)').run('x', '"x"');
  return () => {
    other.exec('ROLLBACK');
    other.close();
  };
}

describe('conversation memory faults', () => {
  it('a locked file: the memory waits without holding the event loop, and saves once free', async () => {
    const path = join(dir, 'ask.sqlite');
    const memory = await ConversationMemory.open({ path, turns: 5, log: log() });
    const release = holdLock(path);
    let saved: boolean | undefined;
    const saving = memory.remember('c', 'q', 'a').then((value) => {
      saved = value;
    });
    // Each try waits at most busyTimeoutMs on SQLite; between tries the loop runs other work.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(3);
    expect(saved).toBeUndefined();
    release();
    await saving;
    expect(saved).toBe(true);
    expect(await memory.history('c')).toEqual([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'a' },
    ]);
    expect(busyTimeoutMs).toBeLessThanOrEqual(10);
    await memory.close();
  });

  it('a file locked for good: the turn is not saved, the log says why, and the user is told', async () => {
    const path = join(dir, 'ask.sqlite');
    const kit = await startBot(path);
    const release = holdLock(path);
    cleanups.push(release);
    await kit.run(kit.send('/ask first'));
    expect(kit.adapter.texts()).toEqual([
      'an answer',
      '(This exchange could not be saved: the next question will not see it.)',
    ]);
    expect(
      logs.some((line) => /conversation memory: could not save a turn .*database is locked/.test(line)),
    ).toBe(true);
  });

  it('a corrupt or read-only file at start turns memory off with one line; the bot still answers', async () => {
    const corrupt = join(dir, 'corrupt.sqlite');
    writeFileSync(corrupt, 'not a database, just text that happens to be here. '.repeat(200));
    const readOnly = join(dir, 'readonly.sqlite');
    await (await openSqliteStore(readOnly)).close();
    rmSync(`${readOnly}-wal`, { force: true });
    rmSync(`${readOnly}-shm`, { force: true });
    makeReadOnly(readOnly);
    for (const [path, reason] of [
      [corrupt, 'file is not a database'],
      [readOnly, 'attempt to write a readonly database'],
    ] as const) {
      logs = [];
      const kit = await startBot(path);
      const off = logs.filter((line) => line.includes('conversation memory is off'));
      expect(off).toHaveLength(1);
      expect(off[0]).toContain(`path=${path}`);
      expect(off[0]).toContain(reason);
      await kit.run(kit.send('/ask hello'));
      await kit.run(kit.send('/ask again'));
      expect(kit.adapter.texts()).toEqual(['an answer', 'an answer']);
      expect(logs.filter((line) => line.includes(' ERROR '))).toHaveLength(1);
    }
  });

  it('a file deleted under the running bot is noticed and started again', async () => {
    const path = join(dir, 'ask.sqlite');
    const kit = await startBot(path);
    await kit.run(kit.send('/ask first'));
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    await kit.run(kit.send('/ask second'));
    expect(logs.some((line) => line.includes('its file was deleted; starting a new one'))).toBe(true);
    expect(existsSync(path)).toBe(true);
    const reopened = await ConversationMemory.open({ path, turns: 5 });
    expect((await reopened.history('mock:chat-1')).map((m) => m.content)).toEqual(['second', 'an answer']);
    await reopened.close();
  });
});
