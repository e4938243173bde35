import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { connect, GrainId, Silo } from 'redgrain';
import { startRedisCluster } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * A Redis Cluster master that crashes and comes back (AOF): the grains whose slots it holds go on
 * where they were. (ioredis can believe a script loaded that the restarted node no longer has:
 * every turn of those grains was refused with NOSCRIPT until their messages were dead-lettered.)
 */
describe('a Redis Cluster master restart', () => {
  it('leaves the grains on that master working, each message applied once', async () => {
    const cluster = await startRedisCluster({ masters: 3, appendOnly: true });
    const redis = { cluster: cluster.urls };
    const silo = await Silo.start({ redis, keyPrefix: 'restart', grains: [Counter], logLevel: 'silent', maxMessageAttempts: 2 });
    const client = await connect({ redis, keyPrefix: 'restart', redisTimeoutMs: 20_000 });
    const admin = new Cluster(cluster.startupNodes, { scaleReads: 'master' });
    try {
      const keys = Array.from({ length: 12 }, (_, i) => `c${i}`);
      for (const key of keys) expect(await client.getGrain(Counter, key).ask('add', 1)).toBe(1);
      // The master holding c0's slot crashes and comes back with its data.
      const slot = calculateSlot(`restart:g:{${GrainId.of('Counter', 'c0').tag}}:state`);
      const slots = await admin.cluster('SLOTS');
      const port = slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
      const node = cluster.nodes.find((n) => n.port === port);
      if (node === undefined) throw new Error(`no node serves slot ${slot}`);
      // Messages keep coming to c0 while its master is down and coming back, so its activation
      // takes and commits right as the node returns.
      const stopped = new AbortController();
      let acked = 0;
      let uncertain = 0;
      const load = (async () => {
        while (!stopped.signal.aborted) {
          try {
            await client.getGrain(Counter, 'c0').send('add', 1);
            acked += 1;
          } catch {
            uncertain += 1; // refused, or may have been enqueued
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      })();
      await node.kill();
      await node.restart();
      // Back once every master sees the cluster whole again (commands to its slots fail until then).
      await waitFor(
        'the cluster to be whole again',
        async () => {
          const states = await Promise.all(
            cluster.nodes.map(async (n) => {
              const probe = new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
              try {
                await probe.connect();
                return /cluster_state:ok/.test(await probe.cluster('INFO'));
              } catch {
                return false;
              } finally {
                probe.disconnect();
              }
            }),
          );
          return states.every(Boolean) ? true : undefined;
        },
        { timeoutMs: 30_000, everyMs: 100 },
      );
      const before = acked;
      await waitFor('sends to go through again', () => (acked >= before + 50 ? true : undefined), { timeoutMs: 30_000, everyMs: 20 });
      stopped.abort();
      await load;
      for (const key of keys.slice(1)) expect(await client.getGrain(Counter, key).with({ timeoutMs: 30_000 }).ask('add', 1)).toBe(2);
      const c0 = await client.getGrain(Counter, 'c0').with({ timeoutMs: 30_000 }).ask('add', 1);
      // Every acknowledged send applied once (a send that failed may or may not have been enqueued).
      expect(c0 - 2 - acked).toBeGreaterThanOrEqual(0);
      expect(c0 - 2 - acked).toBeLessThanOrEqual(uncertain);
      expect(await client.deadLetters.list()).toEqual([]);
    } finally {
      admin.disconnect();
      await client.close();
      await silo.stop();
      await cluster.stop();
    }
  }, 120_000);
});
