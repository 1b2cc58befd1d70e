import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 15_000,
    // Network tests talk to fake servers on 127.0.0.1 only; keep them bounded.
    pool: 'forks',
  },
});
