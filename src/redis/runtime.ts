import type { RedisQueueBackend } from 'bullmq';
import type { Redis } from 'ioredis';
import { GrainDirectory } from '../directory/grain-directory.ts';
import { GrainLocator } from '../directory/grain-locator.ts';
import { RedisUnavailableError, describeError } from '../errors/errors.ts';
import { DeadLetterStore } from '../mailbox/dead-letters.ts';
import { createMailboxBackend } from '../mailbox/mailbox-backend.ts';
import { MembershipTable } from '../membership/membership-table.ts';
import { MembershipView } from '../membership/membership-view.ts';
import type { PlacementStrategy } from '../placement/placement.ts';
import { closeRedis, openRedis, waitReady, type RedisConnectionInput } from './connection.ts';
import { RedisKeys } from './keys.ts';
import { SubscriptionTable } from '../pubsub/subscription-table.ts';
import { registerScripts, type ScriptCommands } from './scripts.ts';

/** Everything a client or a silo builds on one command connection. */
export interface RedisRuntime {
  input: RedisConnectionInput;
  redis: Redis & ScriptCommands;
  keys: RedisKeys;
  mailboxRoot: RedisQueueBackend;
  directory: GrainDirectory;
  membership: MembershipTable;
  membershipView: MembershipView;
  locator: GrainLocator;
  deadLetters: DeadLetterStore;
  subscriptions: SubscriptionTable;
}

export interface RuntimeOptions {
  input: RedisConnectionInput;
  keyPrefix: string;
  connectionName: string;
  placement: PlacementStrategy;
  localSiloId: string | undefined;
  lockDurationMs: number;
  connectTimeoutMs: number;
  membershipRefreshMs: number;
}

/** Opens the command connection and builds the Redis-backed parts on it. */
export async function openRuntime(options: RuntimeOptions): Promise<RedisRuntime> {
  const keys = new RedisKeys(options.keyPrefix);
  const redis = registerScripts(openRedis(options.input, options.connectionName));
  await readyWithin(redis, options.connectTimeoutMs);
  try {
    const mailboxRoot = await createMailboxBackend(redis, keys, { lockDurationMs: options.lockDurationMs });
    const directory = new GrainDirectory(redis, keys);
    const membership = new MembershipTable(redis, keys);
    const membershipView = new MembershipView(membership, options.membershipRefreshMs);
    const locator = new GrainLocator(redis, keys, directory, membershipView, options.placement, options.localSiloId);
    const deadLetters = new DeadLetterStore(redis, keys);
    const subscriptions = new SubscriptionTable(redis, keys);
    return { input: options.input, redis, keys, mailboxRoot, directory, membership, membershipView, locator, deadLetters, subscriptions };
  } catch (error) {
    await closeRedis(redis);
    throw error;
  }
}

/** Waits for a connection, failing with RedisUnavailableError instead of retrying for ever. */
export async function readyWithin(redis: Redis, timeoutMs: number): Promise<void> {
  try {
    await waitReadyWithin(redis, timeoutMs);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}

/** Waits up to `timeoutMs` for the connection to be ready; it keeps reconnecting either way. */
export async function waitReadyWithin(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  let onError: ((error: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`Redis not reachable within ${timeoutMs} ms`)), timeoutMs);
    // Wrong credentials do not heal by waiting: fail at once, saying so.
    onError = (error: Error) => {
      if (/WRONGPASS|NOAUTH|NOPERM|invalid password/i.test(error.message)) {
        reject(new RedisUnavailableError(`Redis refused the credentials: ${error.message}`, error));
      }
    };
    redis.on('error', onError);
  });
  try {
    await Promise.race([waitReady(redis), failure]);
  } catch (error) {
    throw error instanceof RedisUnavailableError ? error : new RedisUnavailableError(describeError(error), error);
  } finally {
    clearTimeout(timer);
    if (onError !== undefined) redis.off('error', onError);
  }
}
