import { Redis, type RedisOptions } from 'ioredis';

/** How to reach Redis: a `redis://` / `rediss://` URL, or ioredis options. */
export type RedisConnectionInput = string | RedisOptions;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Opens one ioredis connection. `blocking` connections wait for ever on a blocking read, so they
 * never time out commands on their own (BullMQ requires this of blocking connections too).
 */
export function openRedis(input: RedisConnectionInput, name: string, blocking = false): Redis {
  const base: RedisOptions = {
    connectionName: name,
    enableAutoPipelining: false,
    ...(blocking ? { maxRetriesPerRequest: null } : {}),
  };
  return typeof input === 'string' ? new Redis(input, base) : new Redis({ ...input, ...base });
}

/** Closes a connection, waiting for its queued replies when it is healthy, dropping it otherwise. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  redis.disconnect();
}

/** Resolves once the connection is ready to take commands. */
export async function waitReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      redis.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      redis.off('ready', onReady);
      reject(new Error('Redis connection ended before it was ready'));
    };
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}
