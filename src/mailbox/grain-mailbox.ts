import { raw2NextJobData, type JobJson, type RedisQueueBackend } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { withScripts, type ScriptPipeline } from '../redis/scripts.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** How many failed messages a grain's mailbox keeps for operators to look at. */
export const KEEP_FAILED_MESSAGES = 100;

/** Stalled recoveries BullMQ allows a message before it fails it (bounded retries come with poison-message handling). */
const MAX_STALLED_RECOVERIES = 1_000_000;

/** Events BullMQ keeps per grain queue: grains are many, so keep few. */
const MAX_EVENTS_PER_GRAIN = 64;

/**
 * A message taken from a mailbox, with the lock token that proves this activation holds it.
 *
 * `foreignTaken` (on takes): another message is taken too. Only the owner takes messages, one at
 * a time, so that one was taken by a stale activation (a paused silo that had not yet learned it
 * lost the grain): it is earlier in the mailbox, and must run before anything behind it.
 */
export interface MailboxMessage {
  jobId: string;
  name: string;
  data: unknown;
  token: string;
  attemptsStarted: number;
}

/** BullMQ packs the options of moveToActive with these msgpackr settings (redis-queue-backend.js). */
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
const packOptions = (options: object): Buffer => packer.pack(options);

export type FinishOutcome = { target: 'completed' } | { target: 'failed'; reason: string };

/**
 * A grain's mailbox as its activation sees it: one BullMQ queue, consumed manually one message at
 * a time. Taking the next message rides on the acknowledgement of the previous one (BullMQ's
 * moveToFinished with fetch-next), so a busy grain costs one round trip per message.
 */
export class GrainMailbox {
  readonly #backend: RedisQueueBackend;
  #tokenSeq = 0;

  constructor(
    root: RedisQueueBackend,
    private readonly redis: Redis,
    /** The connection turns commit on (see turn-connection.ts). */
    private readonly turns: Redis,
    private readonly keys: RedisKeys,
    readonly grain: GrainId,
    private readonly tokenPrefix: string,
    /** The lock a taken message gets (BullMQ's lockDuration). */
    private readonly lockDurationMs: number,
  ) {
    this.#backend = root.forQueue(keys.queueName(grain)) as RedisQueueBackend;
  }

  /** A MULTI on the turn connection, where `commitTurn` and BullMQ's `moveToFinished` are defined. */
  transaction(): ChainableCommander & ScriptPipeline {
    return withScripts(this.turns.multi());
  }

  /** Caps the queue's BullMQ event stream; sent once per activation. */
  async configure(): Promise<void> {
    await this.#backend.setQueueMeta({ 'opts.maxLenEvents': MAX_EVENTS_PER_GRAIN });
  }

  /** Locks and returns the oldest waiting message, if any. */
  /**
   * Locks and returns the oldest waiting message, if any, and says whether a message is taken by
   * someone else (see `foreignTaken`).
   */
  async takeNext(): Promise<{ message: MailboxMessage | undefined; foreignTaken: boolean }> {
    const token = this.#nextToken();
    // BullMQ's own moveToActive script, queued in one MULTI with the read of the active list that
    // must follow it: one round trip. (Through BullMQ's backend the script is sent after an await,
    // so a read issued behind it would overtake it and need a round trip of its own.)
    const key = (type: string) => this.#backend.toKey(type);
    const tx = this.turns.multi() as ChainableCommander & { moveToActive(...keysAndArgs: unknown[]): ChainableCommander };
    tx.moveToActive(
      ...['wait', 'active', 'prioritized', 'events', 'stalled', 'limiter', 'delayed', 'paused', 'meta', 'pc', 'marker'].map(key),
      key(''),
      Date.now(),
      packOptions({ token, lockDuration: this.lockDurationMs, limiter: undefined, name: undefined }),
    );
    tx.lrange(key('active'), 0, -1);
    const [[takeError, raw] = [new Error('no reply to the take'), undefined], [readError, taken] = [new Error('no reply to the read'), []]] =
      (await tx.exec()) ?? [];
    if (takeError !== null) throw takeError;
    if (readError !== null) throw readError;
    const [jobData, id] = raw2NextJobData(raw as unknown[]) as [JobJson | null | undefined, string | undefined];
    const message = this.#toMessage(jobData, id, token);
    return { message, foreignTaken: (taken as string[]).some((jobId) => jobId !== message?.jobId) };
  }

  /**
   * Gives a taken message back to the head of the mailbox, unprocessed: the owner found an
   * earlier message in a stale activation's hands, and that one must run first.
   */
  async giveBack(message: MailboxMessage): Promise<void> {
    await this.#backend.moveJobFromActiveToWait(message.jobId, message.token);
  }

  /**
   * Queues the acknowledgement of `message` on a MULTI (after the state commit that fences it) and
   * asks for the next message in the same step.
   */
  queueFinish(tx: ChainableCommander, message: MailboxMessage, outcome: FinishOutcome, fetchNext: boolean): void {
    // attempts: 1 — a message is never retried by BullMQ (a retry would move it behind later ones).
    const job = { id: message.jobId, opts: { attempts: 1 } } as Parameters<RedisQueueBackend['moveToCompletedArgs']>[0];
    const args =
      outcome.target === 'completed'
        ? this.#backend.moveToCompletedArgs(job, undefined, true, message.token, fetchNext)
        : this.#backend.moveToFailedArgs(job, outcome.reason, { count: KEEP_FAILED_MESSAGES }, message.token, fetchNext);
    (tx as unknown as { moveToFinished(...keysAndArgs: unknown[]): unknown }).moveToFinished(...args);
    // What is taken once the next message is: more than that one means an earlier message is in
    // a stale activation's hands (see `foreignTaken`). Rides in the same round trip.
    tx.lrange(this.#backend.toKey('active'), 0, -1);
  }

  /**
   * Reads the reply of a queued acknowledgement: the next message, or BullMQ's error code. BullMQ
   * locks the next message with the finishing message's token, so the next one carries it on.
   */
  parseFinish(
    reply: unknown,
    taken: unknown,
    finished: MailboxMessage,
  ): { ok: true; next: MailboxMessage | undefined; foreignTaken: boolean } | { ok: false; code: number } {
    if (typeof reply === 'number' && reply < 0) return { ok: false, code: reply };
    let next: MailboxMessage | undefined;
    if (Array.isArray(reply)) {
      const [jobData, id] = raw2NextJobData(reply) as [JobJson | null | undefined, string | undefined];
      next = this.#toMessage(jobData, id, finished.token);
    }
    const takenIds = Array.isArray(taken) ? (taken as string[]) : [];
    return { ok: true, next, foreignTaken: takenIds.some((jobId) => jobId !== next?.jobId) };
  }

  /**
   * Puts messages an earlier activation left taken but unfinished (its lock gone: it crashed or
   * stepped down) back at the head of the mailbox, in their order, using BullMQ's stalled-job
   * recovery. Only the grain's current owner calls this. Returns how many messages are still
   * taken under a live lock (a previous activation whose lock has not expired yet).
   */
  async recoverStalled(isStale: (lockToken: string) => Promise<boolean>): Promise<number> {
    const activeKey = this.#backend.toKey('active');
    const taken = await this.redis.lrange(activeKey, 0, -1);
    if (taken.length === 0) return 0;
    const client = await this.#backend.client;
    // A lock held by a silo that is gone (or by this silo's own earlier, failed activation) will
    // never be released by its holder: release it now instead of waiting for it to expire.
    for (const jobId of taken) {
      const lockKey = this.#backend.toKey(`${jobId}:lock`);
      const token = await this.redis.get(lockKey);
      if (token !== null && (await isStale(token))) {
        await this.#backend.execCommand(client, 'releaseLock', [lockKey, token, 0]);
      }
    }
    // BullMQ's script works in two passes (mark, then move what is still unlocked), fenced by a
    // check key that lives `stalledInterval` ms: 1 ms here, as the owner runs both passes itself.
    for (let pass = 0; pass < 2; pass++) {
      if (pass > 0) await new Promise((resolve) => setTimeout(resolve, 2));
      const args = (this.#backend as unknown as { moveStalledJobsToWaitArgs(): (string | number)[] }).moveStalledJobsToWaitArgs();
      const n = args.length;
      args[n - 4] = MAX_STALLED_RECOVERIES;
      args[n - 1] = 1;
      await this.#backend.execCommand(client, 'moveStalledJobsToWait', args);
    }
    return this.redis.llen(activeKey);
  }

  async extendLock(message: MailboxMessage, durationMs: number): Promise<boolean> {
    return (await this.#backend.extendLock(message.jobId, message.token, durationMs)) === 1;
  }

  /** Up to `limit` waiting messages, without taking them. */
  async peekWaiting(limit: number): Promise<{ jobId: string; data: unknown }[]> {
    const ids = await this.redis.lrange(this.#backend.toKey('wait'), -limit, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.#backend.toKey(id), 'data');
    const results = (await pipeline.exec()) ?? [];
    return ids.map((jobId, i) => {
      let data: unknown;
      try {
        const text = results[i]?.[1];
        data = typeof text === 'string' ? JSON.parse(text) : undefined;
      } catch {
        data = undefined;
      }
      return { jobId, data };
    });
  }

  /** Messages waiting (not yet taken). */
  async waitingCount(): Promise<number> {
    const [waiting] = await this.#backend.getCounts(['wait']);
    return waiting ?? 0;
  }

  lockKey(message: MailboxMessage): string {
    return this.keys.jobLock(this.grain, message.jobId);
  }

  #nextToken(): string {
    this.#tokenSeq += 1;
    return `${this.tokenPrefix}:${this.#tokenSeq}`;
  }

  /** The silo a lock token belongs to: tokens are `<siloId>:<grain tag>:<n>`. */
  static tokenSilo(token: string): string {
    return token.slice(0, token.indexOf(':'));
  }

  #toMessage(jobData: JobJson | null | undefined, id: string | undefined, token: string): MailboxMessage | undefined {
    // BullMQ answers "nothing waiting" with a null job (and sometimes an id placeholder).
    if (jobData === null || jobData === undefined || id === undefined || id === null) return undefined;
    let data: unknown;
    try {
      data = JSON.parse(jobData.data);
    } catch {
      data = undefined;
    }
    return { jobId: id, name: jobData.name, data, token, attemptsStarted: jobData.attemptsStarted };
  }
}

