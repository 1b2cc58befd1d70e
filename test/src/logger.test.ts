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

  it('filters by level and scopes child loggers', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', write: (line) => lines.push(line) }).child('draw');
    log.info('hidden');
    log.warn('shown', { backend: 'flux' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WARN +\[chorus:draw\] shown backend=flux$/);
  });
});
