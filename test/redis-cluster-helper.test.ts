import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from 'redgrain/testing';

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function dbSize(url: string): Promise<number> {
  const client = new Redis(url);
  try {
    return await client.dbsize();
  } finally {
    client.disconnect();
  }
}

/** The loopback Redis Cluster the cluster tests run on: it forms, serves keys on every master, and stops. */
describe('startRedisCluster', () => {
  it('starts 3 masters that serve keys across the slots, and stops them by pid', async () => {
    let cluster: RedisCluster | undefined;
    try {
      cluster = await startRedisCluster();
      expect(cluster.nodes).toHaveLength(3);
      expect(cluster.nodes.filter((node) => node.role === 'master').length).toBe(3);
      expect(cluster.urls).toEqual(cluster.nodes.map((node) => `redis://127.0.0.1:${node.port}`));
      expect(cluster.startupNodes).toEqual(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));

      const client = new Cluster(cluster.startupNodes);
      try {
        const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
        for (const key of keys) await client.set(key, `value of ${key}`);
        const values = await Promise.all(keys.map((key) => client.get(key)));
        expect(values).toEqual(keys.map((key) => `value of ${key}`));
      } finally {
        client.disconnect();
      }
      const sizes = await Promise.all(cluster.nodes.map((node) => dbSize(node.url)));
      expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(200);
      for (const size of sizes) expect(size).toBeGreaterThan(0);
    } finally {
      await cluster?.stop();
    }
    const pids = cluster?.nodes.map((node) => node.pid) ?? [];
    expect(pids).toHaveLength(3);
    expect(pids.filter(alive)).toEqual([]);
  }, 30_000);

  it('starts 3 masters with a replica each', async () => {
    let cluster: RedisCluster | undefined;
    try {
      cluster = await startRedisCluster({ replicasPerMaster: 1 });
      expect(cluster.nodes).toHaveLength(6);
      expect(cluster.nodes.filter((node) => node.role === 'master').length).toBe(3);
      expect(cluster.nodes.filter((node) => node.role === 'replica').length).toBe(3);
      expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(6);
    } finally {
      await cluster?.stop();
    }
    expect(cluster?.nodes.map((node) => node.pid).filter(alive)).toEqual([]);
  }, 30_000);
});
