import type { RedisClient } from '../redis/connection.ts';
import { dataNodes } from '../redis/commands.ts';
import { EvictingRedisError } from '../errors/errors.ts';

/**
 * Refuses a Redis that may evict keys: an evicted mailbox or state hash is lost data. Reads
 * `INFO memory` (which works for ACL users without the CONFIG command) on every master of a cluster.
 */
export async function assertNoEviction(redis: RedisClient): Promise<void> {
  for (const node of dataNodes(redis)) {
    const info = await node.info('memory');
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (policy !== undefined && policy !== 'noeviction') throw new EvictingRedisError(policy);
  }
}
