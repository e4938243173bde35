import type { FinishOutcome, MailboxMessage, Taken } from '../mailbox/grain-mailbox.ts';
import type { TurnTransaction } from '../mailbox/turn-connection.ts';
import type { StateChanges } from '../storage/grain-state.ts';
import type { TurnResult } from './handler-invoker.ts';
import {
  NO_EFFECTS,
  NO_JOURNAL,
  queueCommit,
  readCommit,
  type CommitEffects,
  type CommitJournal,
  type CommitOutcome,
  type Committer,
} from './turn-commit.ts';

/** What a batch's commit answered. Anything but `committed` wrote nothing. */
export type BatchOutcome =
  /**
   * State, effects and acknowledgements landed; `next` is the batch taken with them (empty when
   * none was asked for); `sealed` is the token the messages' locks now hold.
   */
  | { kind: 'committed'; next: Taken; sealed: string }
  | Exclude<CommitOutcome, { kind: 'committed' }>
  /** The commit went through but BullMQ refused an acknowledgement (its error code). */
  | { kind: 'ackRefused'; code: number };

/** One batch of turns to commit: their messages, what they changed, and how many to take next. */
export interface BatchParts {
  changes: StateChanges;
  /**
   * The batch's messages (BullMQ jobs; a pack is one, however many turns it held), each with the
   * outcome to finish it with, in order. None for a commit outside a message.
   */
  messages: readonly { message: MailboxMessage; outcome: FinishOutcome }[];
  /** The idempotency records the batch's turns decided. */
  records?: readonly NonNullable<TurnResult['idempotent']>[] | undefined;
  effects?: CommitEffects | undefined;
  journal?: CommitJournal | undefined;
  /** How many messages to take with the commit (0: none). */
  take?: number | undefined;
  /**
   * False: commit the turns but keep the messages taken, their locks sealed to the commit (a pack
   * run one message per commit). Default true: acknowledge them.
   */
  finish?: boolean | undefined;
}

/**
 * The fenced commit of a batch of turns, as one request: our commitTurns script, BullMQ's
 * acknowledgement of each message (the last one also fetching the next message), and the take of
 * the rest of the next batch, in one MULTI on the turn connection. It builds the request and reads
 * every reply itself, and answers with a typed outcome.
 */
export class BatchCommit {
  constructor(
    private readonly committer: Committer,
    private readonly parts: BatchParts,
  ) {}

  async send(): Promise<BatchOutcome> {
    const { mailbox } = this.committer;
    const { changes, effects = NO_EFFECTS, journal = NO_JOURNAL, records = [] } = this.parts;
    const finish = this.parts.finish ?? true;
    const jobs = this.parts.messages;
    const messages = jobs.map((job) => job.message);
    const take = finish ? (this.parts.take ?? 0) : 0;
    // Without messages there is nothing to acknowledge, so no lock to seal (see commitTurns.lua).
    const sealed = messages.length === 0 ? '' : mailbox.newToken();
    const finishes = finish ? jobs : [];
    const fetchNext = take > 0 && finishes.length > 0;
    const more = finishes.length === 0 ? take : Math.max(0, take - 1);
    const takes = more > 0 || finishes.length > 0;
    const replies = await mailbox.execTurns((tx: TurnTransaction) => {
      queueCommit(tx, this.committer, changes, messages, records, effects, journal, sealed);
      finishes.forEach((job, i) => mailbox.queueFinish(tx, job.message, job.outcome, fetchNext && i === finishes.length - 1, sealed));
      if (takes) mailbox.queueTake(tx, more, sealed);
    });
    const outcome = readCommit(replies[0] ?? [new Error('no reply to the commit'), undefined]);
    if (outcome.kind !== 'committed') return outcome;
    let first: MailboxMessage | undefined;
    for (let i = 0; i < finishes.length; i++) {
      const [error, reply] = replies[1 + i] ?? [new Error('no reply to an acknowledgement'), undefined];
      if (error !== null) throw error;
      const finished = mailbox.readFinish(reply, sealed);
      if (!finished.ok) return { kind: 'ackRefused', code: finished.code };
      first = finished.next;
    }
    if (!takes) return { kind: 'committed', next: { messages: [], foreignTaken: false, waiting: 0 }, sealed };
    return { kind: 'committed', next: mailbox.readTake(replies, 1 + finishes.length, more, sealed, first), sealed };
  }
}

/** Why an activation whose commit was not `committed` steps down. */
export function stepDownReason(outcome: Exclude<BatchOutcome, { kind: 'committed' }>): string {
  switch (outcome.kind) {
    case 'fenced':
      return 'another activation owns the grain';
    case 'lockLost':
      return 'a message lock was lost';
    case 'rolledBack':
      return 'Redis lost commits of this activation (a failover?): its state is read again';
    case 'ackRefused':
      return `acknowledgement refused by BullMQ (code ${outcome.code})`;
    default:
      return `commit refused: ${outcome.reason}`;
  }
}
