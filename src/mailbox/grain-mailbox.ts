import type { RedisQueueBackend } from 'bullmq';
import type { RedisClient } from '../redis/connection.ts';
import {
  fetchedJob,
  finishErrorCode,
  moveToActiveArgs,
  moveToFinishedArgs,
  QUEUE_PARTS,
  releaseLock,
  type FetchedJob,
} from './bullmq-adapter.ts';
import { isNoScript, reloadScripts } from '../redis/scripts.ts';
import { flushWrites } from '../redis/write-coalescing.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import type { TurnConnection, TurnTransaction } from './turn-connection.ts';
import type { CarriedMessage } from '../directory/wake-entry.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** How many failed messages a grain's mailbox keeps for operators to look at. */
export const KEEP_FAILED_MESSAGES = 100;

/** Events BullMQ keeps per grain queue: grains are many, so keep few. */
const MAX_EVENTS_PER_GRAIN = 64;

/** A message taken from a mailbox, with the lock token that proves this activation holds it. */
export interface MailboxMessage {
  jobId: string;
  name: string;
  data: unknown;
  token: string;
  attemptsStarted: number;
}

/**
 * Messages taken in one step, oldest first. `foreignTaken`: another message is taken too, left by
 * an activation that crashed or was fenced out, or taken by a stale one (a paused silo that had not
 * yet learned it lost the grain). Then these must not run before everything taken is back in order
 * (see `release` and `recoverTaken`). `waiting`: how many were still waiting right after the take.
 */
export interface Taken {
  messages: MailboxMessage[];
  foreignTaken: boolean;
  waiting: number;
}

export type FinishOutcome = { target: 'completed' } | { target: 'failed'; reason: string };

/**
 * A grain's mailbox as its activation sees it: one BullMQ queue, consumed manually. Taking the next
 * messages rides on the acknowledgement of the previous ones (BullMQ's moveToFinished with
 * fetch-next, and moveToActive for more), so a busy grain costs one round trip per batch.
 */
export class GrainMailbox {
  readonly #backend: RedisQueueBackend;
  #tokenSeq = 0;
  /**
   * The highest job id this mailbox has taken. BullMQ numbers a queue's jobs in the order they are
   * added, and a mailbox is taken in that order: a message with an id at or below it was taken.
   */
  highestTaken = 0;

  constructor(
    root: RedisQueueBackend,
    private readonly redis: RedisClient & ScriptCommands,
    /** The connection turns commit on (see turn-connection.ts). */
    private readonly turns: TurnConnection,
    private readonly keys: RedisKeys,
    readonly grain: GrainId,
    private readonly tokenPrefix: string,
    /** The lock a taken message gets (BullMQ's lockDuration). */
    private readonly lockDurationMs: number,
  ) {
    this.#backend = root.forQueue(keys.queueName(grain)) as RedisQueueBackend;
  }

  /** A MULTI on the turn connection, where `commitTurns` and BullMQ's scripts are defined. */
  transaction(): TurnTransaction {
    return this.turns.multi() as TurnTransaction;
  }

  /**
   * Sends the MULTI `build` queues on the turn connection. When its scripts were refused with
   * NOSCRIPT (see `reloadScripts`: after a Redis restart ioredis can believe them loaded) they are
   * loaded again; when every script of it was refused, nothing was written (all the MULTI's writes
   * are scripts), so it is built and sent once more.
   */
  async execTurns(build: (tx: TurnTransaction) => void): Promise<[Error | null, unknown][]> {
    for (let attempt = 0; ; attempt++) {
      const tx = this.transaction();
      let scripts = 0;
      for (const name of ['commitTurns', 'moveToFinished', 'moveToActive'] as const) {
        const queue = tx[name].bind(tx) as (...args: unknown[]) => unknown;
        (tx as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
          scripts += 1;
          return queue(...args);
        };
      }
      build(tx);
      const replies = ((await tx.exec()) ?? []) as [Error | null, unknown][];
      const refused = replies.filter(isNoScript).length;
      if (refused === 0) return replies;
      await reloadScripts(this.turns);
      if (attempt > 0 || refused < scripts) return replies;
    }
  }

  /** Caps the queue's BullMQ event stream; sent once per activation. */
  async configure(): Promise<void> {
    await this.#backend.setQueueMeta({ 'opts.maxLenEvents': MAX_EVENTS_PER_GRAIN });
  }

  /**
   * Locks and returns up to `count` of the oldest waiting messages, in order, in one round trip,
   * and says whether a message is taken by someone else (see `Taken.foreignTaken`).
   */
  async take(count: number): Promise<Taken> {
    const token = this.#nextToken();
    const replies = await this.execTurns((tx) => this.queueTake(tx, count, token));
    return this.readTake(replies, 0, count, token, undefined);
  }

  /**
   * Queues, on a MULTI, BullMQ's own moveToActive `count` times, then the reads that must follow
   * it: the active list (to see foreign messages) and the number still waiting (to size the next
   * take). Queued in the same MULTI as the script, they cannot overtake it. (Through BullMQ's
   * backend the script is sent after an await, so a read issued behind it would overtake it and
   * need a round trip of its own.) Queues `count + 2` commands; read them with `readTake`.
   */
  queueTake(tx: TurnTransaction, count: number, token: string): void {
    if (count > 0) {
      const args = moveToActiveArgs(this.#backend, token, this.lockDurationMs, Date.now());
      for (let i = 0; i < count; i++) tx.moveToActive(...args);
    }
    tx.lrange(this.#backend.toKey('active'), 0, -1);
    tx.llen(this.#backend.toKey('wait'));
  }

  /**
   * Reads what `queueTake` queued, from `replies[from]` on. `first` is a message already taken in
   * the same MULTI (by an acknowledgement's fetch-next), ahead of these.
   */
  readTake(replies: [Error | null, unknown][], from: number, count: number, token: string, first: MailboxMessage | undefined): Taken {
    const messages: MailboxMessage[] = first === undefined ? [] : [first];
    for (let i = from; i < from + count + 2; i++) {
      const [error] = replies[i] ?? [new Error('no reply to the take')];
      if (error !== null) throw error;
    }
    for (let i = from; i < from + count; i++) {
      const message = this.#toMessage(fetchedJob(replies[i]?.[1]), token);
      if (message !== undefined) messages.push(message);
    }
    const ours = new Set(messages.map((message) => message.jobId));
    const active = (replies[from + count]?.[1] ?? []) as string[];
    return {
      messages,
      foreignTaken: active.some((jobId) => !ours.has(jobId)),
      waiting: Number(replies[from + count + 1]?.[1] ?? 0),
    };
  }

  /**
   * Lets go of taken messages without moving them: the owner found a message taken by a stale
   * activation next to them. They stay in the active list, unlocked, and the next recovery moves
   * everything taken back to the head in one step, in the order it was taken. (Giving them back
   * one by one would race the stale activation giving back its own: whichever pushed last would
   * run first, newer messages before older.)
   */
  async release(messages: readonly MailboxMessage[]): Promise<void> {
    await Promise.all(messages.map((message) => releaseLock(this.#backend, this.lockKey(message), message.token)));
  }

  /**
   * Queues the acknowledgement of `message` on a MULTI (after the state commit that fences it),
   * presenting `token`: the commit's, which the message's lock holds only once the commit went
   * through. With `fetchNext`, BullMQ takes the next message in the same step and locks it with
   * that token. Read its reply with `readFinish`.
   */
  queueFinish(tx: TurnTransaction, message: MailboxMessage, outcome: FinishOutcome, fetchNext: boolean, token: string): void {
    if (outcome.target === 'failed') this.#noteFailed();
    const finished = outcome.target === 'completed' ? outcome : { ...outcome, keepFailed: KEEP_FAILED_MESSAGES };
    tx.moveToFinished(...moveToFinishedArgs(this.#backend, message.jobId, finished, token, fetchNext));
  }

  /** A fresh lock token of this silo (a commit's, see queueCommit). */
  newToken(): string {
    return this.#nextToken();
  }

  /**
   * Lists the grain among those with failed messages, for tools that look for them once no silo
   * holds it. Sent now, on the turn connection, so it reaches Redis ahead of the MULTI being built
   * (which goes out at its exec) and costs no round trip: a failed message is never unlisted. Its
   * own key, not in the MULTI: that key is not in the grain's Redis Cluster slot. A commit that is
   * then refused leaves an entry with no failed message behind, which readers skip.
   */
  #noteFailed(): void {
    this.turns.zadd(this.keys.failedMailboxes(), Date.now(), this.grain.tag).catch(() => undefined);
  }

  /** Reads the reply of a queued acknowledgement: the message taken with it, or BullMQ's error code. */
  readFinish(reply: unknown, token: string): { ok: true; next: MailboxMessage | undefined } | { ok: false; code: number } {
    const code = finishErrorCode(reply);
    if (code !== undefined) return { ok: false, code };
    return { ok: true, next: this.#toMessage(fetchedJob(reply), token) };
  }

  /**
   * Puts messages earlier activations left taken but unfinished (they crashed, stepped down or
   * were fenced out) back at the head of the mailbox, in their order. Only the grain's current
   * owner calls this, before it takes anything. A lock held by a silo that is gone (or by this
   * silo's own earlier activation) is released first; while any other lock is live, nothing moves
   * (its holder may still acknowledge, and order needs all of them back together). `ownReleased`:
   * how many of the newest taken messages this activation took and let go of itself, unstarted.
   * A crash is charged to the oldest message only when it interrupted that message alone.
   */
  async recoverTaken(isStale: (lockToken: string) => Promise<boolean>, ownReleased = 0): Promise<{ moved: number; locked: number }> {
    const activeKey = this.#backend.toKey('active');
    const taken = await this.redis.lrange(activeKey, 0, -1);
    if (taken.length === 0) return { moved: 0, locked: 0 };
    const lockKeys = taken.map((jobId) => this.keys.jobLock(this.grain, jobId));
    const tokens = await this.redis.mget(lockKeys);
    for (const [i, token] of tokens.entries()) {
      if (token !== null && (await isStale(token))) await releaseLock(this.#backend, lockKeys[i] as string, token);
    }
    const interruptedAlone = taken.length - ownReleased === 1;
    const [moved, locked] = (await this.redis.recoverTaken(
      activeKey,
      this.#backend.toKey('wait'),
      this.#backend.toKey(''),
      interruptedAlone ? '0' : '1',
    )) as [number, number];
    return { moved, locked };
  }

  /**
   * Gives back messages this activation took but did not start (its silo is stopping): they go
   * back to the head of the mailbox in their order, and their takes are not counted as attempts.
   * Should another activation hold a message too, they stay taken, unlocked, for the owner's
   * recovery to put back in order with the rest.
   */
  async handBack(messages: readonly MailboxMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.release(messages);
    await this.redis.recoverTaken(this.#backend.toKey('active'), this.#backend.toKey('wait'), this.#backend.toKey(''), '1');
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

  /**
   * Once the mailbox holds no message, removes what BullMQ leaves in it (events, id counter,
   * marker, meta), so an idle grain costs its state and directory entry only. Returns whether it did.
   */
  async tidy(): Promise<boolean> {
    return (await this.redis.tidyMailbox(...QUEUE_PARTS.map((part) => this.#backend.toKey(part)))) === 1;
  }

  /** Messages waiting (not yet taken). */
  async waitingCount(): Promise<number> {
    const [waiting] = await this.#backend.getCounts(['wait']);
    return waiting ?? 0;
  }

  lockKey(message: MailboxMessage): string {
    return this.keys.jobLock(this.grain, message.jobId);
  }

  jobKey(message: MailboxMessage): string {
    return this.keys.job(this.grain, message.jobId);
  }

  #nextToken(): string {
    this.#tokenSeq += 1;
    return `${this.tokenPrefix}:${this.#tokenSeq}`;
  }

  /** The silo a lock token belongs to: tokens are `<siloId>:<grain tag>:<n>`. */
  static tokenSilo(token: string): string {
    return token.slice(0, token.indexOf(':'));
  }

  #toMessage(job: FetchedJob | undefined, token: string): MailboxMessage | undefined {
    if (job === undefined) return undefined;
    const id = Number(job.id);
    if (id > this.highestTaken) this.highestTaken = id;
    return { jobId: job.id, name: job.name, data: parseJobData(job.data), token, attemptsStarted: job.attemptsStarted };
  }

  /**
   * Takes the oldest waiting message for `claimed` (a message run as its wake-up brought it, see
   * `claimable`), with its token: BullMQ's own moveToActive, alone, on the turn connection, so a
   * commit sent after it runs after it. Answers the message taken: `claimed` itself when it was
   * the oldest. Nothing else is read: the commit that follows reads what is taken then.
   */
  async takeClaimed(claimed: MailboxMessage): Promise<MailboxMessage | undefined> {
    const taking = this.turns.moveToActive(...moveToActiveArgs(this.#backend, claimed.token, this.lockDurationMs, Date.now()));
    // On its way before the turn runs: a handler that blocks the event loop until the silo is
    // killed must find its message taken, so the crash is counted against it.
    flushWrites(this.turns);
    const reply = await taking;
    // [job fields, job id, ...]: only the id, unless another job came first.
    if (Array.isArray(reply) && reply[1] === claimed.jobId) {
      this.highestTaken = Math.max(this.highestTaken, Number(claimed.jobId));
      return claimed;
    }
    return this.#toMessage(fetchedJob(reply), claimed.token);
  }

  /**
   * The message a wake-up carried (see wake-entry.ts), as the take that claims it will give it:
   * its first start, under a fresh token. Not taken yet: `takeClaimed` takes it.
   */
  claimable(carried: CarriedMessage): MailboxMessage {
    return { jobId: carried.jobId, name: carried.name, data: parseJobData(carried.data), token: this.#nextToken(), attemptsStarted: 1 };
  }
}

/** A job's data as BullMQ stores it (JSON), read; undefined when it is not JSON. */
function parseJobData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
