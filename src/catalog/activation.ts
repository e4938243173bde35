import { context as otelContext, type Context, type SpanContext } from '@opentelemetry/api';
import { describeError } from '../errors/errors.ts';
import type { GrainId } from '../grain/grain-id.ts';
import { instantiateGrain, type Grain, type GrainContext } from '../grain/grain.ts';
import type { GrainType } from '../grain/grain-type.ts';
import { GrainMailbox, type MailboxMessage, type Taken } from '../mailbox/grain-mailbox.ts';
import { asEnvelope, newCorrelationId } from '../messaging/envelope.ts';
import { GrainStateCodec, type StateChanges, type StateSnapshot } from '../storage/grain-state.ts';
import { Attr, SpanNames } from '../telemetry/semantics.ts';
import { contextWith, markFailed, startGrainSpan, startTurn } from '../telemetry/tracing.ts';
import type { ActivationHost } from './activation-host.ts';
import type { TimerTick } from './grain-timers.ts';
import { ActivationContext, type TurnState } from './activation-context.ts';
import { deadLetter, invoke, runOnce, type HandlerTurn, type TurnResult } from './handler-invoker.ts';
import { endTurn, startCommitSpan, type BatchTurn, type CommitEffects } from './turn-commit.ts';
import { BatchCommit, stepDownReason, type BatchOutcome } from './batch-commit.ts';
import { OutboxForwarder } from '../outbox/outbox-forwarder.ts';
import type { EventRecorder } from '../grain/event-sourced.ts';
import { JournalReadFailure } from '../storage/event-journal.ts';
import { loadEventSourced, newEventRecorder } from './event-replay.ts';
import type { ReadOnlyTarget } from './read-only-call.ts';
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

/** A failure of the grain's own code or data while activating (not of Redis). */
export class GrainActivationError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original), { cause: original });
    this.name = original instanceof Error ? original.name : 'Error';
  }
}

/** Lifecycle of one activation, as in Orleans. */
export type ActivationStatus = 'creating' | 'activating' | 'valid' | 'deactivating' | 'invalid';

/**
 * One live instance of a grain on this silo: it takes the grain's messages from its mailbox, runs
 * each handler to completion one message at a time, in order, and commits the state changes
 * together with the messages' acknowledgements, fenced by its activation epoch. A busy grain takes
 * and commits its messages in batches (up to `turnBatchSize`): one round trip per batch.
 */
export class Activation {
  status: ActivationStatus = 'creating';
  epoch = '';
  /** Commits this activation has made (its directory entry counts them too; see commitTurns.lua). */
  commits = 0;
  lastActiveAt = Date.now();
  /** The messages this activation holds taken (a batch in progress); the silo renews their locks. */
  held: readonly MailboxMessage[] = [];
  /** When the held messages were taken. */
  heldSince = 0;
  /** A wake-up came while deactivating: look at the mailbox again once released. */
  wokenWhileDeactivating = false;
  readonly mailbox: GrainMailbox;
  #grain: Grain<object> | undefined;
  #snapshot: StateSnapshot = new Map();
  /** What the turn in progress carries (correlation id, trace, reminder tick). */
  readonly #turnState: TurnState = {
    correlationId: '',
    trace: undefined,
    reminderTick: undefined,
    effects: undefined,
    waiting: [],
    readOnly: undefined,
  };
  /** Carries out the effects of committed turns. */
  readonly #forwarder: OutboxForwarder;
  /** Number of this activation's next effect (with the epoch, its place in the grain's outbox). */
  #nextEffect = 1;
  /** The last message processed from each sending grain, as far as this activation has looked. */
  readonly #seen = new Map<string, { e: number; n: number } | undefined>();
  /** Outbox entries an earlier activation left, read with the state. */
  #leftover: string[] = [];
  readonly #context: ActivationContext;
  /** The activation span, linked from the first turn (activation is not caused by one message). */
  #activationLink: SpanContext | undefined;
  #draining: Promise<void> | undefined;
  #wakeAgain = false;
  #stopFetching = false;
  #deactivation: Promise<void> | undefined;
  /**
   * Messages another activation left taken must go back to the head of the mailbox before this
   * one processes any: set when a take finds such a message (a new activation learns it from its
   * first take, which reads the taken list anyway), and by a recover wake-up from a fenced one.
   */
  #recoverFirst = false;
  #recoveryRetry: NodeJS.Timeout | undefined;
  /** Messages waiting when this activation last took: the size of its next take. */
  #waiting = 0;
  /**
   * Messages to take one at a time: those just put back after a crash. Recovery charges the crash
   * to the first of them only (see recoverTaken-2.lua), so each of the others must run alone: a
   * poison message among them then crashes alone and is counted, and its batch-mates are not.
   */
  #singleTakes = 0;
  /** The state read (and the mailbox's event cap) sent right behind the claim; see `prefetch`. */
  #prefetched: Promise<[Record<string, string>, void, string[]]> | undefined;
  /** An event-sourced grain's journal and snapshot, and the events of the batch in progress. */
  #journal: EventRecorder | undefined;

  constructor(
    readonly id: GrainId,
    readonly type: GrainType,
    readonly host: ActivationHost,
  ) {
    this.mailbox = new GrainMailbox(
      host.mailboxRoot,
      host.redis,
      host.turns,
      host.keys,
      id,
      `${host.siloId}:${id.tag}`,
      host.lockDurationMs,
    );
    this.#context = new ActivationContext(this, host, this.#turnState, () => this.#tickDue());
    this.#forwarder = new OutboxForwarder(id, host);
  }

  /** Effects committed by this grain's turns and not carried out yet, oldest first. */
  unforwarded(): Iterable<OutboxEffect> {
    return this.#forwarder.pending();
  }

  async forwarded(): Promise<void> {
    await this.#forwarder.flush(this.host.lockDurationMs);
  }

  /** Whether committed effects wait to be carried out (the grain is not idle then). */
  get forwarding(): boolean {
    return this.#forwarder.size > 0;
  }

  /**
   * Sends the state read right behind the directory claim the caller has just sent on the same
   * connection: Redis runs it after the claim, so it sees every commit the previous owner made
   * before being fenced out, and the activation saves a round trip. Dropped when the claim fails.
   */
  prefetch(): void {
    this.#prefetched = this.#read();
    this.#prefetched.catch(() => undefined);
  }

  /** Reads the grain's state and outbox, and caps its mailbox's event stream. */
  #read(): Promise<[Record<string, string>, void, string[]]> {
    const { redis, keys } = this.host;
    return Promise.all([redis.hgetall(keys.state(this.id)), this.mailbox.configure(), redis.lrange(keys.outbox(this.id), 0, -1)]);
  }

  /** Forgets a prefetched read (its claim failed; a later claim needs a read after it). */
  dropPrefetch(): void {
    this.#prefetched = undefined;
  }

  /** Loads the state and runs `onActivate`; the claim in the directory was made by the caller. */
  async activate(epoch: string): Promise<void> {
    this.epoch = epoch;
    this.status = 'activating';
    const host = this.host;
    const span = startGrainSpan(SpanNames.activate(this.id.type), this.id, host.siloId, undefined, { [Attr.epoch]: epoch });
    try {
      await this.#load(this.#context, span);
      this.#activationLink = span.spanContext();
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
    this.status = 'valid';
    this.lastActiveAt = Date.now();
    host.metrics.activated(this.id.type);
    // What an earlier activation committed and did not carry out goes first, in order.
    this.#forwarder.load(this.#leftover);
    this.#leftover = [];
  }

  async #load(context: GrainContext, activationSpan: ReturnType<typeof startGrainSpan>): Promise<void> {
    const host = this.host;
    const load = startGrainSpan(SpanNames.stateLoad(this.id.type), this.id, host.siloId, contextWith(activationSpan));
    let fields: Record<string, string>;
    try {
      const reading = this.#prefetched ?? this.#read();
      this.#prefetched = undefined;
      [fields, , this.#leftover] = await reading;
    } catch (error) {
      markFailed(load, error);
      throw error;
    } finally {
      load.end();
    }
    // From here a failure is the grain's own (its constructor, its state, its onActivate): it
    // counts towards suspension. Redis failures before this point are retried without limit.
    try {
      const grain = instantiateGrain(this.type.cls, context);
      const eventSourcing = this.type.eventSourcing;
      if (eventSourcing === undefined) {
        const loaded = GrainStateCodec.fromFields(fields, grain.initialState());
        grain.state = loaded.state;
        this.#snapshot = loaded.snapshot;
      } else {
        this.#journal = newEventRecorder(this.id, eventSourcing, host);
        this.#snapshot = await loadEventSourced(this.id, grain, this.#journal, fields, host);
      }
      this.#grain = grain;
      await otelContext.with(contextWith(activationSpan), () => grain.onActivate());
    } catch (error) {
      // Redis failing while the journal is read is retried like any Redis failure.
      if (error instanceof JournalReadFailure) throw error.original;
      throw new GrainActivationError(error);
    }
  }

  /** There may be messages: drain the mailbox unless already draining. */
  wake(recover = false): void {
    if (recover) this.#recoverFirst = true;
    if (this.status !== 'valid' || this.#stopFetching) return;
    if (this.#draining !== undefined) {
      this.#wakeAgain = true;
      return;
    }
    this.#draining = this.#drain()
      .catch((error: unknown) => {
        // Redis failed under us (an outage, a lost reply): whatever this activation held is
        // released when it activates again, so drop it and have the silo retry the grain.
        this.#stepDown('mailbox failed', error);
        this.host.retryLater(this.id);
      })
      .finally(() => {
        this.#draining = undefined;
        this.lastActiveAt = Date.now();
      });
  }

  /** What a direct read-only call reads (the committed state), while this activation is valid. */
  readOnlyTarget(): ReadOnlyTarget | undefined {
    if (this.status !== 'valid' || this.#grain === undefined) return undefined;
    return { id: this.id, type: this.type, host: this.host, snapshot: this.#snapshot };
  }

  /** Messages that were still waiting after this activation's last take (free: no Redis read). */
  get waitingHint(): number {
    return this.#waiting;
  }

  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /** A timer fired: run its tick now unless the drain in progress will (between its turns). */
  #tickDue(): void {
    if (this.status !== 'valid' || this.#stopFetching || this.#draining !== undefined) return;
    this.#draining = this.#runTicks([])
      .catch((error: unknown) => {
        this.#stepDown('timer commit failed', error);
        this.host.retryLater(this.id);
      })
      .finally(() => {
        this.#draining = undefined;
        if (this.#wakeAgain) this.wake();
      });
  }

  /** Runs the timer ticks that are due, each as a turn; `held` are messages taken and waiting. */
  async #runTicks(held: readonly MailboxMessage[]): Promise<void> {
    for (let tick = this.#context.timers?.takeDue(); tick !== undefined; tick = this.#context.timers?.takeDue()) {
      if (this.status !== 'valid' || this.#stopFetching) return;
      await this.#tickTurn(tick, held);
    }
  }

  async #tickTurn(tick: TimerTick, held: readonly MailboxMessage[]): Promise<void> {
    const startedAt = Date.now();
    // The messages taken with the last acknowledgement wait meanwhile: keep their locks renewed.
    this.held = held;
    this.#turnState.correlationId = newCorrelationId();
    const span = startGrainSpan(SpanNames.timer(this.id.type, tick.name), this.id, this.host.siloId, undefined, {
      [Attr.grainMethod]: tick.method,
      [Attr.correlationId]: this.#turnState.correlationId,
      [Attr.epoch]: this.epoch,
    });
    const context = contextWith(span);
    this.#turnState.trace = { span, context, traceId: span.spanContext().traceId };
    let commit: BatchOutcome | undefined;
    let result: TurnResult | undefined;
    const effects = new TurnEffects();
    this.#turnState.effects = effects;
    try {
      try {
        result = await otelContext.with(context, () =>
          invoke(this.#handlerTurn(this.#snapshot), tick.method, () => tick.args, { requestId: '', needValue: false, callerWaits: false }),
        );
      } finally {
        this.#turnState.effects = undefined;
      }
      const made = await effects.settle();
      commit = await this.#commitOutsideMessage(result.changes, context, result.outcome.target === 'failed' ? [] : made);
    } finally {
      this.#turnState.correlationId = '';
      this.#turnState.trace = undefined;
      this.held = [];
      if (result?.outcome.target === 'failed') markFailed(span, result.error);
      span.end();
      if (result !== undefined) {
        this.host.metrics.turnFinished(
          this.id.type,
          tick.method,
          result.outcome.target === 'failed' ? 'failed' : 'completed',
          Date.now() - startedAt,
          0,
        );
      }
    }
    if (commit !== undefined && commit.kind !== 'committed') {
      this.#stepDown(stepDownReason(commit), undefined);
      return;
    }
    if (result.changes !== undefined) this.#snapshot = result.changes.snapshot;
    if (tick.keepAlive) this.lastActiveAt = Date.now();
  }

  /**
   * Ends the activation: finishes the turn in progress, runs `onDeactivate`, commits its state
   * changes and releases the directory entry. Messages still queued stay in the mailbox.
   */
  deactivate(reason: string): Promise<void> {
    if (this.#deactivation === undefined && this.status === 'valid') this.#deactivation = this.#deactivate(reason);
    return this.#deactivation ?? Promise.resolve();
  }

  async #deactivate(reason: string): Promise<void> {
    this.status = 'deactivating';
    this.#stopFetching = true;
    await this.#draining;
    const grain = this.#grain;
    const span = startGrainSpan(SpanNames.deactivate(this.id.type), this.id, this.host.siloId, undefined, {
      [Attr.epoch]: this.epoch,
      [Attr.deactivationReason]: reason,
    });
    const spanContext = contextWith(span);
    try {
      if (grain !== undefined) {
        const effects = new TurnEffects();
        this.#turnState.effects = effects;
        let ok = false;
        this.#journal?.beginTurn();
        try {
          await otelContext.with(spanContext, () => grain.onDeactivate());
          await this.#journal?.settle();
          ok = true;
        } finally {
          this.#turnState.effects = undefined;
          this.#journal?.endTurn(ok);
        }
        const changes = GrainStateCodec.diff(this.#snapshot, grain.state, this.id.toString());
        const commit = await this.#commitOutsideMessage(changes, spanContext, await effects.settle());
        if (commit.kind !== 'committed')
          this.host.log.warn('deactivation commit refused', { grain: this.id.toString(), reason: stepDownReason(commit) });
      }
    } catch (error) {
      markFailed(span, error);
      this.host.log.error('onDeactivate or its commit failed; its state changes are not persisted', {
        grain: this.id.toString(),
        error: describeError(error),
      });
    }
    // The grain's committed effects go out before it lets go (bounded: with Redis down they wait
    // in the outbox, and whoever activates the grain next carries them out).
    if (!(await this.#forwarder.flush(this.host.lockDurationMs))) {
      this.host.log.warn('deactivating with effects not carried out yet; they stay in the outbox', {
        grain: this.id.toString(),
        effects: this.#forwarder.size,
      });
    }
    this.#forwarder.stop();
    try {
      await this.host.directory.release(this.id, this.host.siloId, this.epoch);
      await this.host.redis.srem(this.host.keys.siloGrains(this.host.siloId), this.id.tag);
      // A grain at rest keeps its state and directory entry; an empty mailbox leaves nothing.
      await this.mailbox
        .tidy()
        .catch((error: unknown) =>
          this.host.log.warn('could not tidy an empty mailbox', { grain: this.id.toString(), error: describeError(error) }),
        );
    } finally {
      span.end();
      this.host.log.debug('deactivated', { grain: this.id.toString(), reason });
      this.#end(reason);
    }
  }

  /**
   * Commits state changes and effects made outside a message (a timer tick, onDeactivate), fenced
   * by the activation's epoch (nothing to commit counts as committed).
   */
  async #commitOutsideMessage(changes: StateChanges | undefined, parent: Context, effects: readonly OutboxEffect[]): Promise<BatchOutcome> {
    // An event-sourced grain writes its events, and a snapshot when one is due, not its state.
    const journal = this.#journal?.prepare((changes ?? { snapshot: this.#snapshot }).snapshot);
    const state = journal?.changes ?? changes ?? { set: [], remove: [], snapshot: this.#snapshot };
    if (state.set.length === 0 && state.remove.length === 0 && effects.length === 0 && (journal?.events.length ?? 0) === 0)
      return { kind: 'committed', next: { messages: [], foreignTaken: false, waiting: 0 } };
    const span = startCommitSpan(this, parent, state, 0);
    const outbox = this.#number(effects);
    try {
      const outcome = await new BatchCommit(this, {
        changes: state,
        turns: [],
        effects: { outbox: outbox.map((e) => e.raw), seen: [] },
        journal,
      }).send();
      if (outcome.kind === 'committed') {
        this.commits += 1;
        if (journal !== undefined) this.#journal?.committed(journal);
        await this.host.replicate(this.id);
        void this.#forwarder.push(outbox);
      }
      return outcome;
    } finally {
      span.end();
    }
  }

  /** Gives a turn's effects their places after this activation's earlier ones, ready to commit. */
  #number(effects: readonly OutboxEffect[]): { raw: string; entry: OutboxEntry }[] {
    if (effects.length === 0) return [];
    const { entries, next } = numberEffects(effects, senderDigest(this.id), this.epoch, this.#nextEffect);
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
    let last: { e: number; n: number } | undefined = batch.get(mark.s);
    if (last === undefined) {
      if (!this.#seen.has(mark.s)) this.#seen.set(mark.s, decodeSeen(await this.host.redis.hget(this.host.keys.seen(this.id), mark.s)));
      last = this.#seen.get(mark.s);
    }
    return !isAfter(mark, last);
  }

  async #drain(): Promise<void> {
    do {
      this.#wakeAgain = false;
      await this.#runTicks([]);
      if (this.#recoverFirst && !(await this.#recover())) return;
      const count = this.#takeCount();
      let batch = count === 0 ? [] : await this.#unlessForeignTaken(await this.mailbox.take(count));
      while (batch.length > 0 && this.status !== 'invalid') {
        batch = await this.#runBatch(batch);
        if (batch.length > 0 && (this.#context.timers?.hasDue ?? false)) await this.#runTicks(batch);
      }
    } while (
      (this.#wakeAgain || this.#recoverFirst || (this.#context.timers?.hasDue ?? false)) &&
      !this.#stopFetching &&
      this.status === 'valid'
    );
  }

  /**
   * How many messages to take next: as many as were waiting at the last take (they are certainly
   * there), at least one, at most `turnBatchSize`; one at a time after a crash; none once stopping.
   */
  #takeCount(): number {
    if (this.#stopFetching || this.status !== 'valid') return 0;
    if (this.#singleTakes > 0) return 1;
    return Math.min(this.host.turnBatchSize, Math.max(1, this.#waiting));
  }

  /**
   * When another activation holds a message too (a stale one, or one that let go of its own),
   * lets go of the taken messages and recovers first: recovery puts everything taken back in the
   * order it was taken, so order holds. Otherwise returns them to be processed.
   */
  async #unlessForeignTaken(taken: Taken): Promise<MailboxMessage[]> {
    this.#waiting = taken.waiting;
    if (!taken.foreignTaken) return taken.messages;
    // Normal after a takeover (what the previous activation held), rare otherwise (a stale one
    // still taking): either way recovery puts all of it back in order.
    this.host.log.debug('messages taken by another activation; recovering them first', { grain: this.id.toString() });
    if (taken.messages.length > 0) await this.mailbox.release(taken.messages);
    this.#recoverFirst = true;
    return [];
  }

  /**
   * Takes back messages left taken by activations that will never finish them. Runs inside the
   * drain, so no later message is taken meanwhile. Returns false while one is still under a live
   * lock (its holder may yet acknowledge it): then nothing is taken, and recovery is tried again.
   */
  async #recover(): Promise<boolean> {
    const { moved, locked } = await this.mailbox.recoverTaken((token) => this.host.isStaleLock(token));
    if (locked === 0) {
      this.#recoverFirst = false;
      this.#singleTakes = Math.max(this.#singleTakes, moved);
      return true;
    }
    clearTimeout(this.#recoveryRetry);
    this.#recoveryRetry = setTimeout(() => this.wake(), Math.min(1_000, this.host.lockDurationMs)).unref();
    return false;
  }

  /**
   * Runs a batch of taken messages, each as its own turn in order, then commits all their state
   * changes and acknowledgements in one fenced MULTI, which also takes the next batch. A failed
   * handler rolls back only its own message's changes. Replies go out once the batch is committed.
   * Returns the next batch.
   */
  async #runBatch(messages: readonly MailboxMessage[]): Promise<MailboxMessage[]> {
    this.held = messages;
    this.heldSince = Date.now();
    const turns: BatchTurn[] = [];
    /** Outcomes of idempotency keys decided in this batch, not yet committed. */
    const decided = new Map<string, string>();
    /** The last message of each sending grain processed in this batch, not committed yet. */
    const seen = new Map<string, SenderMark>();
    let working = this.#snapshot;
    const drop = () => {
      for (const turn of turns) turn.trace?.span.end();
      this.held = [];
    };
    try {
      for (const message of messages) {
        // Abandoned meanwhile (its silo was declared dead): nothing may be written.
        if (this.status === 'invalid') {
          drop();
          return [];
        }
        // Stopping: commit the turns that ran and hand back, in order, those that did not start.
        if (this.status === 'deactivating') break;
        const turn = await this.#runMessage(message, working, decided, seen);
        if (turn.result.changes !== undefined) working = turn.result.changes.snapshot;
        if (this.#singleTakes > 0) this.#singleTakes -= 1;
        turns.push(turn);
      }
    } catch (error) {
      drop();
      throw error;
    }
    const unstarted = messages.slice(turns.length);
    if (turns.length === 0) {
      try {
        await this.mailbox.handBack(unstarted);
      } finally {
        this.held = [];
      }
      return [];
    }
    const only = turns.length === 1 ? turns[0]?.result.changes : undefined;
    // An event-sourced grain writes its events, and a snapshot when one is due, not its state.
    const journal = this.#journal?.prepare(working);
    const changes = journal?.changes ?? only ?? GrainStateCodec.between(this.#snapshot, working);
    const last = turns[turns.length - 1];
    const commit = last?.trace === undefined ? undefined : startCommitSpan(this, last.trace.context, changes, turns.length);
    const outbox = this.#number(turns.flatMap((turn) => turn.effects));
    const effects: CommitEffects = {
      outbox: outbox.map((e) => e.raw),
      seen: [...seen].map(([sender, mark]) => [sender, encodeSeen(mark)] as const),
    };
    let outcome: BatchOutcome;
    try {
      outcome = await new BatchCommit(this, { changes, turns, effects, journal, take: this.#takeCount() }).send();
    } finally {
      commit?.end();
      for (const turn of turns) endTurn(this, turn);
      this.held = [];
    }
    if (outcome.kind === 'ackRefused') {
      this.#stepDown(stepDownReason(outcome), undefined);
      return [];
    }
    if (outcome.kind !== 'committed') {
      if (outcome.kind === 'rolledBack')
        this.host.log.warn('Redis lost commits of this grain; reading its state again', { grain: this.id.toString() });
      this.#stepDown(stepDownReason(outcome), undefined);
      // The messages are back in the hands of the grain's owner: tell it to take them back now.
      this.host.wakeOwner(this.id, true);
      return [];
    }
    this.commits += 1;
    this.#snapshot = working;
    if (journal !== undefined) this.#journal?.committed(journal);
    for (const [sender, mark] of seen) this.#seen.set(sender, mark);
    // With replicas required, nothing of the batch leaves the grain before they have its commit.
    await this.host.replicate(this.id);
    // An `ask` answers once its batch's effects are carried out: a caller that asks, then calls a
    // grain the handler sent to, finds the handler's message there before its own.
    const carriedOut = this.#forwarder.push(outbox);
    const answer = () => {
      for (const { envelope, result } of turns) {
        if (envelope?.r !== undefined && result.reply !== undefined) this.host.reply(envelope.r.c, result.reply);
      }
    };
    if (outbox.length === 0) answer();
    else void carriedOut.then(answer);
    if (unstarted.length > 0) {
      this.held = unstarted;
      try {
        await this.mailbox.handBack(unstarted);
      } finally {
        this.held = [];
      }
      return [];
    }
    return this.#unlessForeignTaken(outcome.next);
  }

  /** Runs one message's handler against the state as the batch left it so far. */
  async #runMessage(
    message: MailboxMessage,
    snapshot: StateSnapshot,
    decided: Map<string, string>,
    seen: Map<string, SenderMark>,
  ): Promise<BatchTurn> {
    const startedAt = Date.now();
    this.lastActiveAt = startedAt;
    const envelope = asEnvelope(message.data);
    const method = envelope?.m ?? message.name;
    const trace =
      envelope === undefined
        ? undefined
        : startTurn(this.id, envelope, {
            siloId: this.host.siloId,
            epoch: this.epoch,
            jobId: message.jobId,
            deliveryCount: message.attemptsStarted,
            activationLink: this.#activationLink,
          });
    this.#activationLink = undefined;
    if (message.attemptsStarted > 1) this.host.metrics.retried(this.id.type, method);
    let result: TurnResult;
    let effects: OutboxEffect[] = [];
    const duplicate = envelope?.o !== undefined && (await this.#seenBefore(envelope.o, seen));
    if (duplicate) {
      this.host.log.debug('message from a grain processed already; dropped', { grain: this.id.toString(), method: envelope.m });
      result = { outcome: { target: 'completed' }, changes: undefined, reply: undefined };
    } else if (message.attemptsStarted > this.host.maxMessageAttempts) {
      result = await deadLetter(this.id, this.host, message, envelope);
    } else if (envelope === undefined) {
      this.host.log.warn('refused a message that is not a redgrain envelope', {
        grain: this.id.toString(),
        jobId: message.jobId,
      });
      const reason = 'malformed message: not a redgrain envelope';
      result = { outcome: { target: 'failed', reason }, changes: undefined, reply: undefined, error: new TypeError(reason) };
    } else {
      this.#turnState.correlationId = envelope.c;
      this.#turnState.reminderTick = envelope.rt;
      // Only an `ask`'s caller waits for this turn: a one-way message starts no chain.
      this.#turnState.waiting = envelope.r === undefined ? [] : (envelope.w ?? []);
      this.#turnState.trace = trace;
      this.#turnState.readOnly = this.type.readOnly.has(envelope.m) ? envelope.m : undefined;
      const recorded = new TurnEffects();
      this.#turnState.effects = recorded;
      try {
        const run = () => runOnce(this.#handlerTurn(snapshot), envelope, decided);
        result = trace === undefined ? await run() : await otelContext.with(trace.context, run);
      } finally {
        this.#turnState.correlationId = '';
        this.#turnState.reminderTick = undefined;
        this.#turnState.trace = undefined;
        this.#turnState.effects = undefined;
        this.#turnState.waiting = [];
        this.#turnState.readOnly = undefined;
      }
      const made = await recorded.settle();
      // A handler that threw leaves no effect.
      if (result.outcome.target !== 'failed') effects = made;
    }
    // Processed (whatever the outcome): a copy forwarded again later is a duplicate.
    if (envelope?.o !== undefined && !duplicate) seen.set(envelope.o.s, envelope.o);
    return { message, envelope, method, trace, result, startedAt, effects };
  }

  /** What a handler runs against: `snapshot` is the state its failure rolls back to. */
  #handlerTurn(snapshot: StateSnapshot): HandlerTurn {
    return {
      id: this.id,
      type: this.type,
      host: this.host,
      grain: this.#grain as Grain<object>,
      snapshot,
      correlationId: this.#turnState.correlationId,
    };
  }

  /** Drops the activation without writing anything (its silo was declared dead). */
  abandon(): void {
    this.#forwarder.stop();
    this.#context.timers?.clearAll();
    clearTimeout(this.#recoveryRetry);
    this.#stopFetching = true;
    this.status = 'invalid';
    this.#grain = undefined;
  }

  /** This activation can no longer commit: drop it without writing anything. */
  #stepDown(reason: string, error: unknown): void {
    if (this.status === 'invalid') return;
    this.host.log.warn('activation stepped down', {
      grain: this.id.toString(),
      epoch: this.epoch,
      reason,
      ...(error === undefined ? {} : { error: describeError(error) }),
    });
    this.#stopFetching = true;
    this.#end('stepped down');
  }

  #end(reason: string): void {
    this.#context.timers?.clearAll();
    // A stepped-down activation's effects are the next owner's to carry out (it reads the outbox).
    if (reason === 'stepped down') this.#forwarder.stop();
    clearTimeout(this.#recoveryRetry);
    if (this.status === 'invalid') return;
    this.status = 'invalid';
    this.#grain = undefined;
    this.host.metrics.deactivated(this.id.type, reason);
    this.host.ended(this);
  }
}
