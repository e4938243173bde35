import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { freshPrefix } from './support/prefix.ts';

/**
 * A silo's inbox read (takeInbox) first takes off its taking list the wake-ups the last read
 * handled, and only those: one that reached the list meanwhile (a blocking read the silo had given
 * up on, served late) stays, to be handled from the list later.
 */
describe('the inbox read (takeInbox)', () => {
  let redis: ReturnType<typeof registerScripts>;
  beforeAll(() => {
    redis = registerScripts(new Redis(inject('redisUrl')));
  });
  afterAll(() => redis?.disconnect());

  const lists = (label: string) => {
    const keys = new RedisKeys(freshPrefix(label));
    return { inbox: keys.siloInbox('s1'), taking: keys.siloTaking('s1') };
  };

  it('clears the handled wake-ups and moves what waits, oldest first', async () => {
    const { inbox, taking } = lists('take-clear');
    await redis.lpush(taking, 'T/a', 'T/b', 'T/a');
    await redis.lpush(inbox, 'T/c', 'T/d');
    expect(await redis.takeInbox(inbox, taking, 1_000, 'T/a', 'T/b', 'T/a')).toEqual(['T/c', 'T/d']);
    expect(await redis.lrange(taking, 0, -1)).toEqual(['T/d', 'T/c']);
    expect(await redis.llen(inbox)).toBe(0);
  });

  it('keeps a wake-up that reached the taking list after the last read, even one for a grain it handled', async () => {
    const { inbox, taking } = lists('take-late');
    await redis.lpush(taking, 'T/a', 'T/b');
    // Served late: a newer wake-up for T/a and one for T/x, pushed at the head as BLMOVE does.
    await redis.lpush(taking, 'T/a', 'T/x');
    expect(await redis.takeInbox(inbox, taking, 1_000, 'T/a', 'T/b')).toEqual([]);
    expect(await redis.lrange(taking, 0, -1)).toEqual(['T/x', 'T/a']);
  });

  it('takes at most the count asked for', async () => {
    const { inbox, taking } = lists('take-count');
    await redis.lpush(inbox, 'T/1', 'T/2', 'T/3');
    expect(await redis.takeInbox(inbox, taking, 2)).toEqual(['T/1', 'T/2']);
    expect(await redis.lrange(inbox, 0, -1)).toEqual(['T/3']);
  });
});
