import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests import the package by name; they run on its sources, not on a build (as tsconfig's paths).
    alias: [
      { find: /^redgrain$/, replacement: source('./src/index.ts') },
      { find: /^redgrain\/testing$/, replacement: source('./src/testing/index.ts') },
      { find: /^redgrain\/instrumentation$/, replacement: source('./src/instrumentation/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-redis.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites spawn silo processes; two cores run at most two files at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
