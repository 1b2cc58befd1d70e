import { defineConfig } from 'vitest/config';

/**
 * Inside this repository `chorus-bot` and `chorus-bot/testing` resolve to the TypeScript sources
 * (the `chorus-source` export condition), for the tests and for every bot they spawn; an installed
 * package resolves to its compiled `dist/`. Not Vite's `module` condition: Node loads the packages
 * the tests import, and some (OpenTelemetry's) offer under it a build Node cannot load.
 */
const conditions = ['chorus-source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts', 'plugins/**/*.test.ts', 'starter/**/*.test.ts'],
    exclude: ['test/package.test.ts', '**/node_modules/**'],
    testTimeout: 15_000,
    // Network tests talk to fake servers on 127.0.0.1 only; keep them bounded.
    pool: 'forks',
    env: {
      NODE_OPTIONS: [process.env.NODE_OPTIONS, '--conditions=chorus-source'].filter(Boolean).join(' '),
    },
  },
});
