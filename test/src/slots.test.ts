import { describe, expect, it } from 'vitest';
import { MemorySlots, namespacedSlots } from '../../src/slots.ts';
import { slotsContract } from './slots.contract.ts';

slotsContract('memory', async () => {
  const slots = new MemorySlots();
  return { slots, another: async () => slots, close: async () => {} };
});

slotsContract('namespaced view of memory slots', async () => {
  const slots = new MemorySlots();
  const mine = namespacedSlots(slots, 'plugin:mine:');
  return { slots: mine, another: async () => mine, close: async () => {} };
});

describe('MemorySlots', () => {
  it('keeps keys apart between namespaces, and forgets a key once nobody holds or waits', async () => {
    const slots = new MemorySlots();
    const draw = namespacedSlots(slots, 'plugin:draw:');
    const ask = namespacedSlots(slots, 'plugin:ask:');
    const held = await draw.acquire({ key: 'backend:x', capacity: 1 });
    expect(await ask.acquire({ key: 'backend:x', capacity: 1, maxWaiting: 0 })).toBeTypeOf('function');
    expect(await draw.acquire({ key: 'backend:x', capacity: 1, maxWaiting: 0 })).toBeUndefined();
    expect(slots.size).toBe(2);
    held!();
    expect(slots.size).toBe(1);
  });
});
