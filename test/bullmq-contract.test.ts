import { createRequire } from 'node:module';
import { Queue, type RedisQueueBackend } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { GrainId } from '../src/grain/grain-id.ts';
import {
  addAllInTransaction,
  BULLMQ_VERSION,
  fetchedJob,
  finishErrorCode,
  moveToActiveArgs,
  moveToFinishedArgs,
  QUEUE_PARTS,
  releaseLock,
} from '../src/mailbox/bullmq-adapter.ts';
import { createMailboxBackend } from '../src/mailbox/mailbox-backend.ts';
import { openTurnConnection, type TurnTransaction } from '../src/mailbox/turn-connection.ts';
import { closeRedis, type RedisClient } from '../src/redis/connection.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { freshPrefix } from './support/prefix.ts';

/**
 * What redgrain relies on inside BullMQ (src/mailbox/bullmq-adapter.ts), against a real Redis and
 * the installed BullMQ: a BullMQ upgrade that changes any of it fails here.
 */
describe('the BullMQ contract', () => {
  const keys = new RedisKeys(freshPrefix('bullmq-contract'));
  const grain = GrainId.of('Contract', 'one');
  let redis: Redis;
  let turns: RedisClient;
  let backend: RedisQueueBackend;
  let queue: Queue;

  beforeAll(async () => {
    redis = new Redis(inject('redisUrl'));
    turns = openTurnConnection(inject('redisUrl'), 'bullmq-contract-turns');
    const root = await createMailboxBackend(redis, keys, { lockDurationMs: 30_000 });
    const name = keys.queueName(grain);
    backend = root.forQueue(name) as RedisQueueBackend;
    queue = new Queue(name, { connection: redis, prefix: keys.bullPrefix, skipMetasUpdate: true }, () => backend);
  });
  afterAll(async () => {
    await queue?.close();
    await closeRedis(turns);
    redis?.disconnect();
  });

  /** Sends one MULTI on the turn connection, as a turn does, and returns its replies. */
  const multi = async (build: (tx: TurnTransaction) => void): Promise<unknown[]> => {
    const tx = turns.multi() as TurnTransaction;
    build(tx);
    return (((await tx.exec()) ?? []) as [Error | null, unknown][]).map(([error, reply]) => {
      if (error !== null) throw error;
      return reply;
    });
  };

  it('is the BullMQ version the adapter was written against', () => {
    const installed = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;
    expect(installed).toBe(BULLMQ_VERSION);
  });

  it('adds in order, takes and locks, finishes with fetch-next, refuses a wrong token, and leaves only the keys the mailbox tidies', async () => {
    await addAllInTransaction(queue, [
      { name: 'a', data: { n: 1 } },
      { name: 'b', data: { n: 2 } },
      { name: 'c', data: { n: 3 } },
    ]);
    // Job ids and keys are where RedisKeys says they are.
    expect(keys.job(grain, '1')).toBe(backend.toKey('1'));
    expect(keys.mailbox(grain, 'wait')).toBe(backend.toKey('wait'));
    expect(await redis.lrange(keys.mailbox(grain, 'wait'), 0, -1)).toEqual(['3', '2', '1']);

    const take = moveToActiveArgs(backend, 'silo:take:1', 30_000, Date.now());
    const taken = await multi((tx) => {
      tx.moveToActive(...take);
      tx.moveToActive(...take);
    });
    expect(taken.map(fetchedJob)).toEqual([
      { id: '1', name: 'a', data: '{"n":1}', attemptsStarted: 1 },
      { id: '2', name: 'b', data: '{"n":2}', attemptsStarted: 1 },
    ]);
    expect(await redis.get(keys.jobLock(grain, '1'))).toBe('silo:take:1');
    expect(await redis.pttl(keys.jobLock(grain, '1'))).toBeGreaterThan(29_000);
    expect(await redis.lrange(keys.mailbox(grain, 'active'), 0, -1)).toEqual(['2', '1']);

    // A finish presenting another token is refused with BullMQ's error code, and changes nothing.
    const [refused] = await multi((tx) =>
      tx.moveToFinished(...moveToFinishedArgs(backend, '1', { target: 'completed' }, 'silo:other:9', false)),
    );
    expect(finishErrorCode(refused)).toBeLessThan(0);
    expect(await redis.exists(keys.job(grain, '1'))).toBe(1);

    // Completed with fetch-next: the record goes, and the next job comes locked with the same token.
    const [next] = await multi((tx) =>
      tx.moveToFinished(...moveToFinishedArgs(backend, '1', { target: 'completed' }, 'silo:take:1', true)),
    );
    expect(finishErrorCode(next)).toBeUndefined();
    expect(fetchedJob(next)).toEqual({ id: '3', name: 'c', data: '{"n":3}', attemptsStarted: 1 });
    expect(await redis.exists(keys.job(grain, '1'))).toBe(0);
    expect(await redis.get(keys.jobLock(grain, '3'))).toBe('silo:take:1');

    // Failed: kept among the failed with its reason; nothing fetched when nothing waits.
    const [failed, last] = await multi((tx) => {
      tx.moveToFinished(...moveToFinishedArgs(backend, '2', { target: 'failed', reason: 'boom', keepFailed: 10 }, 'silo:take:1', false));
      tx.moveToFinished(...moveToFinishedArgs(backend, '3', { target: 'completed' }, 'silo:take:1', true));
    });
    expect([finishErrorCode(failed), fetchedJob(failed), finishErrorCode(last), fetchedJob(last)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(await redis.zrange(keys.mailbox(grain, 'failed'), '0', '-1')).toEqual(['2']);
    expect(await redis.hget(keys.job(grain, '2'), 'failedReason')).toBe('boom');

    // releaseLock lets go of a lock only for its own token.
    await redis.set(keys.jobLock(grain, '9'), 'silo:take:2');
    await releaseLock(backend, keys.jobLock(grain, '9'), 'silo:take:3');
    expect(await redis.get(keys.jobLock(grain, '9'))).toBe('silo:take:2');
    await releaseLock(backend, keys.jobLock(grain, '9'), 'silo:take:2');
    expect(await redis.exists(keys.jobLock(grain, '9'))).toBe(0);

    // Every key the queue left is a job's (the failed one, kept) or one of the parts tidy removes.
    const left = await redis.keys(`${backend.toKey('')}*`);
    const parts = new Set<string>(QUEUE_PARTS.map((part) => backend.toKey(part)));
    expect(left.filter((key) => !parts.has(key)).sort()).toEqual([keys.job(grain, '2')]);
  });
});
