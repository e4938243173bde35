import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Silo, type GrainClient } from 'redgrain';
import { startRedisCluster, type RedisCluster } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { GrainId } from '../src/grain/grain-id.ts';
import { freshPrefix } from './support/prefix.ts';
import { cutOffReplicas } from './support/sentinel.ts';
import { waitFor } from './support/wait-for.ts';

const GRAINS = 24;
const IN_FLIGHT = 8;

/**
 * A master of a Redis Cluster killed with -9 under load, its replica promoted by the cluster:
 * with `replicas: 1`, every `send` that resolved and every committed turn survive the failover.
 */
describe('failover on a Redis Cluster with replicas: 1', () => {
  let cluster: RedisCluster;
  let silo: Silo | undefined;
  let client: GrainClient | undefined;

  beforeAll(async () => {
    // Two replicas per master: once one is promoted, its master still has a replica to acknowledge.
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 2 });
  }, 60_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await silo?.stop().catch(() => undefined);
    await cluster?.stop();
  }, 60_000);

  it('loses no acknowledged message and applies none twice when a master is killed and its replica takes over', async () => {
    const redis = { cluster: cluster.urls };
    const keyPrefix = freshPrefix('failover');
    silo = await Silo.start({ redis, grains: [Counter], keyPrefix, replicas: 1, logLevel: 'silent' });
    client = await connect({ redis, keyPrefix, replicas: 1, redisTimeoutMs: 15_000 });
    const sender = client;
    const acknowledged = new Array<number>(GRAINS).fill(0);
    const uncertain = new Array<number>(GRAINS).fill(0);
    let sent = 0;
    const stopped = new AbortController();
    const load = async (lane: number) => {
      for (let i = lane; !stopped.signal.aborted; i += IN_FLIGHT) {
        const grain = i % GRAINS;
        try {
          await sender.getGrain(Counter, `g${grain}`).send('add', 1);
          acknowledged[grain] = (acknowledged[grain] ?? 0) + 1;
        } catch {
          // Failed during the failover: it may or may not have been enqueued.
          uncertain[grain] = (uncertain[grain] ?? 0) + 1;
        }
        sent += 1;
      }
    };
    const lanes = Array.from({ length: IN_FLIGHT }, (_, lane) => load(lane));
    await waitFor('500 sends before the kill', () => (sent >= 500 ? true : undefined));
    const victim = cluster.nodes.find((node) => node.role === 'master');
    if (victim === undefined) throw new Error('no master');
    await victim.kill();
    // The cluster promotes the victim's replica; load goes on meanwhile.
    const probe = new Cluster(cluster.startupNodes.filter((node) => node.port !== victim.port));
    try {
      await waitFor(
        'the replica promoted and the cluster healthy again',
        async () => ((await probe.cluster('INFO')).includes('cluster_state:ok') && sent >= 1_000 ? true : undefined),
        { timeoutMs: 40_000, everyMs: 100 },
      );
    } finally {
      probe.disconnect();
    }
    await waitFor('500 sends after the failover', () => (sent >= 1_500 ? true : undefined), { timeoutMs: 30_000 });
    stopped.abort();
    await Promise.all(lanes);

    // Every acknowledged message ran once; a send that failed ran at most once.
    const counts = await waitFor(
      'every acknowledged message processed',
      async () => {
        const now = await Promise.all(acknowledged.map((_, grain) => sender.getGrain(Counter, `g${grain}`).ask('get')));
        return now.every((count, grain) => count >= (acknowledged[grain] ?? 0)) ? now : undefined;
      },
      { timeoutMs: 40_000, everyMs: 200 },
    );
    const lost = counts.reduce((sum, count, grain) => sum + Math.max(0, (acknowledged[grain] ?? 0) - count), 0);
    const doubled = counts.reduce(
      (sum, count, grain) => sum + Math.max(0, count - (acknowledged[grain] ?? 0) - (uncertain[grain] ?? 0)),
      0,
    );
    const total = (values: number[]) => values.reduce((sum, value) => sum + value, 0);
    process.stdout.write(
      `[failover] ${total(acknowledged)} sends acknowledged, ${total(uncertain)} failed during the failover; ${total(counts)} processed, ${lost} lost, ${doubled} doubled\n`,
    );
    expect({ lost, doubled }).toEqual({ lost: 0, doubled: 0 });
    expect(acknowledged.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1_000);
  }, 180_000);
});

/**
 * With `replicas: 0` the README says a failover loses the writes the promoted replica lacked:
 * the replica is cut off from its master, 30 acknowledged sends and their turns land on the master
 * alone, and the master is killed. Exactly those 30 are gone, and the grain goes on from the
 * replica's state (its activation, whose memory held the 30, reads the state again).
 */
describe('failover on a Redis Cluster with replicas: 0', () => {
  let cluster: RedisCluster;
  let silo: Silo | undefined;
  let client: GrainClient | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  }, 60_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await silo?.stop().catch(() => undefined);
    await cluster?.stop();
  }, 60_000);

  it('loses exactly the acknowledged writes the promoted replica lacked', async () => {
    const redis = { cluster: cluster.urls };
    const keyPrefix = freshPrefix('failover-lag');
    silo = await Silo.start({ redis, grains: [Counter], keyPrefix, logLevel: 'silent' });
    client = await connect({ redis, keyPrefix, redisTimeoutMs: 15_000 });
    const counter = client.getGrain(Counter, 'lagging');
    for (let i = 0; i < 50; i++) await counter.send('add', 1);
    expect(await counter.ask('get')).toBe(50);

    // The master that holds the grain, and its replica.
    const slot = calculateSlot(GrainId.of('Counter', 'lagging').tag);
    const probe = new Cluster(cluster.startupNodes);
    const lines = ((await probe.cluster('NODES')) as string)
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    probe.disconnect();
    const serves = (fields: string[]) =>
      fields.slice(8).some((range) => {
        const [from, to = from] = range.split('-').map(Number);
        return from !== undefined && slot >= from && slot <= (to ?? from);
      });
    const owner = lines.find((fields) => fields[2]?.includes('master') && serves(fields));
    const follower = lines.find((fields) => fields[3] === owner?.[0]);
    const portOf = (fields: string[] | undefined) => Number(fields?.[1]?.split('@')[0]?.split(':')[1]);
    const victim = cluster.nodes.find((node) => node.port === portOf(owner));
    const replica = cluster.nodes.find((node) => node.port === portOf(follower));
    if (victim === undefined || replica === undefined) throw new Error(`no master and replica for slot ${slot}`);

    await cutOffReplicas(victim.url, [replica]);
    try {
      for (let i = 0; i < 30; i++) await counter.send('add', 1);
      expect(await counter.ask('get')).toBe(80);
      await victim.kill();
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    const survivors = new Cluster(cluster.startupNodes.filter((node) => node.port !== victim.port));
    try {
      await waitFor(
        'the replica promoted and the cluster healthy again',
        async () => {
          const info = await survivors.cluster('INFO');
          const nodes = (await survivors.cluster('NODES')) as string;
          const promoted = nodes.split('\n').some((line) => line.includes(`:${replica.port}@`) && line.includes('master'));
          return info.includes('cluster_state:ok') && promoted ? true : undefined;
        },
        { timeoutMs: 40_000, everyMs: 100 },
      );
    } finally {
      survivors.disconnect();
    }

    // An answer published while the client's subscriber reconnects is missed: ask again then.
    const after = await waitFor('the grain to answer again', () => counter.with({ timeoutMs: 3_000 }).ask('get'), {
      timeoutMs: 40_000,
      everyMs: 200,
    });
    expect(after).toBe(50);
    await counter.send('add', 1);
    expect(await counter.ask('get')).toBe(51);
  }, 150_000);
});
