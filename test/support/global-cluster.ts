import type { TestProject } from 'vitest/node';
import { startRedisCluster, type RedisCluster } from '../../src/testing/redis-cluster.ts';

let cluster: RedisCluster | undefined;

/** One private 3-master Redis Cluster for the `cluster` project; each test uses its own key prefix. */
export async function setup(project: TestProject): Promise<void> {
  cluster = await startRedisCluster({ masters: 3 });
  project.provide('redisClusterUrls', cluster.urls);
  // Tests that need a single server of their own start one; this one is never used on the cluster.
  project.provide('redisUrl', 'redis://127.0.0.1:1');
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
