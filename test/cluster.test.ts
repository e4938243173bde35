import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrainClient } from 'redgrain';
import { TestCluster } from 'redgrain/testing';
import { Probe, probeKey } from './grains/probe.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis, testClusterRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

const PROBE_MODULE = 'test/grains/probe.ts';

/** Reads the probe's record of handler runs: one `key|sender|seq` entry per run. */
async function runs(redis: Redis | Cluster, prefix: string): Promise<string[]> {
  return redis.lrange(probeKey(prefix, 'runs'), 0, -1);
}

/** Every (key, sender) sequence must be 0..n-1, each once, in order. */
function checkExactlyOnceInOrder(entries: string[], expected: Map<string, number>): void {
  const bySender = new Map<string, number[]>();
  for (const entry of entries) {
    const [key, sender, seq] = entry.split('|');
    const id = `${key}|${sender}`;
    bySender.set(id, [...(bySender.get(id) ?? []), Number(seq)]);
  }
  expect(bySender.size).toBe(expected.size);
  for (const [id, count] of expected) {
    expect(bySender.get(id), id).toEqual(Array.from({ length: count }, (_, i) => i));
  }
}

describe('a cluster of silo processes', () => {
  let cluster: TestCluster;
  let redis: Redis | Cluster;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      grains: [PROBE_MODULE],
      silos: 3,
      ...testClusterRedis(),
      keyPrefix: freshPrefix('cluster'),
    });
    redis = rawRedis();
  });
  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
    for (const silo of cluster?.silos ?? []) expect(silo.logs, `silo ${silo.id} logged a problem`).toBe('');
  });

  it('activates each of 200 fresh grains exactly once under 20 concurrent clients, and runs every message exactly once', async () => {
    const prefix = cluster.keyPrefix;
    const grains = Array.from({ length: 200 }, (_, i) => `fresh-${i}`);
    const clients = await Promise.all(Array.from({ length: 20 }, () => cluster.connect()));
    const perSender = 2;
    // Every client walks the grains in the same order with 20 grains in flight, so each grain's first
    // messages race from all 20 clients at about the same time. (All 200 at once queues thousands of
    // sends in this one process, and on two shared cores the last of them waits past the 5 s
    // command timeout, on a Redis Cluster most of all.)
    const inFlight = 20;
    await Promise.all(
      clients.map(async (client, c) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: inFlight }, async () => {
            for (let key = grains[next++]; key !== undefined; key = grains[next++]) {
              const probe = client.getGrain(Probe, key);
              for (let seq = 0; seq < perSender; seq++) await probe.send('hit', `client-${c}`, seq);
            }
          }),
        );
      }),
    );
    const total = grains.length * clients.length * perSender;
    await waitFor(`${total} handler runs`, async () => ((await redis.llen(probeKey(prefix, 'runs'))) >= total ? true : undefined), {
      timeoutMs: 60_000,
    });
    const expected = new Map<string, number>();
    for (const key of grains) for (let c = 0; c < clients.length; c++) expected.set(`${key}|client-${c}`, perSender);
    checkExactlyOnceInOrder(await runs(redis, prefix), expected);
    const activations = await redis.lrange(probeKey(prefix, 'activations'), 0, -1);
    expect(activations.sort()).toEqual([...grains].sort());
    expect(await redis.llen(probeKey(prefix, 'overlaps'))).toBe(0);
    // The state agrees: each grain counted every message once.
    const counts = await Promise.all(grains.map((key) => (clients[0] as GrainClient).getGrain(Probe, key).ask('count')));
    expect(counts).toEqual(grains.map(() => clients.length * perSender));
    // Grains spread over the silos (random placement), and each directory entry names a live one.
    const owners = await Promise.all(grains.map((key) => redis.hget(`${prefix}:g:{Probe/${key}}:dir`, 'silo')));
    expect(new Set(owners)).toEqual(new Set(cluster.silos.map((s) => s.id)));
  });

  it('runs one turn at a time per grain, in each sender’s order, across silos and clients', async () => {
    const prefix = cluster.keyPrefix;
    await redis.del(probeKey(prefix, 'runs'));
    const clients = await Promise.all(Array.from({ length: 4 }, () => cluster.connect()));
    const perSender = 15;
    await Promise.all(
      clients.map(async (client, c) => {
        const probe = client.getGrain(Probe, 'contended');
        // A handler that awaits mid-turn: a second turn running now would show as an overlap.
        for (let seq = 0; seq < perSender; seq++) await probe.send('hit', `turns-${c}`, seq, 2);
      }),
    );
    await waitFor('every contended message', async () =>
      (await redis.llen(probeKey(prefix, 'runs'))) >= clients.length * perSender ? true : undefined,
    );
    const expected = new Map(clients.map((_, c) => [`contended|turns-${c}`, perSender] as const));
    checkExactlyOnceInOrder(await runs(redis, prefix), expected);
    expect(await redis.lrange(probeKey(prefix, 'overlaps'), 0, -1)).toEqual([]);
  });
});

describe('rolling restart', () => {
  it('restarts 3 silos one by one while clients keep sending: nothing lost, nothing run twice', async () => {
    const cluster = await TestCluster.start({
      grains: [PROBE_MODULE],
      silos: 3,
      ...testClusterRedis(),
      keyPrefix: freshPrefix('rolling'),
    });
    const redis = rawRedis();
    try {
      const clients = await Promise.all(Array.from({ length: 4 }, () => cluster.connect()));
      const grains = Array.from({ length: 30 }, (_, i) => `roll-${i}`);
      const run = { sending: true };
      const sent = new Map<string, number>();
      const senders = clients.map(async (client, c) => {
        let seq = 0;
        while (run.sending) {
          await Promise.all(grains.map((key) => client.getGrain(Probe, key).send('hit', `roll-${c}`, seq)));
          seq += 1;
        }
        for (const key of grains) sent.set(`${key}|roll-${c}`, seq);
      });
      const started = [...cluster.silos];
      for (const silo of started) {
        const before = await redis.llen(probeKey(cluster.keyPrefix, 'runs'));
        await cluster.addSilo();
        expect(await silo.stop()).toBe(0);
        // Keep sending for a while after each restart before the next one.
        await waitFor('progress after a restart', async () =>
          (await redis.llen(probeKey(cluster.keyPrefix, 'runs'))) > before + 500 ? true : undefined,
        );
      }
      run.sending = false;
      await Promise.all(senders);
      const total = [...sent.values()].reduce((a, b) => a + b, 0);
      await waitFor(`${total} runs`, async () => ((await redis.llen(probeKey(cluster.keyPrefix, 'runs'))) >= total ? true : undefined), {
        timeoutMs: 60_000,
      });
      checkExactlyOnceInOrder(await runs(redis, cluster.keyPrefix), sent);
      expect(await redis.llen(probeKey(cluster.keyPrefix, 'overlaps'))).toBe(0);
      await cluster.stop();
      for (const silo of cluster.silos) expect(silo.logs, `silo ${silo.id} logged a problem`).toBe('');
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
    // 25 s alone; 55-60 s while another suite runs beside it on the two cores.
  }, 150_000);
});
