import { context as otelContext, type Context, type SpanContext } from '@opentelemetry/api';
import type { Grain } from '../grain/grain.ts';
import type { FinishOutcome, MailboxMessage, Taken } from '../mailbox/grain-mailbox.ts';
import { asEnvelope, newCorrelationId } from '../messaging/envelope.ts';
import { isPack, jobMessages, packKey, PACK_PROGRESS_FIELD, type PackProgress } from '../messaging/message-pack.ts';
import {
  decodeSeen,
  encodeSeen,
  isAfter,
  numberEffects,
  senderDigest,
  TurnEffects,
  type OutboxEffect,
  type OutboxEntry,
  type SenderMark,
} from '../outbox/outbox.ts';
import { GrainStateCodec, type StateChanges, type StateSnapshot } from '../storage/grain-state.ts';
import { Attr, SpanNames } from '../telemetry/semantics.ts';
import { contextWith, markFailed, startGrainSpan, startTurn } from '../telemetry/tracing.ts';
import type { TurnState } from './activation-context.ts';
import type { Activation } from './activation.ts';
import { BatchCommit, stepDownReason, type BatchOutcome, type BatchParts } from './batch-commit.ts';
import type { TimerTick } from './grain-timers.ts';
import { deadLetter, invoke, runOnce, type HandlerTurn, type TurnResult } from './handler-invoker.ts';
import { endTurn, startCommitSpan, type BatchTurn, type CommitEffects } from './turn-commit.ts';

/** What the message loop tells the runner about the batch in progress. */
export interface BatchHooks {
  /** How many messages to take with the batch's commit. */
  takeCount(): number;
  /** One message of the batch has run. */
  ran(): void;
  /** The batch stopped before a pack that must run alone: take it alone, next. */
  takeAlone(): void;
  /** The batch was taken alone after a recovery: its message may have been interrupted uncounted. */
  takenAfterRecovery(): boolean;
  /** Messages went back to the mailbox: look at it again before stopping. */
  lookAgain(): void;
}

/**
 * Runs an activation's turns: each message of a batch as its own turn, in order, then the batch's
 * fenced commit; a timer tick as a turn; and the commits made outside a message (a tick,
 * `onDeactivate`). It numbers the turns' effects, drops messages a sending grain forwarded twice,
 * and answers `ask` callers once their batch is committed.
 */
export class TurnRunner {
  /** What the turn in progress carries (correlation id, trace, reminder tick). */
  readonly turnState: TurnState = {
    correlationId: '',
    trace: undefined,
    reminderTick: undefined,
    effects: undefined,
    waiting: [],
    readOnly: undefined,
    refused: undefined,
  };
  /** The activation span, linked from the first turn (activation is not caused by one message). */
  activationLink: SpanContext | undefined;
  /** Number of this activation's next effect (with the epoch, its place in the grain's outbox). */
  #nextEffect = 1;
  /** The last message processed from each sending grain, as far as this activation has looked. */
  readonly #seen = new Map<string, { e: number; n: number } | undefined>();

  constructor(private readonly activation: Activation) {}

  /**
   * Runs a batch of taken messages, each as its own turn in order (a pack's messages each as its
   * own turn too), then commits all their state changes and acknowledgements in one fenced MULTI,
   * which also takes the next batch. A failed handler rolls back only its own message's changes.
   * Replies go out once the batch is committed. Returns the next batch (undefined when there is
   * none to run: stopping, stepped down).
   *
   * `claim`: the one message came with its wake-up and runs while its take (sent just before, on
   * the turn connection, so Redis runs it before the commit) is under way. Should that take have
   * found another message ahead of it, the commit finds the message unlocked and writes nothing; the
   * turn is then undone in memory (its state changes, its effects' numbers) and what the take found
   * goes back to the head of the mailbox.
   */
  async runBatch(
    messages: readonly MailboxMessage[],
    hooks: BatchHooks,
    claim?: Promise<MailboxMessage | undefined>,
  ): Promise<Taken | undefined> {
    const activation = this.activation;
    const [first] = messages;
    if (
      claim === undefined &&
      messages.length === 1 &&
      first !== undefined &&
      (this.#needsCare(first) || (isRunnablePack(first) && hooks.takenAfterRecovery()))
    ) {
      return this.#runPackCarefully(first, hooks);
    }
    activation.held = messages;
    activation.heldSince = Date.now();
    const turns: BatchTurn[] = [];
    const jobs: { message: MailboxMessage; outcome: FinishOutcome }[] = [];
    /** Outcomes of idempotency keys decided in this batch, not yet committed. */
    const decided = new Map<string, string>();
    /** The last message of each sending grain processed in this batch, not committed yet. */
    const seen = new Map<string, SenderMark>();
    let working = activation.snapshot;
    const drop = () => {
      for (const turn of turns) turn.trace?.span.end();
      activation.held = [];
    };
    try {
      for (const message of messages) {
        // Stopping: commit the turns that ran and hand back, in order, those that did not start.
        if (activation.status === 'deactivating') break;
        // A pack that must run one message per commit runs alone: what ran before it commits,
        // it and what follows go back, and it is taken alone next.
        if (this.#needsCare(message)) {
          hooks.takeAlone();
          break;
        }
        const ofJob: BatchTurn[] = [];
        for (const [at, data] of (jobMessages(message.data) ?? [TOO_BIG]).entries()) {
          // Abandoned meanwhile (its silo was declared dead): nothing may be written.
          if (activation.status === 'invalid') {
            drop();
            return undefined;
          }
          const turn = await this.#runMessage(message, data, at, message.attemptsStarted, working, decided, seen);
          if (turn.result.changes !== undefined) working = turn.result.changes.snapshot;
          turns.push(turn);
          ofJob.push(turn);
        }
        jobs.push({ message, outcome: jobOutcome(ofJob) });
        hooks.ran();
      }
    } catch (error) {
      drop();
      throw error;
    }
    const unstarted = messages.slice(jobs.length);
    if (jobs.length === 0) {
      // Stopping before the claimed message started: give back whatever its take took.
      const taken = claim === undefined ? unstarted : [await claim].filter((message) => message !== undefined);
      await this.#handBack(taken);
      return undefined;
    }
    const only = turns.length === 1 ? turns[0]?.result.changes : undefined;
    const effects = turns.flatMap((turn) => turn.effects);
    const effectsBefore = this.#nextEffect;
    const outcome = await this.#commit(turns, effects, only ?? GrainStateCodec.between(activation.snapshot, working), working, seen, {
      messages: jobs,
      // Nothing more is taken while messages of this batch are still to be given back.
      take: unstarted.length > 0 ? 0 : hooks.takeCount(),
    });
    // A claimed message's take ran before the commit: only a lost lock says it may not have taken
    // the message (a committed turn's take needs no answer, so its failure is none of the turn's).
    if (claim !== undefined && outcome.kind === 'lockLost') {
      const taken = await claim;
      if (taken?.jobId !== first?.jobId) {
        // Another message was ahead: nothing was written, so the state is the committed one.
        const grain = activation.grain as Grain<object>;
        grain.state = GrainStateCodec.restore(activation.snapshot, grain.initialState());
        this.#nextEffect = effectsBefore;
        activation.host.log.debug('a message its wake-up carried was not the next one; undone', { grain: activation.id.toString() });
        // What the take found goes back to the head of the mailbox, uncounted, and runs next.
        if (taken !== undefined) await this.#handBack([taken]);
        hooks.lookAgain();
        return NOTHING_TAKEN;
      }
    }
    if (outcome.kind !== 'committed') return this.#refused(outcome);
    if (unstarted.length > 0) {
      await this.#handBack(unstarted);
      return undefined;
    }
    return outcome.next;
  }

  /**
   * Whether a pack must run one message per commit: it was in the hands of an activation that
   * crashed or stepped down (taken before), or one of its messages has committed already.
   */
  #needsCare(message: MailboxMessage): boolean {
    if (!isRunnablePack(message)) return false;
    return message.attemptsStarted > 1 || this.activation.packProgress?.j === packKey(message.jobId, message.data);
  }

  /**
   * Runs a pack one message per commit, recording how far it got with each commit (the state
   * field PACK_PROGRESS_FIELD), so that a crash repeats only the message it interrupted: a message
   * that keeps killing its activation is counted alone, dead-lettered alone, and its pack-mates go
   * on. The pack is acknowledged with its last message's commit, which also takes the next batch.
   */
  async #runPackCarefully(pack: MailboxMessage, hooks: BatchHooks): Promise<Taken | undefined> {
    const activation = this.activation;
    const all = jobMessages(pack.data) ?? [];
    const key = packKey(pack.jobId, pack.data);
    const found = activation.packProgress;
    let message = pack;
    activation.held = [message];
    activation.heldSince = Date.now();
    let progress = found?.j === key && found.d <= all.length ? found : undefined;
    if (progress === undefined) {
      // No message of the pack has committed: the crashes behind its earlier takes interrupted
      // runs of the whole pack, which no one message can be charged with. Recorded first, this
      // baseline charges each crash from here on to the message it interrupted (an innocent
      // message ahead of a poison one runs as a first attempt), and a message that crashes before
      // anything commits is counted too.
      progress = { j: key, d: 0, a: Math.max(0, pack.attemptsStarted - 1) };
      const { snapshot } = activation;
      const baseline = await this.#commit(
        [],
        [],
        { set: [[PACK_PROGRESS_FIELD, JSON.stringify(progress)]], remove: [], snapshot },
        snapshot,
        new Map(),
        {
          messages: [],
        },
      );
      if (baseline.kind !== 'committed') return this.#refused(baseline);
      activation.packProgress = progress;
    }
    const turns: BatchTurn[] = [];
    for (let at = progress.d; at < all.length; at++) {
      if (activation.status === 'invalid') {
        activation.held = [];
        return undefined;
      }
      if (activation.status === 'deactivating') {
        await this.#handBack([message]);
        return undefined;
      }
      // The message the last crash interrupted carries the takes since it started; the rest one.
      const attempts = at === progress.d ? Math.max(1, pack.attemptsStarted - progress.a) : 1;
      const seen = new Map<string, SenderMark>();
      const turn = await this.#runMessage(message, all[at], at, attempts, activation.snapshot, new Map(), seen);
      turns.push(turn);
      const last = at === all.length - 1;
      const working = turn.result.changes?.snapshot ?? activation.snapshot;
      const changes = turn.result.changes ?? GrainStateCodec.between(activation.snapshot, working);
      const next: PackProgress = { j: key, d: at + 1, a: pack.attemptsStarted - 1 };
      const tracked: StateChanges = last
        ? { ...changes, remove: [...changes.remove, PACK_PROGRESS_FIELD] }
        : { ...changes, set: [...changes.set, [PACK_PROGRESS_FIELD, JSON.stringify(next)]] };
      if (last) hooks.ran();
      const outcome = await this.#commit([turn], turn.effects, tracked, working, seen, {
        messages: [{ message, outcome: jobOutcome(turns, progress.d) }],
        finish: last,
        take: last ? hooks.takeCount() : 0,
      });
      if (outcome.kind !== 'committed') return this.#refused(outcome);
      activation.packProgress = last ? undefined : next;
      if (last) return outcome.next;
      // The pack stays taken, its lock now holding the commit's token.
      message = { ...message, token: outcome.sealed };
      activation.held = [message];
    }
    // Nothing was left to run (every message had committed, or the pack is empty): acknowledge it.
    hooks.ran();
    const { snapshot } = activation;
    const outcome = await this.#commit([], [], { set: [], remove: [PACK_PROGRESS_FIELD], snapshot }, snapshot, new Map(), {
      messages: [{ message, outcome: { target: 'completed' } }],
      take: hooks.takeCount(),
    });
    if (outcome.kind !== 'committed') return this.#refused(outcome);
    activation.packProgress = undefined;
    return outcome.next;
  }

  /**
   * Commits turns that ran (their state `changes`, leading to `working`, and `effects`) or, with
   * no turns, what a timer tick or `onDeactivate` did; once committed, answers the turns' callers
   * and carries out the effects. A commit outside a message with nothing to write writes nothing
   * and counts as committed. Anything but `committed` wrote nothing.
   */
  async #commit(
    turns: readonly BatchTurn[],
    effects: readonly OutboxEffect[],
    stateChanges: StateChanges,
    working: StateSnapshot,
    seen: ReadonlyMap<string, SenderMark>,
    parts: Pick<BatchParts, 'messages' | 'take' | 'finish'>,
    parent: Context | undefined = turns[turns.length - 1]?.trace?.context,
  ): Promise<BatchOutcome> {
    const activation = this.activation;
    // An event-sourced grain writes its events, and a snapshot when one is due, not its state.
    const journal = activation.journal?.prepare(working);
    const changes = journal?.changes === undefined ? stateChanges : withProgressOf(stateChanges, journal.changes);
    const nothing = changes.set.length === 0 && changes.remove.length === 0 && effects.length === 0 && (journal?.events.length ?? 0) === 0;
    if (parts.messages.length === 0 && nothing) return { kind: 'committed', next: NOTHING_TAKEN, sealed: '' };
    const span = parent === undefined ? undefined : startCommitSpan(activation, parent, changes, turns.length);
    const outbox = this.#number(effects);
    // An `ask` answers once its batch's effects are carried out (a caller that asks, then calls a
    // grain the handler sent to, finds the handler's message there before its own), and once
    // replicas have the commit. With neither to wait for, the commit publishes the replies itself.
    const replies = outbox.length === 0 ? this.#publications(turns) : undefined;
    const committing: CommitEffects = {
      outbox: outbox.map((e) => e.raw),
      seen: [...seen].map(([sender, mark]) => [sender, encodeSeen(mark)] as const),
      replies,
    };
    const records = turns.flatMap((turn) => turn.result.idempotent ?? []);
    // Its callers may hear of this commit before this activation reads its outcome: direct reads
    // wait until the snapshot includes it.
    let read = (): void => undefined;
    if (replies !== undefined && replies.length > 0) activation.unreadCommit = new Promise<void>((resolve) => (read = resolve));
    let outcome: BatchOutcome | undefined;
    try {
      outcome = await new BatchCommit(activation, { ...parts, changes, records, effects: committing, journal }).send();
    } catch (error) {
      activation.unreadCommit = undefined;
      read();
      throw error;
    } finally {
      span?.end();
      // A commit that failed may have gone through: its turns count. One refused wrote nothing:
      // its turns are discarded, and run again (and count) once their messages are taken again.
      const discarded = outcome !== undefined && outcome.kind !== 'committed';
      for (const turn of turns) endTurn(activation, turn, discarded);
      activation.held = [];
    }
    if (outcome.kind === 'committed') {
      activation.commits += 1;
      activation.snapshot = working;
    }
    activation.unreadCommit = undefined;
    read();
    if (outcome.kind !== 'committed') return outcome;
    if (journal !== undefined) activation.journal?.committed(journal);
    for (const [sender, mark] of seen) this.#seen.set(sender, mark);
    // With replicas required, nothing of the batch leaves the grain before they have its commit.
    await activation.host.replicate(activation.id);
    const carriedOut = activation.forwarder.push(outbox);
    // Published by the commit itself.
    if (replies !== undefined) return outcome;
    const answer = () => {
      for (const { envelope, result } of turns) {
        if (envelope?.r !== undefined && result.reply !== undefined) activation.host.reply(envelope.r.c, result.reply);
      }
    };
    if (outbox.length === 0) answer();
    else void carriedOut.then(answer);
    return outcome;
  }

  /** The turns' replies as the commit publishes them; undefined when the silo must publish them. */
  #publications(turns: readonly BatchTurn[]): NonNullable<CommitEffects['replies']> | undefined {
    const publications: (readonly [string, string])[] = [];
    for (const { envelope, result } of turns) {
      if (envelope?.r === undefined || result.reply === undefined) continue;
      const publication = this.activation.host.replyPublication(envelope.r.c, result.reply);
      if (publication === undefined) return undefined;
      publications.push(publication);
    }
    return publications;
  }

  /** A batch's commit was refused: this activation steps down, and the owner takes the batch back. */
  #refused(outcome: Exclude<BatchOutcome, { kind: 'committed' }>): undefined {
    const activation = this.activation;
    if (outcome.kind === 'rolledBack')
      activation.host.log.warn('Redis lost commits of this grain; reading its state again', { grain: activation.id.toString() });
    activation.stepDown(stepDownReason(outcome));
    // The messages are back in the hands of the grain's owner: tell it to take them back now
    // (after a refused acknowledgement the commit stands, and the owner finds them anyway).
    if (outcome.kind !== 'ackRefused') activation.host.wakeOwner(activation.id, true);
    return undefined;
  }

  /** Gives back, in order, messages of the batch that did not start (the silo is stopping). */
  async #handBack(unstarted: readonly MailboxMessage[]): Promise<void> {
    this.activation.held = unstarted;
    try {
      await this.activation.mailbox.handBack(unstarted);
    } finally {
      this.activation.held = [];
    }
  }

  /**
   * Runs one message's handler against the state as the batch left it so far. `data` is the
   * message as stored (the job's data, or one message of a pack, at place `at`); `attempts` is how
   * many times it has been started, this time included.
   */
  async #runMessage(
    message: MailboxMessage,
    data: unknown,
    at: number,
    attempts: number,
    snapshot: StateSnapshot,
    decided: Map<string, string>,
    seen: Map<string, SenderMark>,
  ): Promise<BatchTurn> {
    const { id, type, host } = this.activation;
    const startedAt = Date.now();
    this.activation.lastActiveAt = startedAt;
    const envelope = data === TOO_BIG ? undefined : asEnvelope(data);
    const method = envelope?.m ?? message.name;
    const jobId = isPack(message.data) ? `${message.jobId}.${at}` : message.jobId;
    const trace =
      envelope === undefined
        ? undefined
        : startTurn(id, envelope, {
            siloId: host.siloId,
            epoch: this.activation.epoch,
            jobId,
            deliveryCount: attempts,
            activationLink: this.activationLink,
          });
    this.activationLink = undefined;
    if (attempts > 1) host.metrics.retried(id.type, method);
    let result: TurnResult;
    let effects: OutboxEffect[] = [];
    const duplicate = envelope?.o !== undefined && (await this.#seenBefore(envelope.o, seen));
    if (duplicate) {
      host.log.debug('message from a grain processed already; dropped', { grain: id.toString(), method: envelope.m });
      result = { outcome: { target: 'completed' }, changes: undefined, reply: undefined };
    } else if (attempts > host.maxMessageAttempts) {
      const stored = data === TOO_BIG ? message.data : data;
      result = await deadLetter(id, host, { jobId, name: method, data: stored, attemptsStarted: attempts }, envelope);
    } else if (envelope === undefined) {
      host.log.warn('refused a message that is not a redgrain envelope', { grain: id.toString(), jobId });
      const reason = 'malformed message: not a redgrain envelope';
      result = { outcome: { target: 'failed', reason }, changes: undefined, reply: undefined, error: new TypeError(reason) };
    } else {
      const turn = this.turnState;
      turn.correlationId = envelope.c;
      turn.reminderTick = envelope.rt;
      // Only an `ask`'s caller waits for this turn: a one-way message starts no chain.
      turn.waiting = envelope.r === undefined ? [] : (envelope.w ?? []);
      turn.trace = trace;
      turn.readOnly = type.readOnly.has(envelope.m) ? envelope.m : undefined;
      turn.refused = undefined;
      const recorded = new TurnEffects();
      turn.effects = recorded;
      try {
        const run = () => runOnce(this.#handlerTurn(snapshot), envelope, decided);
        result = trace === undefined ? await run() : await otelContext.with(trace.context, run);
      } finally {
        turn.correlationId = '';
        turn.reminderTick = undefined;
        turn.trace = undefined;
        turn.effects = undefined;
        turn.waiting = [];
        turn.readOnly = undefined;
        turn.refused = undefined;
      }
      const made = await recorded.settle();
      // A handler that threw leaves no effect.
      if (result.outcome.target !== 'failed') effects = made;
    }
    // Processed (whatever the outcome): a copy forwarded again later is a duplicate.
    if (envelope?.o !== undefined && !duplicate) seen.set(envelope.o.s, envelope.o);
    return { message, envelope, method, trace, result, startedAt, effects };
  }

  /** Runs one timer tick as a turn; `held` are messages taken and waiting meanwhile. */
  async runTick(tick: TimerTick, held: readonly MailboxMessage[]): Promise<void> {
    const activation = this.activation;
    const { id, host } = activation;
    const turn = this.turnState;
    const startedAt = Date.now();
    // The messages taken with the last acknowledgement wait meanwhile: keep their locks renewed.
    activation.held = held;
    turn.correlationId = newCorrelationId();
    const span = startGrainSpan(SpanNames.timer(id.type, tick.name), id, host.siloId, undefined, {
      [Attr.grainMethod]: tick.method,
      [Attr.correlationId]: turn.correlationId,
      [Attr.epoch]: activation.epoch,
    });
    const context = contextWith(span);
    turn.trace = { span, context, traceId: span.spanContext().traceId };
    let commit: BatchOutcome | undefined;
    let result: TurnResult | undefined;
    const effects = new TurnEffects();
    turn.effects = effects;
    try {
      try {
        result = await otelContext.with(context, () =>
          invoke(this.#handlerTurn(activation.snapshot), tick.method, () => tick.args, {
            requestId: '',
            needValue: false,
            callerWaits: false,
          }),
        );
      } finally {
        turn.effects = undefined;
      }
      const made = await effects.settle();
      commit = await this.commitOutsideMessage(result.changes, context, result.outcome.target === 'failed' ? [] : made);
    } finally {
      turn.correlationId = '';
      turn.trace = undefined;
      activation.held = [];
      if (result?.outcome.target === 'failed') markFailed(span, result.error);
      span.end();
      if (result !== undefined) {
        const outcome = result.outcome.target === 'failed' ? 'failed' : 'completed';
        host.metrics.turnFinished(id.type, tick.method, outcome, Date.now() - startedAt, 0);
      }
    }
    if (commit !== undefined && commit.kind !== 'committed') {
      activation.stepDown(stepDownReason(commit));
      return;
    }
    if (result.changes !== undefined) activation.snapshot = result.changes.snapshot;
    if (tick.keepAlive) activation.lastActiveAt = Date.now();
  }

  /**
   * Commits state changes and effects made outside a message (a timer tick, onDeactivate), fenced
   * by the activation's epoch (nothing to commit counts as committed).
   */
  commitOutsideMessage(changes: StateChanges | undefined, parent: Context, effects: readonly OutboxEffect[]): Promise<BatchOutcome> {
    const { snapshot } = this.activation;
    const state = changes ?? { set: [], remove: [], snapshot };
    return this.#commit([], effects, state, state.snapshot, new Map(), { messages: [] }, parent);
  }

  /** Gives a turn's effects their places after this activation's earlier ones, ready to commit. */
  #number(effects: readonly OutboxEffect[]): { raw: string; entry: OutboxEntry }[] {
    if (effects.length === 0) return [];
    const { entries, next } = numberEffects(effects, senderDigest(this.activation.id), this.activation.epoch, this.#nextEffect);
    this.#nextEffect = next;
    return entries.map((entry) => ({ raw: JSON.stringify(entry), entry }));
  }

  /**
   * Whether a message a grain sent through its outbox was processed here already (its forwarding
   * was redone): messages from one grain arrive in the order it sent them, so anything not after
   * the last one processed from that grain is a duplicate. `batch` holds the batch's own, not
   * committed yet.
   */
  async #seenBefore(mark: SenderMark, batch: Map<string, SenderMark>): Promise<boolean> {
    const { host, id } = this.activation;
    let last: { e: number; n: number } | undefined = batch.get(mark.s);
    if (last === undefined) {
      if (!this.#seen.has(mark.s)) this.#seen.set(mark.s, decodeSeen(await host.redis.hget(host.keys.seen(id), mark.s)));
      last = this.#seen.get(mark.s);
    }
    return !isAfter(mark, last);
  }

  /** What a handler runs against: `snapshot` is the state its failure rolls back to. */
  #handlerTurn(snapshot: StateSnapshot): HandlerTurn {
    const { id, type, host } = this.activation;
    return {
      id,
      type,
      host,
      grain: this.activation.grain as Grain<object>,
      snapshot,
      correlationId: this.turnState.correlationId,
      refused: () => this.turnState.refused,
    };
  }
}

/** What a commit that takes nothing answers as the next batch. */
const NOTHING_TAKEN: Taken = { messages: [], foreignTaken: false, waiting: 0 };

/** Stands for the messages of a pack too big to be ours: one malformed message. */
const TOO_BIG = Symbol('a pack too big to be read');

/**
 * How to finish a job once its turns ran: completed when every one completed; failed otherwise,
 * with each failure's reason (for a pack, which of its messages failed).
 */
/** A pack whose messages can be read (one that cannot is failed whole, like any bad job). */
function isRunnablePack(message: MailboxMessage): boolean {
  return isPack(message.data) && jobMessages(message.data) !== undefined;
}

function jobOutcome(turns: readonly BatchTurn[], first = 0): FinishOutcome {
  const failures = turns.flatMap((turn, at) =>
    turn.result.outcome.target === 'failed' ? [{ at, turn, reason: turn.result.outcome.reason }] : [],
  );
  if (failures.length === 0) return { target: 'completed' };
  const [only] = failures;
  if (turns.length === 1 && only !== undefined) return { target: 'failed', reason: only.reason };
  return {
    target: 'failed',
    reason: failures.map(({ at, turn, reason }) => `message ${first + at + 1} of the pack (${turn.method}): ${reason}`).join('; '),
  };
}

/** An event-sourced grain's journal changes, keeping a pack's progress field from the turn's changes. */
function withProgressOf(turn: StateChanges, journal: StateChanges): StateChanges {
  const set = turn.set.filter(([field]) => field === PACK_PROGRESS_FIELD);
  const remove = turn.remove.filter((field) => field === PACK_PROGRESS_FIELD);
  return set.length === 0 && remove.length === 0
    ? journal
    : { ...journal, set: [...journal.set, ...set], remove: [...journal.remove, ...remove] };
}
