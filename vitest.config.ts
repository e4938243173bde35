import { defineConfig } from 'vitest/config';

export default defineConfig({
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
