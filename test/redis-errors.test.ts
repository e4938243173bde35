import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, RedisUnavailableError, Silo } from 'redgrain';
import { freePort, startRedisCluster, startRedisServer, type RedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { Ledger } from './grains/event-grains.ts';
import { redgrain } from './support/cli.ts';

/** Connects and returns the error, and how long it took to come. */
async function failure(start: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await start().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

/** "Redis unreachable", as a new user meets it: it names where and why, and does not make you wait. */
describe('Redis unreachable at start', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer({ args: ['--requirepass', 'right-password'] });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a refused connection fails at once, naming host:port and ECONNREFUSED (connect and Silo.start)', async () => {
    const port = await freePort(); // nothing listens there
    const client = await failure(() => connect({ redis: `redis://127.0.0.1:${port}`, connectTimeoutMs: 10_000 }));
    expect(client.error).toBeInstanceOf(RedisUnavailableError);
    expect((client.error as Error).message).toBe(
      `Redis at 127.0.0.1:${port} is unavailable: connection refused (ECONNREFUSED): nothing listens there`,
    );
    expect(client.ms).toBeLessThan(1_000);
    const silo = await failure(() => Silo.start({ redis: `redis://127.0.0.1:${port}`, grains: [Counter], connectTimeoutMs: 10_000 }));
    expect((silo.error as Error).message).toBe((client.error as Error).message);
    expect(silo.ms).toBeLessThan(1_000);
  });

  it('a Redis Cluster none of whose startup nodes answers fails at once too, naming the cause', async () => {
    const port = await freePort(); // nothing listens there
    const client = await failure(() => connect({ redis: { cluster: [`redis://127.0.0.1:${port}`] }, connectTimeoutMs: 10_000 }));
    expect(client.error).toBeInstanceOf(RedisUnavailableError);
    expect((client.error as Error).message).toBe(
      `Redis at 127.0.0.1:${port} (cluster) is unavailable: connection refused (ECONNREFUSED): nothing listens there`,
    );
    expect(client.ms).toBeLessThan(2_000);
    const other = await freePort();
    const silo = await failure(() =>
      Silo.start({
        redis: { cluster: [`redis://127.0.0.1:${port}`, `redis://127.0.0.1:${other}`] },
        grains: [Counter],
        connectTimeoutMs: 10_000,
      }),
    );
    expect(silo.error).toBeInstanceOf(RedisUnavailableError);
    expect((silo.error as Error).message).toBe(
      `Redis at 127.0.0.1:${port},127.0.0.1:${other} (cluster) is unavailable: connection refused (ECONNREFUSED): nothing listens there`,
    );
    expect(silo.ms).toBeLessThan(2_000);
  });

  it('an unknown host fails at once, naming it and ENOTFOUND', async () => {
    const { error, ms } = await failure(() => connect({ redis: 'redis://redis.example.invalid:6390', connectTimeoutMs: 10_000 }));
    expect((error as Error).message).toBe(
      'Redis at redis.example.invalid:6390 is unavailable: host not found (ENOTFOUND: getaddrinfo ENOTFOUND redis.example.invalid)',
    );
    expect(ms).toBeLessThan(5_000);
  });

  it('a wrong password and a missing one fail at once, saying so, without the password', async () => {
    const wrong = await failure(() => connect({ redis: `redis://default:not-the-password@127.0.0.1:${server.port}` }));
    expect((wrong.error as Error).message).toBe(
      `Redis at 127.0.0.1:${server.port} is unavailable: it refused the credentials (WRONGPASS invalid username-password pair or user is disabled.)`,
    );
    expect(wrong.ms).toBeLessThan(1_000);
    const missing = await failure(() => connect({ redis: server.url }));
    expect((missing.error as Error).message).toBe(
      `Redis at 127.0.0.1:${server.port} is unavailable: it needs a user and password (NOAUTH); put them in the URL: redis://user:password@host:port`,
    );
    expect(missing.ms).toBeLessThan(1_000);
    const client = await connect({ redis: `redis://default:right-password@127.0.0.1:${server.port}`, keyPrefix: 'errors' });
    await client.close();
  });

  it('a database the server does not have fails at once, saying so (connect, Silo.start, redgrain inspect), not on database 0', async () => {
    // The suite's Redis has the default 16 databases: 15 is the last.
    const url = `${inject('redisUrl')}/16`;
    const port = new URL(url).port;
    const message = `Redis at 127.0.0.1:${port} is unavailable: it has no such database (SELECT: ERR DB index is out of range); the URL's database must be below the server's \`databases\` setting (16 by default)`;
    const client = await failure(() => connect({ redis: url, connectTimeoutMs: 10_000 }));
    expect(client.error).toBeInstanceOf(RedisUnavailableError);
    expect((client.error as Error).message).toBe(message);
    expect(client.ms).toBeLessThan(1_000);
    const silo = await failure(() => Silo.start({ redis: url, grains: [Counter], connectTimeoutMs: 10_000 }));
    expect(silo.error).toBeInstanceOf(RedisUnavailableError);
    expect((silo.error as Error).message).toBe(message);
    expect(await redgrain('inspect', '--redis', url)).toEqual({ code: 1, out: '', err: `redgrain: ${message}` });
    const last = await connect({ redis: `${inject('redisUrl')}/15`, keyPrefix: 'errors' });
    await last.close();
  });

  it('a server that never answers fails after connectTimeoutMs, naming host:port', async () => {
    // A listening socket that accepts and never replies: the connection is made, Redis never answers.
    const { createServer } = await import('node:net');
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const { error, ms } = await failure(() => connect({ redis: `redis://127.0.0.1:${port}`, connectTimeoutMs: 800 }));
      expect((error as Error).message).toBe(`Redis at 127.0.0.1:${port} not reachable within 800 ms (no answer)`);
      expect(ms).toBeGreaterThanOrEqual(790);
      expect(ms).toBeLessThan(3_000);
    } finally {
      silent.close();
    }
  });
});

describe('a Redis that may evict', () => {
  it('is refused on a cluster when any one master evicts, naming its policy', async () => {
    const cluster = await startRedisCluster();
    const { Redis } = await import('ioredis');
    const second = new Redis(cluster.urls[1] as string);
    try {
      await second.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await expect(Silo.start({ redis: { cluster: cluster.urls }, grains: [Counter], logLevel: 'silent' })).rejects.toMatchObject({
        code: 'REDIS_EVICTION_POLICY',
        message: expect.stringContaining('allkeys-lru'),
      });
      await second.config('SET', 'maxmemory-policy', 'noeviction');
      const silo = await Silo.start({ redis: { cluster: cluster.urls }, grains: [Counter], logLevel: 'silent' });
      await silo.stop();
    } finally {
      second.disconnect();
      await cluster.stop();
    }
  });
});

/** Every client call that reads or writes Redis, once Redis is gone: a typed error, in bounded time, and `close` is not held up. */
describe('Redis gone after connecting', () => {
  it('publish, subscribe, dead letters and readEvents reject with RedisUnavailableError within redisTimeoutMs, naming what failed', async () => {
    const server = await startRedisServer();
    try {
      const client = await connect({ redis: server.url, redisTimeoutMs: 1_000 });
      await server.kill();
      const calls: [string, () => Promise<unknown>][] = [
        ['publish on a.b', () => client.publish('a.b', 1)],
        ['subscribe to a.*', () => client.subscribe('a.*', () => undefined)],
        ['list the dead letters', () => client.deadLetters.list()],
        ['discard dead letter "1-0"', () => client.deadLetters.discard('1-0')],
        ['read the events of Ledger/l1', () => client.readEvents(Ledger, 'l1')],
      ];
      for (const [what, call] of calls) {
        const { error, ms } = await failure(call);
        expect(error, what).toBeInstanceOf(RedisUnavailableError);
        expect((error as Error).message, what).toMatch(
          new RegExp(`^Cannot ${what.replace(/[.*"/]/g, '\\$&')}: Redis at 127\\.0\\.0\\.1:\\d+ not reachable within 1000 ms`),
        );
        // Before: a plain Error after the 5 s command timeout, and a subscribe that never settled.
        expect(ms, what).toBeLessThan(3_000);
      }
      const closing = Date.now();
      await client.close();
      expect(Date.now() - closing).toBeLessThan(1_000);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('close does not wait for a subscribe still waiting for Redis; the subscribe fails with the connection', async () => {
    const server = await startRedisServer();
    try {
      const client = await connect({ redis: server.url, redisTimeoutMs: 10_000 });
      await server.kill();
      const subscribing = failure(() => client.subscribe('a.*', () => undefined));
      const closing = Date.now();
      await client.close();
      // Before: close never settled.
      expect(Date.now() - closing).toBeLessThan(1_000);
      const { error, ms } = await subscribing;
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(ms).toBeLessThan(2_000);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
