import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Suites that run on a Redis Cluster too (they take the suite's Redis from test/support/redis.ts). */
const CLUSTER_SUITES = [
  'smoke',
  'runtime',
  'outbox',
  'reminders',
  'pubsub',
  'idempotency',
  'timers',
  'bounded-mailbox',
  'inspect',
  'faults',
  'cluster',
  'loadtest',
  'event-sourced',
  'event-sourced-faults',
  'read-only',
  'write-coalescing',
];

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
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites spawn silo processes; two cores run at most two files at once.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      // Everything, on one private redis-server.
      { extends: true, test: { name: 'redis', include: ['test/**/*.test.ts'], globalSetup: ['test/support/global-redis.ts'] } },
      // The integration suites again, on a private 3-master Redis Cluster.
      {
        extends: true,
        test: {
          name: 'cluster',
          include: CLUSTER_SUITES.map((name) => `test/${name}.test.ts`),
          globalSetup: ['test/support/global-cluster.ts'],
        },
      },
    ],
  },
});
