import { createRedisBackend, type RedisQueueBackend } from 'bullmq';
import type { RedisClient } from '../redis/connection.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** Options every grain mailbox shares. */
export interface MailboxSettings {
  /** How long a message's lock lasts before BullMQ considers it stalled; renewed during long turns. */
  lockDurationMs: number;
}

/**
 * One BullMQ Redis backend over a process's single command connection; every grain's mailbox is a
 * sibling of it (`forQueue`), so any number of grain queues share that one connection and none
 * opens a blocking connection of its own.
 */
export async function createMailboxBackend(redis: RedisClient, keys: RedisKeys, settings: MailboxSettings): Promise<RedisQueueBackend> {
  const root = createRedisBackend('root', {
    connection: redis,
    prefix: keys.bullPrefix,
    // Read by BullMQ's moveToActive / moveToFinished for the lock they take on the next message.
    lockDuration: settings.lockDurationMs,
  } as Parameters<typeof createRedisBackend>[1]);
  // The backend re-emits the connection's errors; the connection reconnects by itself and
  // failed commands surface where they were issued, so nothing here needs to act on them.
  root.on('error', () => undefined);
  await root.waitUntilReady();
  return root;
}
