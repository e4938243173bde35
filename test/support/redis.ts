import { Cluster, Redis } from 'ioredis';
import { inject } from 'vitest';
import type { ConnectOptions } from 'redgrain';

/**
 * The suite's Redis, as a test passes it to `connect`, `Silo.start` and the tools: a URL on one
 * Redis, `{ cluster: [...] }` when the suite runs on a Redis Cluster (the `cluster` project).
 */
export function testRedis(): NonNullable<ConnectOptions['redis']> {
  const nodes = inject('redisClusterUrls');
  return nodes.length > 0 ? { cluster: nodes } : inject('redisUrl');
}

/** True when the suite runs on a Redis Cluster. */
export function onCluster(): boolean {
  return inject('redisClusterUrls').length > 0;
}

/** A plain ioredis connection to the suite's Redis (a Cluster client on a cluster), for checks. */
export function rawRedis(): Redis | Cluster {
  const nodes = inject('redisClusterUrls');
  if (nodes.length === 0) return new Redis(inject('redisUrl'));
  return new Cluster(
    nodes.map((url) => {
      const { hostname, port } = new URL(url);
      return { host: hostname, port: Number(port) };
    }),
    { scaleReads: 'master' },
  );
}

/** The suite's Redis as `TestCluster.start` takes it: `redisUrl`, or `redisCluster` on a Redis Cluster. */
export function testClusterRedis(): { redisUrl: string } | { redisCluster: string[] } {
  const nodes = inject('redisClusterUrls');
  return nodes.length > 0 ? { redisCluster: nodes } : { redisUrl: inject('redisUrl') };
}

/**
 * The suite's Redis as the `redgrain` tools and the silo process read it from the environment:
 * `REDIS_CLUSTER` (comma-separated node URLs) on a Redis Cluster, else `REDIS_URL`.
 */
export function testRedisEnv(): { REDIS_URL: string } | { REDIS_CLUSTER: string } {
  const nodes = inject('redisClusterUrls');
  return nodes.length > 0 ? { REDIS_CLUSTER: nodes.join(',') } : { REDIS_URL: inject('redisUrl') };
}
