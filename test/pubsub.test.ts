import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { connect, InvalidTopicError, Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { GrainId } from '../src/grain/grain-id.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { SubscriptionTable } from '../src/pubsub/subscription-table.ts';
import { Follower, OrderTracker } from './grains/topics.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';
import { testRedis } from './support/redis.ts';

describe('pub/sub topics', () => {
  const cluster = inProcessSilo('topics', [Follower, OrderTracker]);
  const { keyPrefix, log } = cluster;
  const client = () => cluster.client;

  it('delivers to durable grain subscriptions by pattern, across deactivation and a silo restart', async () => {
    const alice = client().getGrain(Follower, 'alice');
    const bob = client().getGrain(Follower, 'bob');
    await alice.ask('follow', 'user.*');
    await bob.ask('follow', '*.email');
    await bob.ask('follow', 'user.created.email'); // an exact topic as a pattern
    expect(await bob.ask('following')).toEqual([
      { pattern: '*.email', method: 'receive' },
      { pattern: 'user.created.email', method: 'receive' },
    ]);
    expect(await client().publish('user.created.email', { id: 1 })).toBe(2); // bob once, though two patterns match
    expect(await client().publish('auth.login.success', { id: 2 })).toBe(0);
    await cluster.stop(); // every grain deactivated, no silo running
    expect(await client().publish('user.deleted', { id: 3 })).toBe(1);
    await cluster.start();
    const received = await waitFor('alice to get both user topics', async () => {
      const r = await alice.ask('read');
      return r.length === 2 ? r : undefined;
    });
    expect(received).toEqual([
      { topic: 'user.created.email', data: { id: 1 } },
      { topic: 'user.deleted', data: { id: 3 } },
    ]);
    expect(await bob.ask('read')).toEqual([{ topic: 'user.created.email', data: { id: 1 } }]);
    expect(await alice.ask('unfollow', 'user.*')).toBe(true);
    expect(await alice.ask('unfollow', 'user.*')).toBe(false);
    expect(await client().publish('user.created', {})).toBe(0);
  });

  it("delivers to a type's implicit subscription, keyed by a topic segment", async () => {
    expect(await client().publish('order.42.status', { value: 'paid' })).toBe(1);
    expect(await client().publish('order.42.status', { value: 'shipped' })).toBe(1);
    expect(await client().publish('order.status', { value: 'ignored' })).toBe(0);
    expect(await client().getGrain(OrderTracker, '42').ask('read')).toEqual(['paid', 'shipped']);
    // A grain publishes too: the follower of shop.* hears the tracker's announcement.
    await client().getGrain(Follower, 'shop-watcher').ask('follow', 'shop.*');
    expect(await client().getGrain(OrderTracker, '42').ask('announce', 'delivered')).toBe(1);
    await waitFor('the announcement', async () =>
      (await client().getGrain(Follower, 'shop-watcher').ask('read')).some((r) => r.topic === 'shop.42.announced') ? true : undefined,
    );
  });

  it('lets other processes listen live, by pattern', async () => {
    const listener = await connect({ redis: testRedis(), keyPrefix });
    try {
      const heard: string[] = [];
      let done: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => {
        done = resolve;
      });
      // Topics no other test publishes: on a Redis Cluster a publish reaches the other nodes over
      // the cluster bus a little later, so another test's message could still arrive here.
      const subscription = await listener.subscribe('invoice.*.status', (topic, data) => {
        heard.push(`${topic}=${(data as { value: string }).value}`);
        if (heard.length === 2) done();
      });
      await client().publish('invoice.7.status', { value: 'paid' });
      await client().publish('user.created', { value: 'not for me' });
      await client().publish('invoice.status', { value: 'zero segments' });
      await finished;
      expect(heard).toEqual(['invoice.7.status=paid', 'invoice.status=zero segments']);
      await subscription.unsubscribe();
    } finally {
      await listener.close();
    }
  });

  it('refuses wildcards in a published topic and malformed patterns', async () => {
    await expect(client().publish('user.*', {})).rejects.toThrow(InvalidTopicError);
    await expect(client().getGrain(Follower, 'x').ask('follow', 'a..b')).rejects.toMatchObject({ code: 'INVALID_TOPIC' });
    log.expectQuiet();
  });
});

describe('publishing among 10,000 subscriptions', () => {
  it('reads only the subscriptions that can match', async () => {
    const server = await startRedisServer();
    const redis = registerScripts(new Redis(server.url));
    const keyPrefix = 'many';
    const silo = await Silo.start({ redis: server.url, keyPrefix, grains: [Follower], logLevel: 'warn', heartbeatIntervalMs: 60_000 });
    const client = await connect({ redis: server.url, keyPrefix });
    try {
      const table = new SubscriptionTable(redis, new RedisKeys(keyPrefix));
      // 10,000 grains: half on exact sensor topics, half on wildcard patterns under their own roots.
      for (let i = 0; i < 10_000; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, j) => {
            const n = i + j;
            const pattern = n % 2 === 0 ? `sensor.${n}.reading` : `room${n}.*.temperature`;
            return table.subscribe(GrainId.of('Follower', `f${n}`), pattern, 'receive');
          }),
        );
      }
      await client.getGrain(Follower, 'catch-all').ask('follow', '*.reading');
      const outputBytes = async () => Number(/total_net_output_bytes:(\d+)/.exec(await redis.info('stats'))?.[1]);
      const before = await outputBytes();
      expect(await client.publish('sensor.42.reading', { celsius: 21 })).toBe(2);
      const read = (await outputBytes()) - before;
      // Reading every subscription would send back well over 100 KB; one publish reads a few.
      expect(read).toBeLessThan(20_000);
      const received = await waitFor('sensor 42 and the catch-all to receive it', async () => {
        const [a, b] = await Promise.all([
          client.getGrain(Follower, 'f42').ask('read'),
          client.getGrain(Follower, 'catch-all').ask('read'),
        ]);
        return a.length === 1 && b.length === 1 ? [a, b] : undefined;
      });
      expect(received.flat().map((r) => r.topic)).toEqual(['sensor.42.reading', 'sensor.42.reading']);
      process.stdout.write(`[pubsub] one publish among 10,001 subscriptions read ${read} bytes from Redis\n`);
    } finally {
      await client.close();
      await silo.stop();
      redis.disconnect();
      await server.stop();
    }
  }, 60_000);
});
