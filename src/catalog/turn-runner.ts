import { context as otelContext, type Context, type SpanContext } from '@opentelemetry/api';
import type { Grain } from '../grain/grain.ts';
import type { MailboxMessage, Taken } from '../mailbox/grain-mailbox.ts';
import { asEnvelope, newCorrelationId } from '../messaging/envelope.ts';
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
import { BatchCommit, stepDownReason, type BatchOutcome } from './batch-commit.ts';
import type { TimerTick } from './grain-timers.ts';
import { deadLetter, invoke, runOnce, type HandlerTurn, type TurnResult } from './handler-invoker.ts';
import { endTurn, startCommitSpan, type BatchTurn, type CommitEffects } from './turn-commit.ts';

/** What the message loop tells the runner about the batch in progress. */
export interface BatchHooks {
  /** How many messages to take with the batch's commit. */
  takeCount(): number;
  /** One message of the batch has run. */
  ran(): void;
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
  };
  /** The activation span, linked from the first turn (activation is not caused by one message). */
  activationLink: SpanContext | undefined;
  /** Number of this activation's next effect (with the epoch, its place in the grain's outbox). */
  #nextEffect = 1;
  /** The last message processed from each sending grain, as far as this activation has looked. */
  readonly #seen = new Map<string, { e: number; n: number } | undefined>();

  constructor(private readonly activation: Activation) {}

  /**
   * Runs a batch of taken messages, each as its own turn in order, then commits all their state
   * changes and acknowledgements in one fenced MULTI, which also takes the next batch. A failed
   * handler rolls back only its own message's changes. Replies go out once the batch is committed.
   * Returns the next batch (undefined when there is none to run: stopping, stepped down).
   */
  async runBatch(messages: readonly MailboxMessage[], hooks: BatchHooks): Promise<Taken | undefined> {
    const activation = this.activation;
    activation.held = messages;
    activation.heldSince = Date.now();
    const turns: BatchTurn[] = [];
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
        // Abandoned meanwhile (its silo was declared dead): nothing may be written.
        if (activation.status === 'invalid') {
          drop();
          return undefined;
        }
        // Stopping: commit the turns that ran and hand back, in order, those that did not start.
        if (activation.status === 'deactivating') break;
        const turn = await this.#runMessage(message, working, decided, seen);
        if (turn.result.changes !== undefined) working = turn.result.changes.snapshot;
        hooks.ran();
        turns.push(turn);
      }
    } catch (error) {
      drop();
      throw error;
    }
    const unstarted = messages.slice(turns.length);
    if (turns.length === 0) {
      await this.#handBack(unstarted);
      return undefined;
    }
    const only = turns.length === 1 ? turns[0]?.result.changes : undefined;
    // An event-sourced grain writes its events, and a snapshot when one is due, not its state.
    const journal = activation.journal?.prepare(working);
    const changes = journal?.changes ?? only ?? GrainStateCodec.between(activation.snapshot, working);
    const last = turns[turns.length - 1];
    const commit = last?.trace === undefined ? undefined : startCommitSpan(activation, last.trace.context, changes, turns.length);
    const outbox = this.#number(turns.flatMap((turn) => turn.effects));
    const effects: CommitEffects = {
      outbox: outbox.map((e) => e.raw),
      seen: [...seen].map(([sender, mark]) => [sender, encodeSeen(mark)] as const),
    };
    let outcome: BatchOutcome;
    try {
      outcome = await new BatchCommit(activation, { changes, turns, effects, journal, take: hooks.takeCount() }).send();
    } finally {
      commit?.end();
      for (const turn of turns) endTurn(activation, turn);
      activation.held = [];
    }
    if (outcome.kind !== 'committed') {
      if (outcome.kind === 'rolledBack')
        activation.host.log.warn('Redis lost commits of this grain; reading its state again', { grain: activation.id.toString() });
      activation.stepDown(stepDownReason(outcome));
      // The messages are back in the hands of the grain's owner: tell it to take them back now
      // (after a refused acknowledgement the commit stands, and the owner finds them anyway).
      if (outcome.kind !== 'ackRefused') activation.host.wakeOwner(activation.id, true);
      return undefined;
    }
    activation.commits += 1;
    activation.snapshot = working;
    if (journal !== undefined) activation.journal?.committed(journal);
    for (const [sender, mark] of seen) this.#seen.set(sender, mark);
    // With replicas required, nothing of the batch leaves the grain before they have its commit.
    await activation.host.replicate(activation.id);
    // An `ask` answers once its batch's effects are carried out: a caller that asks, then calls a
    // grain the handler sent to, finds the handler's message there before its own.
    const carriedOut = activation.forwarder.push(outbox);
    const answer = () => {
      for (const { envelope, result } of turns) {
        if (envelope?.r !== undefined && result.reply !== undefined) activation.host.reply(envelope.r.c, result.reply);
      }
    };
    if (outbox.length === 0) answer();
    else void carriedOut.then(answer);
    if (unstarted.length > 0) {
      await this.#handBack(unstarted);
      return undefined;
    }
    return outcome.next;
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

  /** Runs one message's handler against the state as the batch left it so far. */
  async #runMessage(
    message: MailboxMessage,
    snapshot: StateSnapshot,
    decided: Map<string, string>,
    seen: Map<string, SenderMark>,
  ): Promise<BatchTurn> {
    const { id, type, host } = this.activation;
    const startedAt = Date.now();
    this.activation.lastActiveAt = startedAt;
    const envelope = asEnvelope(message.data);
    const method = envelope?.m ?? message.name;
    const trace =
      envelope === undefined
        ? undefined
        : startTurn(id, envelope, {
            siloId: host.siloId,
            epoch: this.activation.epoch,
            jobId: message.jobId,
            deliveryCount: message.attemptsStarted,
            activationLink: this.activationLink,
          });
    this.activationLink = undefined;
    if (message.attemptsStarted > 1) host.metrics.retried(id.type, method);
    let result: TurnResult;
    let effects: OutboxEffect[] = [];
    const duplicate = envelope?.o !== undefined && (await this.#seenBefore(envelope.o, seen));
    if (duplicate) {
      host.log.debug('message from a grain processed already; dropped', { grain: id.toString(), method: envelope.m });
      result = { outcome: { target: 'completed' }, changes: undefined, reply: undefined };
    } else if (message.attemptsStarted > host.maxMessageAttempts) {
      result = await deadLetter(id, host, message, envelope);
    } else if (envelope === undefined) {
      host.log.warn('refused a message that is not a redgrain envelope', { grain: id.toString(), jobId: message.jobId });
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
  async commitOutsideMessage(changes: StateChanges | undefined, parent: Context, effects: readonly OutboxEffect[]): Promise<BatchOutcome> {
    const activation = this.activation;
    // An event-sourced grain writes its events, and a snapshot when one is due, not its state.
    const journal = activation.journal?.prepare((changes ?? { snapshot: activation.snapshot }).snapshot);
    const state = journal?.changes ?? changes ?? { set: [], remove: [], snapshot: activation.snapshot };
    if (state.set.length === 0 && state.remove.length === 0 && effects.length === 0 && (journal?.events.length ?? 0) === 0)
      return { kind: 'committed', next: { messages: [], foreignTaken: false, waiting: 0 } };
    const span = startCommitSpan(activation, parent, state, 0);
    const outbox = this.#number(effects);
    try {
      const outcome = await new BatchCommit(activation, {
        changes: state,
        turns: [],
        effects: { outbox: outbox.map((e) => e.raw), seen: [] },
        journal,
      }).send();
      if (outcome.kind === 'committed') {
        activation.commits += 1;
        if (journal !== undefined) activation.journal?.committed(journal);
        await activation.host.replicate(activation.id);
        void activation.forwarder.push(outbox);
      }
      return outcome;
    } finally {
      span.end();
    }
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
    };
  }
}
