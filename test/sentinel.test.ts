import { afterEach, describe, expect, it } from 'vitest';
import { ClusterInspector, connect, RedisUnavailableError, Silo } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';
import { cutOffReplicas, startSentinelGroup, type SentinelGroup } from './support/sentinel.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * A master watched by a live Sentinel, killed with -9 and replaced by a replica the Sentinel
 * promotes: with `replicas: 1` nothing acknowledged is lost; with `replicas: 0` exactly what the
 * replica had not received yet is lost, as the README says, and the grain's activation, whose
 * memory was ahead of Redis, reads its state again instead of writing over the rolled-back one.
 */
describe('failover through Sentinel', () => {
  let group: SentinelGroup | undefined;
  const closing: { close(): Promise<void> }[] = [];
  let silo: Silo | undefined;

  afterEach(async () => {
    for (const item of closing.splice(0).reverse()) await item.close().catch(() => undefined);
    await silo?.stop().catch(() => undefined);
    silo = undefined;
    await group?.stop();
    group = undefined;
  }, 60_000);

  const start = async (replicas: number) => {
    group = await startSentinelGroup({ replicas: 2 });
    const redis = { sentinels: group.sentinels, name: group.name };
    const keyPrefix = freshPrefix('sentinel');
    silo = await Silo.start({ redis, grains: [Counter], keyPrefix, replicas, logLevel: 'silent', heartbeatIntervalMs: 500 });
    const client = await connect({ redis, keyPrefix, replicas, redisTimeoutMs: 15_000 });
    closing.push(client);
    return { group, redis, keyPrefix, client };
  };

  /** Waits until the Sentinel serves another master than `before`. */
  const promoted = (sentinels: SentinelGroup, before: string) =>
    waitFor(
      'the Sentinel to promote a replica',
      async () => {
        const now = await sentinels.masterAddress();
        return now !== before ? now : undefined;
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );

  it('with replicas: 1, loses no acknowledged message and applies none twice when the master is killed', async () => {
    const { group: sentinels, client } = await start(1);
    const GRAINS = 16;
    const acknowledged = new Array<number>(GRAINS).fill(0);
    const uncertain = new Array<number>(GRAINS).fill(0);
    let sent = 0;
    let acked = 0;
    const stopped = new AbortController();
    const lane = async (first: number) => {
      for (let i = first; !stopped.signal.aborted; i += 8) {
        const grain = i % GRAINS;
        try {
          await client.getGrain(Counter, `g${grain}`).send('add', 1);
          acknowledged[grain] = (acknowledged[grain] ?? 0) + 1;
          acked += 1;
        } catch {
          uncertain[grain] = (uncertain[grain] ?? 0) + 1; // failed during the failover: enqueued or not
        }
        sent += 1;
      }
    };
    const lanes = Array.from({ length: 8 }, (_, i) => lane(i));
    await waitFor('300 sends before the kill', () => (sent >= 300 ? true : undefined));
    const before = await sentinels.masterAddress();
    await sentinels.master.kill();
    await promoted(sentinels, before);
    const afterFailover = acked;
    await waitFor('300 sends acknowledged after the failover', () => (acked >= afterFailover + 300 ? true : undefined), {
      timeoutMs: 40_000,
    });
    stopped.abort();
    await Promise.all(lanes);

    const counts = await waitFor(
      'every acknowledged message processed',
      async () => {
        const now = await Promise.all(acknowledged.map((_, grain) => client.getGrain(Counter, `g${grain}`).ask('get')));
        return now.every((count, grain) => count >= (acknowledged[grain] ?? 0)) ? now : undefined;
      },
      { timeoutMs: 40_000, everyMs: 200 },
    );
    const doubled = counts.reduce(
      (sum, count, grain) => sum + Math.max(0, count - (acknowledged[grain] ?? 0) - (uncertain[grain] ?? 0)),
      0,
    );
    expect(doubled).toBe(0);
  }, 150_000);

  it('with replicas: 0, loses exactly the acknowledged writes the promoted replica lacked, and the grain reads its state again', async () => {
    const { group: sentinels, redis, keyPrefix, client } = await start(0);
    const counter = client.getGrain(Counter, 'lagging');
    for (let i = 0; i < 50; i++) await counter.send('add', 1);
    expect(await counter.ask('get')).toBe(50);
    // Both replicas hold everything so far; then the master goes on alone.
    await cutOffReplicas(sentinels.master.url, sentinels.replicas);
    try {
      for (let i = 0; i < 30; i++) await counter.send('add', 1);
      // Committed on the master and answered: the grain's memory and the master say 80.
      expect(await counter.ask('get')).toBe(80);
      // With replicas required, the same send is refused rather than acknowledged.
      const strict = await connect({ redis, keyPrefix, replicas: 1, redisTimeoutMs: 500 });
      closing.push(strict);
      await expect(strict.getGrain(Counter, 'strict').send('add', 1)).rejects.toBeInstanceOf(RedisUnavailableError);
      const before = await sentinels.masterAddress();
      await sentinels.master.kill();
      for (const replica of sentinels.replicas) process.kill(replica.pid, 'SIGCONT');
      await promoted(sentinels, before);
    } finally {
      for (const replica of sentinels.replicas) process.kill(replica.pid, 'SIGCONT');
    }

    // The 30 acknowledged sends and their committed turns are gone; the activation, which had
    // counted them, notices that Redis lost its commits and reads the state again.
    // An answer published while the client's subscriber reconnects is missed: ask again then.
    const after = await waitFor('the grain to answer again', () => counter.with({ timeoutMs: 3_000 }).ask('get'), {
      timeoutMs: 40_000,
      everyMs: 200,
    });
    expect(after).toBe(50);
    await counter.send('add', 1);
    expect(await counter.ask('get')).toBe(51);
    // The silo, whose membership record went back too, is active in the new master's records.
    const inspector = await ClusterInspector.open({ redis, keyPrefix });
    closing.push(inspector);
    const silos = await waitFor('the silo active again', async () => {
      const all = await inspector.silos();
      return all.length === 1 && all[0]?.status === 'active' ? all : undefined;
    });
    expect(silos.map((s) => s.id)).toEqual([silo?.id]);
  }, 150_000);
});
