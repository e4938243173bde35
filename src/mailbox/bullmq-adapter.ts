import { Job, raw2NextJobData, type JobJson, type Queue, type RedisQueueBackend } from 'bullmq';
import { moveToActive } from 'bullmq/dist/esm/scripts/moveToActive-11.js';
import { moveToFinished } from 'bullmq/dist/esm/scripts/moveToFinished-14.js';
import { Packr } from 'msgpackr';

/*
 * Everything redgrain relies on inside BullMQ, in one place. Grain mailboxes are BullMQ queues
 * consumed by hand: a turn's MULTI runs BullMQ's own moveToActive and moveToFinished scripts next
 * to our commit, so redgrain needs what BullMQ's public API does not give: its compiled scripts,
 * the keys and argument encoding of moveToActive, the shape of a fetched job, and the names of the
 * keys a queue leaves behind. test/bullmq-contract.test.ts pins all of it to BULLMQ_VERSION against
 * a real Redis: a BullMQ upgrade that changes any of it fails that test, not production.
 */

/** The BullMQ version this adapter was written against (package.json pins it exactly). */
export const BULLMQ_VERSION = '6.7.0';

/** BullMQ's compiled scripts a turn runs in its MULTI, as `defineCommand` takes them. */
export const TURN_SCRIPTS = {
  moveToActive: { numberOfKeys: moveToActive.keys, lua: moveToActive.content },
  moveToFinished: { numberOfKeys: moveToFinished.keys, lua: moveToFinished.content },
} as const;

/** A job BullMQ's moveToActive or moveToFinished (with fetch-next) handed over. */
export interface FetchedJob {
  id: string;
  name: string;
  /** The job's data as stored (JSON text). */
  data: string;
  /** How many times it was taken, this time included. */
  attemptsStarted: number;
}

/** The parts of a queue's keys moveToActive takes, in its order (moveToActive-11.lua's KEYS). */
const MOVE_TO_ACTIVE_KEYS = ['wait', 'active', 'prioritized', 'events', 'stalled', 'limiter', 'delayed', 'paused', 'meta', 'pc', 'marker'];

/**
 * Every key a queue's own bookkeeping uses besides its jobs (`<prefix>:<queue>:<part>`): once the
 * queue holds no job, removing these leaves nothing of it.
 */
export const QUEUE_PARTS = [
  'wait',
  'active',
  'paused',
  'delayed',
  'prioritized',
  'failed',
  'events',
  'id',
  'marker',
  'meta',
  'pc',
] as const;

/** BullMQ packs moveToActive's options with these msgpackr settings (redis-queue-backend.js). */
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

/**
 * The keys and arguments of one moveToActive on `backend`'s queue: take the oldest waiting job and
 * lock it with `token` for `lockDurationMs`.
 */
export function moveToActiveArgs(backend: RedisQueueBackend, token: string, lockDurationMs: number, now: number): unknown[] {
  const key = (part: string) => backend.toKey(part);
  const options = packer.pack({ token, lockDuration: lockDurationMs, limiter: undefined, name: undefined });
  return [...MOVE_TO_ACTIVE_KEYS.map(key), key(''), now, options];
}

/**
 * The keys and arguments of one moveToFinished: the job completed (its record removed) or failed
 * (kept among the last `keepFailed`), presenting `token`; with `fetchNext`, the next job is taken
 * and locked with the same token in the same step. A job is never retried by BullMQ (`attempts:
 * 1`): a retry would move it behind later ones.
 */
export function moveToFinishedArgs(
  backend: RedisQueueBackend,
  jobId: string,
  outcome: { target: 'completed' } | { target: 'failed'; reason: string; keepFailed: number },
  token: string,
  fetchNext: boolean,
): unknown[] {
  const job = { id: jobId, opts: { attempts: 1 } } as Parameters<RedisQueueBackend['moveToCompletedArgs']>[0];
  return outcome.target === 'completed'
    ? backend.moveToCompletedArgs(job, undefined, true, token, fetchNext)
    : backend.moveToFailedArgs(job, outcome.reason, { count: outcome.keepFailed }, token, fetchNext);
}

/** The job a moveToActive or moveToFinished reply hands over; undefined when none was waiting. */
export function fetchedJob(reply: unknown): FetchedJob | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [job, id] = raw2NextJobData(reply) as [JobJson | null | undefined, string | null | undefined];
  // BullMQ answers "nothing waiting" with a null job (and sometimes an id placeholder).
  if (job === null || job === undefined || id === undefined || id === null) return undefined;
  return { id, name: job.name, data: job.data, attemptsStarted: job.attemptsStarted };
}

/** A moveToFinished reply that is BullMQ's error code (negative), else undefined. */
export function finishErrorCode(reply: unknown): number | undefined {
  return typeof reply === 'number' && reply < 0 ? reply : undefined;
}

/** Releases the lock of a job if `token` still holds it (BullMQ's releaseLock script). */
export async function releaseLock(backend: RedisQueueBackend, lockKey: string, token: string): Promise<void> {
  await backend.execCommand(await backend.client, 'releaseLock', [lockKey, token, 0]);
}

/**
 * Adds one job to `queue` (BullMQ's own add script, sent through its backend as its add does) and
 * has `behind` send on the same connection right behind it, without waiting: Redis runs that after
 * the add, and both cost one round trip. `behind` must send at once (before its first await).
 * `added` settles with the add, `after` with what `behind` did.
 */
export function addJobThen<T>(
  queue: Queue,
  name: string,
  data: unknown,
  behind: () => Promise<T>,
): { added: Promise<void>; after: Promise<T> } {
  const sent = (async () => {
    const client = await queue.backend.client;
    // Sent synchronously: the backend's first await comes after it issued the command.
    const added = queue.backend.addJobToTransaction(client, new Job(queue, name, data).asJSON(), '');
    return { added, after: behind() };
  })();
  const added = sent.then(async (s) => {
    await s.added;
  });
  // Nothing runs behind an add that was not sent. Awaited by whoever needs it, after the add.
  const after = sent.then((s) => s.after);
  after.catch(() => undefined);
  return { added, after };
}

/**
 * Adds jobs to `queue` in one MULTI, in order: all of them or none. BullMQ's own add script, queued
 * through its backend as its addBulk does, but in a transaction instead of a pipeline. Rejects with
 * the first error a job met.
 */
export async function addAllInTransaction(queue: Queue, jobs: readonly { name: string; data: unknown }[]): Promise<void> {
  // BullMQ's wrapper of the connection, whose transactions run its scripts by name.
  const tx = (await queue.backend.client).multi();
  for (const { name, data } of jobs) {
    // Queued on the transaction synchronously; its promise settles with the transaction.
    queue.backend.addJobToTransaction(tx, new Job(queue, name, data).asJSON(), '').catch(() => undefined);
  }
  const replies = ((await tx.exec()) ?? []) as [Error | null, unknown][];
  const failed = replies.find(([error]) => error !== null);
  if (failed !== undefined) throw failed[0];
}
