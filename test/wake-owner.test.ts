import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GrainId } from '../src/grain/grain-id.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { freshPrefix } from './support/prefix.ts';

/**
 * On one Redis a message's wake-up goes right behind its enqueue, in the same round trip: one
 * script reads the grain's owner and wakes it, but only while that silo takes wake-ups. Otherwise
 * it names the owner (or none) and the sender routes the wake-up itself.
 */
describe('the wake-up sent behind an enqueue (wakeOwner)', () => {
  let redis: ReturnType<typeof registerScripts>;
  beforeAll(() => {
    redis = registerScripts(new Redis(inject('redisUrl')));
  });
  afterAll(() => redis?.disconnect());

  const grain = GrainId.of('Counter', 'c/1');
  const wake = (keys: RedisKeys) => redis.wakeOwner(keys.directory(grain), keys.siloKeyStart(), grain.tag);

  for (const status of ['active', 'joining', 'stopping'] as const) {
    it(`wakes an owner that is ${status}: its inbox gets the grain's tag`, async () => {
      const keys = new RedisKeys(freshPrefix(`wake-${status}`));
      await redis.hset(keys.directory(grain), 'silo', 'silo-1', 'epoch', '3');
      await redis.hset(keys.siloInfo('silo-1'), 'status', status);
      expect(await wake(keys)).toBe(1);
      expect(await redis.lrange(keys.siloInbox('silo-1'), 0, -1)).toEqual([grain.tag]);
    });
  }

  for (const status of ['left', 'dead', undefined] as const) {
    it(`names an owner that is ${status ?? 'unknown'} and pushes nothing`, async () => {
      const keys = new RedisKeys(freshPrefix(`wake-${status ?? 'unknown'}`));
      await redis.hset(keys.directory(grain), 'silo', 'silo-2', 'epoch', '1');
      if (status !== undefined) await redis.hset(keys.siloInfo('silo-2'), 'status', status);
      expect(await wake(keys)).toBe('silo-2');
      expect(await redis.exists(keys.siloInbox('silo-2'))).toBe(0);
    });
  }

  it('answers null when no silo owns the grain', async () => {
    const keys = new RedisKeys(freshPrefix('wake-none'));
    expect(await wake(keys)).toBeNull();
    expect(await redis.keys(`${keys.prefix}:*`)).toEqual([]);
  });
});
