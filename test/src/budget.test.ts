import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/budget.ts';
import { FakeClock } from '../../src/testing.ts';
import { budgetContract } from './budget.contract.ts';

budgetContract('memory', async (clock) => {
  const budget = new MemoryBudget({ clock });
  return { budget, another: async () => budget, close: async () => {} };
});

describe('MemoryBudget', () => {
  it('forgets the keys of chats gone quiet, and keeps those still in their window', async () => {
    const clock = new FakeClock(0);
    const budget = new MemoryBudget({ clock });
    const perChat = { count: 1, periodMs: 1000 };
    const longer = { count: 20, periodMs: 60_000 };
    for (let i = 0; i < 5000; i++) budget.take([{ key: `chat:${i}`, limit: perChat }]);
    budget.take([{ key: 'group:g', limit: longer }]);
    expect(budget.size).toBe(5001);
    // A minute and more later, the next sweep drops every key whose last slot left its window.
    await clock.tick(61_000);
    budget.take([{ key: 'group:g', limit: longer }]);
    for (let i = 0; i < 4096; i++) budget.take([{ key: 'chat:busy', limit: perChat }]);
    expect(budget.size).toBe(2);
    // What is still in its window counts: the group's slot taken after the minute still holds.
    expect(budget.take([{ key: 'group:g', limit: { count: 1, periodMs: 60_000 } }])).toBeGreaterThan(0);
  });
});
