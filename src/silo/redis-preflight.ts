import type { Redis } from 'ioredis';
import { EvictingRedisError } from '../errors/errors.ts';

/**
 * Refuses a Redis that may evict keys: an evicted mailbox or state hash is lost data. Reads
 * `INFO memory`, which works for ACL users without the CONFIG command.
 */
export async function assertNoEviction(redis: Redis): Promise<void> {
  const info = await redis.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy !== undefined && policy !== 'noeviction') throw new EvictingRedisError(policy);
}
