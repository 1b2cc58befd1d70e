/**
 * The Telegram adapter's memory across restarts: the last update id handed to the bus, so an
 * update Telegram sends again after a crash is recognised and skipped.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The last update id handled, or 0. */
export function readLastHandled(path: string): number {
  try {
    const value = (JSON.parse(readFileSync(path, 'utf8')) as { lastUpdateId?: unknown }).lastUpdateId;
    return typeof value === 'number' ? value : 0;
  } catch {
    return 0;
  }
}

/** Remembers the last update id handled. */
export function writeLastHandled(path: string, lastUpdateId: number): void {
  // Write then rename, so a crash mid-write never leaves a torn file.
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify({ lastUpdateId }));
  renameSync(`${path}.tmp`, path);
}
