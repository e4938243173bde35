import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import { connect, PayloadTooLargeError, RedisUnavailableError, SerializationError, Silo, type GrainClient } from 'redgrain';
import { startRedisCluster, startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { Bag } from './grains/test-grains.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

describe('bad input', () => {
  const keyPrefix = freshPrefix('bad');
  const log = new LogRecorder();
  let silo: Silo;
  let client: GrainClient;
  let redis: Redis;

  beforeAll(async () => {
    silo = await Silo.start({ redis: inject('redisUrl'), grains: [Counter, Bag], keyPrefix, logger: log, maxPayloadBytes: 4_000 });
    client = await connect({ redis: inject('redisUrl'), keyPrefix, maxPayloadBytes: 1_000 });
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
    redis?.disconnect();
  });

  it('refuses arguments over maxPayloadBytes, and enqueues nothing', async () => {
    const bag = client.getGrain(Bag, 'big');
    await expect(bag.send('put', 'x', 'y'.repeat(2_000))).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await redis.exists(`${keyPrefix}:q:{Bag/big}:id`)).toBe(0);
    expect(await bag.ask('put', 'x', 'small')).toBe(1);
  });

  it("refuses a return value over the silo's maxPayloadBytes: the ask rejects with PayloadTooLargeError, the grain goes on", async () => {
    const bag = client.getGrain(Bag, 'hoard');
    for (const name of ['a', 'b', 'c', 'd', 'e']) await bag.ask('put', name, 'v'.repeat(900));
    const error = await bag.ask('items').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as Error).message).toMatch(
      /^The return value of Bag\.items is \d{4} bytes serialized; the limit is 4000 \(maxPayloadBytes\)$/,
    );
    expect(await bag.ask('put', 'f', 'small')).toBe(6);
  });

  it('a foreign job injected into a grain queue is failed with a reason; the grain goes on', async () => {
    const queue = new Queue('{Counter/injected}', { connection: new Redis(inject('redisUrl')), prefix: `${keyPrefix}:q` });
    try {
      await queue.add('add', { not: 'an envelope' });
      await queue.add('add', 'just a string');
      const counter = client.getGrain(Counter, 'injected');
      expect(await counter.ask('add', 2)).toBe(2);
      const failed = await waitFor('both foreign jobs to fail', async () => {
        const jobs = await queue.getFailed();
        return jobs.length === 2 ? jobs : undefined;
      });
      expect(failed.map((j) => j.failedReason)).toEqual([
        'malformed message: not a redgrain envelope',
        'malformed message: not a redgrain envelope',
      ]);
      expect(log.problems().filter((e) => e.message === 'refused a message that is not a redgrain envelope')).toHaveLength(2);
    } finally {
      await queue.close();
    }
  });

  it('__proto__ and constructor keys are refused with SerializationError, and harmless when injected behind the client’s back', async () => {
    const bag = client.getGrain(Bag, 'hostile');
    const hostile = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    await expect(bag.ask('put', 'p', hostile)).rejects.toBeInstanceOf(SerializationError);
    await expect(bag.ask('put', 'c', { constructor: { prototype: { polluted: true } } })).rejects.toBeInstanceOf(SerializationError);
    // A key named constructor in state is refused when the turn commits: the turn fails, no change.
    await expect(bag.ask('put', 'constructor', { name: 'plain data' })).rejects.toBeInstanceOf(SerializationError);
    expect(await bag.ask('put', 'before', 0)).toBe(1);

    // A message written into the mailbox behind the client's back, with a __proto__ key in its
    // arguments: it arrives as plain data, and the state holding it cannot be serialized, so
    // the turn fails and changes nothing.
    const queue = new Queue('{Bag/hostile}', { connection: new Redis(inject('redisUrl')), prefix: `${keyPrefix}:q` });
    try {
      const args = '{"json":["q",{"__proto__":{"polluted":true}}]}';
      await queue.add('put', { v: 1, m: 'put', a: args, c: 'injected', t: Date.now() });
      expect(await bag.ask('put', 'after', 1)).toBe(2);
      expect(Object.keys(await bag.ask('items')).sort()).toEqual(['after', 'before']);
    } finally {
      await queue.close();
    }
    // A state field named __proto__ written into Redis behind redgrain's back loads as nothing.
    await redis.hset(`${keyPrefix}:g:{Counter/hostile}:state`, '__proto__', '{"json":{"polluted":true}}');
    expect(await client.getGrain(Counter, 'hostile').ask('add', 1)).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('a handler error on a send is logged and kept in the grain’s failed list, with its reason', async () => {
    const counter = client.getGrain(Counter, 'failing-send');
    const queue = new Queue('{Counter/failing-send}', { connection: new Redis(inject('redisUrl')), prefix: `${keyPrefix}:q` });
    try {
      // Written behind the client's back (a client holding the class refuses the method itself).
      await queue.add('nope', { v: 1, m: 'nope', a: '{"json":[]}', c: 'injected', t: Date.now() });
      expect(await counter.ask('add', 1)).toBe(1); // queued behind it: the grain went on
      const failed = await queue.getFailed();
      expect(failed.map((j) => [j.name, j.failedReason])).toEqual([
        ['nope', 'UnknownMethodError: Grain type "Counter" has no handler "nope"'],
      ]);
    } finally {
      await queue.close();
    }
    expect(log.problems().some((e) => e.message === 'handler failed' && e.fields.method === 'nope')).toBe(true);
  });

  it('two key prefixes on one Redis never see each other’s grains', async () => {
    const otherPrefix = freshPrefix('other');
    const other = await Silo.start({ redis: inject('redisUrl'), grains: [Counter], keyPrefix: otherPrefix, logLevel: 'warn' });
    const otherClient = await connect({ redis: inject('redisUrl'), keyPrefix: otherPrefix });
    try {
      await client.getGrain(Counter, 'shared-name').ask('add', 5);
      expect(await otherClient.getGrain(Counter, 'shared-name').ask('add', 1)).toBe(1);
      expect(await client.getGrain(Counter, 'shared-name').ask('get')).toBe(5);
    } finally {
      await otherClient.close();
      await other.stop();
    }
  });
});

describe('Redis down', () => {
  it('send and ask reject with RedisUnavailableError within redisTimeoutMs, and work again once Redis is back', async () => {
    const server = await startRedisServer({ appendOnly: true });
    const log = new LogRecorder();
    const silo = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: 'down', logger: log });
    const client = await connect({ redis: server.url, keyPrefix: 'down', redisTimeoutMs: 1_000 });
    onTestFailed(() => {
      for (const e of log.entries) process.stdout.write(`${e.level} ${e.message} ${JSON.stringify(e.fields)}\n`);
    });
    try {
      const counter = client.getGrain(Counter, 'c');
      expect(await counter.ask('add', 1)).toBe(1);
      await server.kill();
      // The first call may race the client noticing the dead socket (then the error says the
      // message may or may not have been enqueued); once it knows, nothing is sent at all.
      const calls = [() => counter.send('add', 1), () => counter.ask('add', 1), () => counter.send('add', 1)];
      const messages: string[] = [];
      for (const call of calls) {
        const started = Date.now();
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RedisUnavailableError);
        expect(Date.now() - started).toBeLessThan(3_000);
        messages.push((error as Error).message);
      }
      expect(messages.at(-1)).toContain('was not enqueued');
      await server.restart();
      // Back: the counter holds the first add, plus whatever uncertain first call landed.
      const after = await waitFor('the cluster to be back', () =>
        counter
          .with({ timeoutMs: 2_000 })
          .ask('get')
          .catch(() => undefined),
      );
      expect(after).toBeGreaterThanOrEqual(1);
      expect(await counter.ask('add', 1)).toBe(after + 1);
    } finally {
      await client.close();
      await silo.stop().catch(() => undefined);
      await server.stop();
    }
  });

  it('an ask still subscribing to its replies when the client closes rejects with ClosedError at once (Redis Cluster)', async () => {
    // On a cluster, replies come by sharded pub/sub, whose subscription a disconnect leaves
    // unsettled: the ask must not wait for its subscription timeout.
    const cluster = await startRedisCluster();
    const redis = { cluster: cluster.urls };
    const silo = await Silo.start({ redis, grains: [Counter], keyPrefix: 'closing', logLevel: 'silent' });
    const client = await connect({ redis, keyPrefix: 'closing', redisTimeoutMs: 8_000 });
    try {
      // The client's first calls, closed before they are through: the asks are still subscribing.
      const calls = Array.from({ length: 20 }, (_, i) => client.getGrain(Counter, `c${i}`));
      const asking = calls.map((counter) => counter.ask('get').catch((e: unknown) => e));
      const sending = calls.map((counter) => counter.send('add', 1).catch((e: unknown) => e));
      const started = Date.now();
      const closing = client.close();
      const errors = await Promise.all(asking);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(errors.map((error) => (error as Error).name)).toEqual(calls.map(() => 'ClosedError'));
      await Promise.all(sending);
      await closing;
    } finally {
      await client.close();
      await silo.stop();
      await cluster.stop();
    }
  });
});
