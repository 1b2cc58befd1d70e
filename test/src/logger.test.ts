import { describe, expect, it } from 'vitest';
import { BackendError } from '../../src/errors.ts';
import { createLogger, Redactor } from '../../src/logger.ts';

describe('logger', () => {
  it('never prints a registered secret, a bot token or a bearer key, in messages, fields or errors', () => {
    const redactor = new Redactor();
    redactor.add('sk-live-abcdef123456');
    const lines: string[] = [];
    const log = createLogger({ redactor, write: (line) => lines.push(line), level: 'debug' });
    const token = '123456789:AAH-abcdefghijklmnopqrstuvwxyz0123456';
    log.info(`calling https://api.telegram.org/bot${token}/getMe`);
    log.warn('backend failed', {
      error: new BackendError('openai', 'status', 'refused key sk-live-abcdef123456'),
      header: 'Bearer abcdefghijklmnopqrstuvwxyz',
    });
    const text = lines.join('\n');
    expect(text).not.toContain('sk-live-abcdef123456');
    expect(text).not.toContain(token);
    expect(text).not.toContain('abcdefghijklmnopqrstuvwxyz');
    expect(text).toContain('BackendError(BACKEND_STATUS)');
  });

  it('masks the password of a URL, whatever the scheme, and keeps the rest readable', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (line) => lines.push(line) });
    log.warn(
      'Request cannot be constructed from a URL that includes credentials: http://user:pw-SECRET@127.0.0.1:9/v1',
    );
    log.info('connected', {
      url: 'redis://default:hunter2-long@cache.internal:6379/0',
      mail: 'ann@example.org',
    });
    const text = lines.join('\n');
    expect(text).not.toContain('pw-SECRET');
    expect(text).not.toContain('hunter2-long');
    expect(text).toContain('http://***@127.0.0.1:9/v1');
    expect(text).toContain('redis://***@cache.internal:6379/0');
    expect(text).toContain('ann@example.org');
  });

  it('filters by level and scopes child loggers', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', write: (line) => lines.push(line) }).child('draw');
    log.info('hidden');
    log.warn('shown', { backend: 'flux' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WARN +\[chorus:draw\] shown backend=flux$/);
  });

  it('writes one JSON object a line with format json, secrets redacted in every form', () => {
    const redactor = new Redactor();
    // A secret with characters JSON escapes: it must not survive in its escaped form either.
    const secret = 'pa"ss\\word-123456';
    redactor.add(secret);
    const lines: string[] = [];
    const log = createLogger({
      redactor,
      format: 'json',
      level: 'debug',
      write: (line) => lines.push(line),
    }).child('ask');
    log.info('backend request', {
      backend: 'gpt',
      status: 200,
      ms: 12.5,
      bytes: 300,
      ok: true,
      none: undefined,
    });
    log.warn(`refused ${secret}`, {
      error: new BackendError('gpt', 'status', `said ${secret}`),
      header: `Bearer abcdefghijklmnopqrstuvwxyz`,
      nested: { key: secret, list: [1, 'two'] },
      level: 'overwritten?',
      infinite: Number.POSITIVE_INFINITY,
    });
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(first).toMatchObject({
      level: 'info',
      scope: 'chorus:ask',
      msg: 'backend request',
      backend: 'gpt',
    });
    expect(first).toMatchObject({ status: 200, ms: 12.5, bytes: 300, ok: true, none: null });
    expect(Math.abs(Number(first!.time) - Date.now())).toBeLessThan(60_000);
    expect(second!.level).toBe('warn');
    expect(second!.msg).toBe('refused ***');
    expect(String(second!.error)).toMatch(/^BackendError\(BACKEND_STATUS\): said \*\*\*/);
    expect(second!.header).toBe('Bearer ***');
    expect(second!.nested).toEqual({ key: '***', list: [1, 'two'] });
    expect(second!.infinite).toBe('Infinity');
    for (const line of lines) {
      expect(line).not.toContain('word-123456');
      expect(line).not.toContain('abcdefghijklmnopqrstuvwxyz');
    }
  });

  it('says which levels it writes', () => {
    const log = createLogger({ level: 'info', write: () => {} });
    expect([log.enabled?.('debug'), log.enabled?.('info'), log.enabled?.('error')]).toEqual([
      false,
      true,
      true,
    ]);
    expect(createLogger({ level: 'silent' }).enabled?.('error')).toBe(false);
  });
});
