import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/bus.ts';
import { createLogger } from '../../src/logger.ts';

declare module '../../src/bus.ts' {
  interface ChorusEvents {
    'test/ping': { n: number };
  }
}

describe('EventBus', () => {
  it('delivers to every listener; one that throws is logged and does not stop the others', async () => {
    const lines: string[] = [];
    const bus = new EventBus(createLogger({ write: (line) => lines.push(line) }));
    const got: number[] = [];
    bus.on('test/ping', () => {
      throw new Error('boom');
    });
    bus.on('test/ping', async ({ n }) => {
      await Promise.resolve();
      got.push(n);
    });
    bus.on('test/ping', async () => Promise.reject(new Error('async boom')));
    await bus.emit('test/ping', { n: 1 });
    expect(got).toEqual([1]);
    expect(lines.filter((l) => l.includes('listener failed'))).toHaveLength(2);
    expect(lines.join('\n')).toContain('boom');
  });

  it('on() returns a function that unsubscribes', async () => {
    const bus = new EventBus(createLogger({ level: 'silent' }));
    const got: number[] = [];
    const off = bus.on('test/ping', ({ n }) => void got.push(n));
    await bus.emit('test/ping', { n: 1 });
    off();
    await bus.emit('test/ping', { n: 2 });
    expect(got).toEqual([1]);
    expect(bus.listenerCount('test/ping')).toBe(0);
  });
});
