import type { TestProject } from 'vitest/node';
import { startRedisServer, type RedisServer } from '../../src/testing/redis-server.ts';

let server: RedisServer | undefined;

/** One private redis-server for the whole run; every test uses its own key prefix on it. */
export async function setup(project: TestProject): Promise<void> {
  server = await startRedisServer();
  project.provide('redisUrl', server.url);
  project.provide('redisClusterUrls', []);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** The cluster's node URLs in the `cluster` project; empty on one Redis. */
    redisClusterUrls: string[];
  }
}
