import { Redis, type RedisOptions } from 'ioredis';

/** How to reach Redis: a `redis://` / `rediss://` URL, or ioredis options. */
export type RedisConnectionInput = string | RedisOptions;

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Longest a command may go unanswered before it fails. Needed because commands in flight when a
 * connection drops are neither re-sent (see below) nor failed by ioredis: without a timeout they
 * would wait for ever. A command that timed out may still have run; every write is fenced or
 * reported as uncertain by its caller.
 */
export const COMMAND_TIMEOUT_MS = 5_000;

/** What a connection is for: plain commands, one blocking read at a time, or pub/sub. */
export type ConnectionKind = 'command' | { blockingSeconds: number } | 'subscriber';

/** Opens one ioredis connection. */
export function openRedis(input: RedisConnectionInput, name: string, kind: ConnectionKind = 'command'): Redis {
  const base: RedisOptions = {
    connectionName: name,
    enableAutoPipelining: false,
    // A command whose reply was lost in a disconnect is not sent again after the reconnect:
    // sent again, an enqueue could land twice. It fails by the command timeout instead.
    autoResendUnfulfilledCommands: false,
    ...(kind === 'command' ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    ...(typeof kind === 'object' ? { maxRetriesPerRequest: null, commandTimeout: kind.blockingSeconds * 1_000 + COMMAND_TIMEOUT_MS } : {}),
    ...(kind === 'subscriber' ? { maxRetriesPerRequest: null } : {}),
  };
  const redis = typeof input === 'string' ? new Redis(input, base) : new Redis({ ...input, ...base });
  // ioredis reconnects by itself; a lost connection surfaces as failed commands, which callers
  // handle. Without a listener, each failed reconnect would be an unhandled 'error' event.
  redis.on('error', () => undefined);
  return redis;
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
