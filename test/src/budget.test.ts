import { MemoryBudget } from '../../src/budget.ts';
import { budgetContract } from './budget.contract.ts';

budgetContract('memory', async (clock) => {
  const budget = new MemoryBudget({ clock });
  return { budget, another: async () => budget, close: async () => {} };
});
