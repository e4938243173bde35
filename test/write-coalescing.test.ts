import type { Socket } from 'node:net';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis } from '../src/redis/connection.ts';
import { flushWrites } from '../src/redis/write-coalescing.ts';
import { freshPrefix } from './support/prefix.ts';
import { testRedis } from './support/redis.ts';

/**
 * A connection hands the kernel what it writes in one tick as one write: the first command goes
 * out at once, the rest of the tick's commands together at its end, in the order they were sent.
 */
describe('write coalescing', () => {
  let redis: ReturnType<typeof openRedis>;
  /** Keys in one slot of a Redis Cluster. */
  const tag = `{${freshPrefix('coalesce')}}`;
  /** The sockets' writes as the kernel sees them: one per `_write`, one per `_writev`. */
  const writes = { count: 0 };
  beforeAll(async () => {
    redis = openRedis(testRedis(), 'write-coalescing-test');
    await redis.get(`${tag}:warm-up`); // connects to the master of the test's slot
    const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
    for (const node of nodes) {
      const socket = (node as unknown as { stream?: Socket & { _write: Function; _writev: Function } }).stream;
      if (socket === undefined) continue; // a master this test never talks to
      for (const method of ['_write', '_writev'] as const) {
        const original = socket[method];
        socket[method] = function (this: Socket, ...args: unknown[]) {
          writes.count += 1;
          return original.apply(this, args);
        };
      }
    }
  });
  afterAll(() => redis?.disconnect());

  it('sends the commands of one tick in two writes, in order, and each gets its own reply', async () => {
    const key = `${tag}:list`;
    writes.count = 0;
    const pushes = Array.from({ length: 50 }, (_, i) => redis.rpush(key, String(i)));
    const multi = redis.multi().rpush(key, 'm').lrange(key, 0, -1).exec();
    expect(await Promise.all(pushes)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const [[, length], [, list]] = (await multi) as [[null, number], [null, string[]]];
    expect(length).toBe(51);
    expect(list).toEqual([...Array.from({ length: 50 }, (_, i) => String(i)), 'm']);
    expect(writes.count).toBe(2);
  });

  it('sends what a tick holds back at once when told to (flushWrites)', async () => {
    writes.count = 0;
    const replies = [redis.get(`${tag}:a`), redis.get(`${tag}:b`), redis.get(`${tag}:c`)];
    expect(writes.count).toBe(1); // the first at once, the rest held
    flushWrites(redis);
    expect(writes.count).toBe(2);
    expect(await Promise.all(replies)).toEqual([null, null, null]);
  });

  it('writes a lone command at once, without waiting for the end of the tick', async () => {
    writes.count = 0;
    const reply = redis.get(`${tag}:none`);
    expect(writes.count).toBe(1);
    expect(await reply).toBe(null);
  });
});
