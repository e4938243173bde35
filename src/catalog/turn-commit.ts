import type { Context } from '@opentelemetry/api';
import { errorName } from '../errors/errors.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { GrainMailbox, MailboxMessage } from '../mailbox/grain-mailbox.ts';
import type { TurnTransaction } from '../mailbox/turn-connection.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import type { StateChanges } from '../storage/grain-state.ts';
import { Attr, SpanNames } from '../telemetry/semantics.ts';
import { markFailed, startGrainSpan, type TurnTrace } from '../telemetry/tracing.ts';
import type { ActivationHost } from './activation-host.ts';
import type { TurnResult } from './handler-invoker.ts';
import type { OutboxEffect } from '../outbox/outbox.ts';
import type { RecordedEvent } from '../grain/event-sourced.ts';

/*
 * The commit side of an activation's turns: the fenced MULTI that writes a batch's state with its
 * acknowledgements, its span, and closing each turn once its batch is committed.
 */

/** One message's turn within a batch, until the batch commits. */
export interface BatchTurn {
  message: MailboxMessage;
  envelope: MessageEnvelope | undefined;
  method: string;
  trace: TurnTrace | undefined;
  result: TurnResult;
  startedAt: number;
  /** What the turn did to the rest of the cluster, to commit with it (none when it failed). */
  effects: OutboxEffect[];
}

/**
 * The activation that commits: its grain, its fence (silo and epoch, and how many commits it has
 * made, which the grain's directory entry counts too) and its mailbox.
 */
export interface Committer {
  readonly id: GrainId;
  readonly epoch: string;
  readonly commits: number;
  readonly mailbox: GrainMailbox;
  readonly host: ActivationHost;
}

/**
 * What a commit writes besides state: outbox entries, and the last message seen per sender; and
 * the replies it publishes once written (see `ActivationHost.replyPublication`).
 */
export interface CommitEffects {
  outbox: readonly string[];
  seen: readonly (readonly [sender: string, place: string])[];
  replies?: readonly (readonly [channel: string, message: string])[] | undefined;
}

export const NO_EFFECTS: CommitEffects = { outbox: [], seen: [] };

/** What a commit appends to an event-sourced grain's journal (nothing for other grains). */
export interface CommitJournal {
  /** The journal's last event before this commit. */
  prev: number;
  events: readonly RecordedEvent[];
  /** Trim the journal's events below this sequence number (0: none). */
  trimBelow: number;
}

export const NO_JOURNAL: CommitJournal = { prev: 0, events: [], trimBelow: 0 };

/**
 * Queues the fenced state commit of `messages` (none for a commit outside a message) on `tx`.
 * `sealed`: the token the messages' locks hold once it commits, which their acknowledgements
 * behind it in the MULTI must present (see commitTurns.lua).
 */
export function queueCommit(
  tx: TurnTransaction,
  { id, epoch, commits, mailbox, host }: Committer,
  changes: StateChanges,
  messages: readonly MailboxMessage[],
  records: readonly NonNullable<TurnResult['idempotent']>[],
  effects: CommitEffects,
  journal: CommitJournal = NO_JOURNAL,
  sealed = '',
): void {
  const lockKeys = messages.map((message) => mailbox.lockKey(message));
  tx.commitTurns(
    5 + 2 * lockKeys.length + records.length,
    host.keys.directory(id),
    host.keys.state(id),
    host.keys.outbox(id),
    host.keys.seen(id),
    host.keys.journal(id),
    ...lockKeys,
    ...messages.map((message) => mailbox.jobKey(message)),
    ...records.map((record) => record.key),
    host.siloId,
    epoch,
    messages[0]?.token ?? '',
    lockKeys.length,
    changes.set.length,
    effects.outbox.length,
    effects.seen.length,
    journal.events.length,
    journal.prev,
    journal.trimBelow,
    sealed,
    commits,
    effects.replies?.length ?? 0,
    ...records.flatMap((record) => [record.keepMs, JSON.stringify(record.outcome)]),
    ...journal.events.flat(),
    ...effects.outbox,
    ...effects.seen.flat(),
    ...(effects.replies?.flat() ?? []),
    ...changes.set.flat(),
    ...changes.remove,
  );
}

/** What the fenced commit answered (commitTurns.lua); anything but `committed` wrote nothing. */
export type CommitOutcome =
  | { kind: 'committed' }
  | { kind: 'fenced' }
  | { kind: 'lockLost' }
  /** Redis lost commits of this activation (a failover promoted a replica that lacked them). */
  | { kind: 'rolledBack' }
  | { kind: 'refused'; reason: string };

/** Reads the commit's reply in a MULTI: a Redis error is thrown, a refusal is returned. */
export function readCommit([error, code]: [Error | null, unknown]): CommitOutcome {
  if (error !== null) throw error;
  switch (code) {
    case 1:
      return { kind: 'committed' };
    case -1:
      return { kind: 'fenced' };
    case -2:
      return { kind: 'lockLost' };
    case -3:
      return { kind: 'refused', reason: 'a message of the batch no longer exists' };
    case -4:
      return { kind: 'refused', reason: 'malformed commit arguments' };
    case -5:
      return { kind: 'refused', reason: 'Redis refused the write (out of memory?)' };
    case -6:
      return { kind: 'refused', reason: 'the journal does not end at the event this activation last committed' };
    case -7:
      return { kind: 'rolledBack' };
    default:
      return { kind: 'refused', reason: `unexpected commit reply ${JSON.stringify(code)}` };
  }
}

/** The span of one commit, committing `messages` turns (0 outside a message). */
export function startCommitSpan({ id, host }: Committer, parent: Context, changes: StateChanges, messages: number) {
  return startGrainSpan(SpanNames.stateCommit(id.type), id, host.siloId, parent, {
    [Attr.stateFieldsWritten]: changes.set.length,
    [Attr.stateFieldsRemoved]: changes.remove.length,
    [Attr.batchSize]: messages,
  });
}

/**
 * Closes a turn's span and records its metrics, once its batch is committed (or failed to). A
 * `discarded` turn (its commit was refused and wrote nothing) only closes its span, marked so: its
 * message runs again, and counts then.
 */
export function endTurn({ id, host }: Committer, { trace, method, result, startedAt, envelope }: BatchTurn, discarded = false): void {
  if (discarded) {
    trace?.span.setAttribute(Attr.outcome, 'discarded');
    trace?.span.end();
    return;
  }
  const failed = result.outcome.target === 'failed';
  if (trace !== undefined) {
    trace.span.setAttribute(Attr.outcome, result.outcome.target);
    if (failed) markFailed(trace.span, result.error ?? new Error(result.outcome.target === 'failed' ? result.outcome.reason : 'failed'));
    trace.span.end();
  }
  const errorType = result.error instanceof Error ? errorName(result.error) : undefined;
  host.metrics.turnFinished(
    id.type,
    method,
    failed ? 'failed' : 'completed',
    Date.now() - startedAt,
    startedAt - (envelope?.t ?? startedAt),
    errorType,
  );
}
