/**
 * The Budget contract: what every budget must do, run against each implementation (memory now;
 * Redis later) by `budget.test.ts`, on a fake clock the harness hands the budget.
 */
import { describe, expect, it } from 'vitest';
import type { Budget } from '../../src/budget.ts';
import { FakeClock } from '../../src/testing.ts';

export interface BudgetHarness {
  readonly budget: Budget;
  /** A second handle on the same budgets, as another process would open it. */
  another(): Promise<Budget>;
  close(): Promise<void>;
}

const second = { count: 1, periodMs: 1000 };
const burst = { count: 5, periodMs: 5000 };

export function budgetContract(name: string, open: (clock: FakeClock) => Promise<BudgetHarness>): void {
  describe(`Budget contract: ${name}`, () => {
    const setup = async () => {
      const clock = new FakeClock();
      const harness = await open(clock);
      return { clock, budget: harness.budget, harness };
    };

    it('takes slots while a window has room, then says how long to wait', async () => {
      const { clock, budget, harness } = await setup();
      for (let i = 0; i < 5; i++) expect(await budget.take([{ key: 'chat:1', limit: burst }])).toBe(0);
      expect(await budget.take([{ key: 'chat:1', limit: burst }])).toBe(5000);
      await clock.tick(1000);
      expect(await budget.take([{ key: 'chat:1', limit: burst }])).toBe(4000);
      await clock.tick(4000);
      expect(await budget.take([{ key: 'chat:1', limit: burst }])).toBe(0);
      await harness.close();
    });

    it('keeps keys apart', async () => {
      const { budget, harness } = await setup();
      expect(await budget.take([{ key: 'a', limit: second }])).toBe(0);
      expect(await budget.take([{ key: 'b', limit: second }])).toBe(0);
      expect(await budget.take([{ key: 'a', limit: second }])).toBe(1000);
      await harness.close();
    });

    it('takes under all keys or none: a full global window takes nothing from the chat', async () => {
      const { clock, budget, harness } = await setup();
      const global = { key: 'global', limit: { count: 2, periodMs: 1000 } };
      expect(await budget.take([{ key: 'c1', limit: burst }, global])).toBe(0);
      expect(await budget.take([{ key: 'c2', limit: burst }, global])).toBe(0);
      expect(await budget.take([{ key: 'c1', limit: burst }, global])).toBe(1000);
      await clock.tick(1000);
      // c1 still has four slots: the refused take cost it nothing.
      for (let i = 0; i < 4; i++) {
        expect(await budget.take([{ key: 'c1', limit: burst }])).toBe(0);
      }
      expect(await budget.take([{ key: 'c1', limit: burst }])).toBeGreaterThan(0);
      await harness.close();
    });

    it('leaves `keepFree` slots for others, which a take without it may use', async () => {
      const { budget, harness } = await setup();
      for (let i = 0; i < 4; i++)
        expect(await budget.take([{ key: 'k', limit: burst, keepFree: 1 }])).toBe(0);
      expect(await budget.take([{ key: 'k', limit: burst, keepFree: 1 }])).toBe(5000);
      expect(await budget.take([{ key: 'k', limit: burst }])).toBe(0);
      await harness.close();
    });

    it('never lets more than the window through, however the takes interleave', async () => {
      const { clock, budget, harness } = await setup();
      const taken: number[] = [];
      for (let t = 0; t < 20_000; t += 250) {
        if ((await budget.take([{ key: 'k', limit: burst }])) === 0) taken.push(clock.now());
        await clock.tick(250);
      }
      for (let i = 5; i < taken.length; i++) expect(taken[i]! - taken[i - 5]!).toBeGreaterThanOrEqual(5000);
      expect(taken.length).toBe(20);
      await harness.close();
    });

    it('is shared by every handle on the same budgets (another process)', async () => {
      const { budget, harness } = await setup();
      const other = await harness.another();
      expect(await budget.take([{ key: 'k', limit: second }])).toBe(0);
      expect(await other.take([{ key: 'k', limit: second }])).toBe(1000);
      await harness.close();
    });

    it('gives one slot to exactly one of many takes at once', async () => {
      const { budget, harness } = await setup();
      const results = await Promise.all(
        Array.from({ length: 20 }, () => budget.take([{ key: 'k', limit: second }])),
      );
      expect(results.filter((wait) => wait === 0)).toHaveLength(1);
      await harness.close();
    });
  });
}
