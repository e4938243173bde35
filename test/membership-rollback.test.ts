import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis, testRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * A failover that promotes a replica which missed the last heartbeats (or a Redis master that
 * was down for a while) leaves a healthy silo's record looking silent. Monitors declare a silo
 * dead only after watching its heartbeat stand still for the whole silence window themselves.
 */
/** Heartbeats every 100 ms; silent for 500 ms is dead. */
const siloOptions = (keyPrefix: string) => ({
  redis: testRedis(),
  keyPrefix,
  grains: [Counter],
  heartbeatIntervalMs: 100,
  missedHeartbeatsLimit: 5,
  logLevel: 'silent' as const,
});

describe('membership across a heartbeat rollback', () => {
  it('does not declare a healthy silo dead when its heartbeat is set back, again and again', async () => {
    const keyPrefix = freshPrefix('rollback');
    const options = siloOptions(keyPrefix);
    const watcher = await Silo.start(options);
    const watched = await Silo.start(options);
    const redis = rawRedis();
    const record = `${keyPrefix}:s:{${watched.id}}:info`;
    const heartbeat = async () => Number(await redis.hget(record, 'heartbeatAt'));
    try {
      // Let the watcher's own health window pass, so it judges others (500 ms of silence).
      await waitFor('the watcher to have watched a while', async () => ((await heartbeat()) > 0 ? true : undefined));
      const started = await heartbeat();
      await waitFor('ten heartbeats', async () => ((await heartbeat()) - started >= 1_000 ? true : undefined), { everyMs: 20 });
      // Ten times, right after a heartbeat, the record is set back a minute, as a lagging replica
      // promoted in a failover would have it: the next heartbeat puts it right again.
      for (let i = 0; i < 10; i++) {
        const beat = await heartbeat();
        await waitFor('the next heartbeat', async () => ((await heartbeat()) !== beat ? true : undefined), { everyMs: 5 });
        await redis.hset(record, 'heartbeatAt', String((await heartbeat()) - 60_000));
      }
      const last = await heartbeat();
      await waitFor('ten more heartbeats', async () => ((await heartbeat()) - last >= 1_000 ? true : undefined), { everyMs: 20 });
      expect([watched.status, await redis.hget(record, 'status')]).toEqual(['active', 'active']);
    } finally {
      redis.disconnect();
      await watched.stop();
      await watcher.stop();
    }
  });

  it('still declares a silo dead once its heartbeat stands still for the silence window', async () => {
    const keyPrefix = freshPrefix('rollback-dead');
    const options = siloOptions(keyPrefix);
    const watcher = await Silo.start(options);
    const redis = rawRedis();
    try {
      // A record nobody beats for (a silo that died): listed, active, and silent.
      const now = Number((await redis.time())[0]) * 1_000;
      await redis.hset(`${keyPrefix}:s:{gone}:info`, {
        id: 'gone',
        status: 'active',
        host: 'h',
        pid: '1',
        types: 'Counter',
        startedAt: String(now),
        heartbeatAt: String(now),
        activations: '0',
        heartbeatIntervalMs: '100',
      });
      await redis.sadd(`${keyPrefix}:silos`, 'gone');
      const status = await waitFor(
        'the silent silo to be declared dead',
        async () => {
          const value = await redis.hget(`${keyPrefix}:s:{gone}:info`, 'status');
          return value === 'active' ? undefined : value;
        },
        { timeoutMs: 10_000 },
      );
      expect(status).toBe('dead');
    } finally {
      redis.disconnect();
      await watcher.stop();
    }
  });

  it('does not declare healthy silos dead when Redis is down for longer than the silence window', async () => {
    const server = await startRedisServer({ appendOnly: true });
    // A 1 s window (5 beats of 200 ms): the 1.5 s outage is longer, and shorter than the command
    // timeout, so what the silos send meanwhile waits and goes through once Redis is back.
    const options = {
      redis: server.url,
      keyPrefix: 'outage',
      grains: [Counter],
      heartbeatIntervalMs: 200,
      missedHeartbeatsLimit: 5,
      logLevel: 'silent' as const,
    };
    const silos = [await Silo.start(options), await Silo.start(options), await Silo.start(options)];
    const outcomes: string[] = [];
    for (const silo of silos) void silo.stopped.then((why) => outcomes.push(why));
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // refused while Redis is down; its reads wait for it
    const beats = async () => Promise.all(silos.map(async (silo) => Number(await redis.hget(`outage:s:{${silo.id}}:info`, 'heartbeatAt'))));
    try {
      // Every silo has been healthy for a whole window, so each judges the others.
      const first = await beats();
      await waitFor('a window of heartbeats', async () =>
        (await beats()).every((b, i) => b - (first[i] as number) >= 1_200) ? true : undefined,
      );
      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // the outage itself, not a wait for an event
      await server.restart();
      const back = await beats();
      // Two windows of rounds after it: a silo wrongly judged would be declared dead by then.
      await waitFor(
        'two windows of heartbeats',
        async () => ((await beats()).every((b, i) => b - (back[i] as number) >= 2_000) ? true : undefined),
        {
          timeoutMs: 15_000,
        },
      );
      expect(silos.map((silo) => silo.status)).toEqual(['active', 'active', 'active']);
      expect(outcomes).toEqual([]);
    } finally {
      redis.disconnect();
      for (const silo of silos) await silo.stop();
      await server.stop();
    }
  });
});
