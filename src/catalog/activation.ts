import { context as otelContext } from '@opentelemetry/api';
import { describeError } from '../errors/errors.ts';
import type { EventRecorder } from '../grain/event-sourced.ts';
import type { CarriedMessage } from '../directory/wake-entry.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { GrainType } from '../grain/grain-type.ts';
import { instantiateGrain, type Grain, type GrainContext } from '../grain/grain.ts';
import { GrainMailbox, type MailboxMessage } from '../mailbox/grain-mailbox.ts';
import { PACK_PROGRESS_FIELD, readPackProgress, type PackProgress } from '../messaging/message-pack.ts';
import { OutboxForwarder } from '../outbox/outbox-forwarder.ts';
import { TurnEffects, type OutboxEffect } from '../outbox/outbox.ts';
import { JournalReadFailure } from '../storage/event-journal.ts';
import { GrainStateCodec, type StateSnapshot } from '../storage/grain-state.ts';
import { Attr, SpanNames } from '../telemetry/semantics.ts';
import { contextWith, markFailed, startGrainSpan } from '../telemetry/tracing.ts';
import { ActivationContext } from './activation-context.ts';
import type { ActivationHost } from './activation-host.ts';
import { stepDownReason } from './batch-commit.ts';
import { loadEventSourced, newEventRecorder } from './event-replay.ts';
import type { GrainTimers } from './grain-timers.ts';
import { MessageLoop } from './message-loop.ts';
import type { ReadOnlyTarget } from './read-only-call.ts';
import { TurnRunner } from './turn-runner.ts';

/** A failure of the grain's own code or data while activating (not of Redis). */
export class GrainActivationError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original), { cause: original });
    this.name = original instanceof Error ? original.name : 'Error';
  }
}

/**
 * Lifecycle of one activation, as in Orleans: `valid` takes and runs messages; `deactivating`
 * finishes the turn in progress and takes nothing more; `invalid` is over (deactivated, stepped
 * down or abandoned) and writes nothing.
 */
export type ActivationStatus = 'creating' | 'activating' | 'valid' | 'deactivating' | 'invalid';

/** Why an activation ended. */
export type DeactivationReason = 'idle' | 'silo stopping' | 'stepped down';

/**
 * One live instance of a grain on this silo, and its lifecycle: activation (state read, the
 * grain constructed, `onActivate`), deactivation (`onDeactivate`, its commit, the outbox carried
 * out, the directory entry released) and stepping down. Its message loop takes the grain's
 * messages; its turn runner runs and commits them, fenced by the activation's epoch.
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
  /** The grain instance, while valid. */
  grain: Grain<object> | undefined;
  /** The state as last committed. */
  snapshot: StateSnapshot = new Map();
  /** An event-sourced grain's journal and snapshot, and the events of the batch in progress. */
  journal: EventRecorder | undefined;
  /** How far a pack run one message per commit has got (see TurnRunner), as last committed. */
  packProgress: PackProgress | undefined;
  /** Carries out the effects of committed turns. */
  readonly forwarder: OutboxForwarder;
  readonly #runner: TurnRunner;
  readonly #loop: MessageLoop;
  readonly #context: ActivationContext;
  /** Outbox entries an earlier activation left, read with the state. */
  #leftover: string[] = [];
  #deactivation: Promise<void> | undefined;
  /** The state read (and the mailbox's event cap) sent right behind the claim; see `prefetch`. */
  #prefetched: Promise<[Record<string, string>, void, string[]]> | undefined;

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
    this.#runner = new TurnRunner(this);
    this.#loop = new MessageLoop(this, this.#runner);
    this.#context = new ActivationContext(this, host, this.#runner.turnState, () => this.#loop.tickDue());
    this.forwarder = new OutboxForwarder(id, host);
  }

  /** The grain's timers, once it has set one. */
  get timers(): GrainTimers | undefined {
    return this.#context.timers;
  }

  /** Effects committed by this grain's turns and not carried out yet, oldest first. */
  unforwarded(): Iterable<OutboxEffect> {
    return this.forwarder.pending();
  }

  async forwarded(): Promise<void> {
    await this.forwarder.flush(this.host.lockDurationMs);
  }

  /** Whether committed effects wait to be carried out (the grain is not idle then). */
  get forwarding(): boolean {
    return this.forwarder.size > 0;
  }

  /** Messages that were still waiting after the last take (free: no Redis read). */
  get waitingHint(): number {
    return this.#loop.waitingHint;
  }

  get draining(): boolean {
    return this.#loop.draining;
  }

  /**
   * There may be messages: drain the mailbox unless already draining. `carried`: the message the
   * wake-up carried (see `MessageLoop.wake`).
   */
  wake(recover = false, carried?: CarriedMessage): void {
    this.#loop.wake(recover, carried);
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
      this.#runner.activationLink = span.spanContext();
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
    this.forwarder.load(this.#leftover);
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
    // A pack's progress is the runtime's, not the grain's state.
    this.packProgress = readPackProgress(fields[PACK_PROGRESS_FIELD]);
    delete fields[PACK_PROGRESS_FIELD];
    // From here a failure is the grain's own (its constructor, its state, its onActivate): it
    // counts towards suspension. Redis failures before this point are retried without limit.
    try {
      const grain = instantiateGrain(this.type.cls, context);
      const eventSourcing = this.type.eventSourcing;
      if (eventSourcing === undefined) {
        const loaded = GrainStateCodec.fromFields(fields, grain.initialState());
        grain.state = loaded.state;
        this.snapshot = loaded.snapshot;
      } else {
        this.journal = newEventRecorder(this.id, eventSourcing, host);
        this.snapshot = await loadEventSourced(this.id, grain, this.journal, fields, host);
      }
      this.grain = grain;
      await otelContext.with(contextWith(activationSpan), () => grain.onActivate());
    } catch (error) {
      // Redis failing while the journal is read is retried like any Redis failure.
      if (error instanceof JournalReadFailure) throw error.original;
      throw new GrainActivationError(error);
    }
  }

  /** What a direct read-only call reads (the committed state), while this activation is valid. */
  readOnlyTarget(): ReadOnlyTarget | undefined {
    if (this.status !== 'valid' || this.grain === undefined) return undefined;
    return { id: this.id, type: this.type, host: this.host, snapshot: this.snapshot };
  }

  /**
   * A commit whose replies went out with it (published by the commit itself) and whose outcome
   * this activation has not read yet: a caller may already have its answer, so a direct read must
   * wait for `snapshot` to include it (see `landed`).
   */
  unreadCommit: Promise<void> | undefined;

  /** Resolves once `snapshot` includes every commit a caller may have heard of. */
  async landed(): Promise<void> {
    while (this.unreadCommit !== undefined) await this.unreadCommit;
  }

  /**
   * Ends the activation: finishes the turn in progress, runs `onDeactivate`, commits its state
   * changes and releases the directory entry. Messages still queued stay in the mailbox.
   */
  deactivate(reason: DeactivationReason): Promise<void> {
    if (this.#deactivation === undefined && this.status === 'valid') this.#deactivation = this.#deactivate(reason);
    return this.#deactivation ?? Promise.resolve();
  }

  async #deactivate(reason: DeactivationReason): Promise<void> {
    this.status = 'deactivating';
    await this.#loop.settled();
    const grain = this.grain;
    const span = startGrainSpan(SpanNames.deactivate(this.id.type), this.id, this.host.siloId, undefined, {
      [Attr.epoch]: this.epoch,
      [Attr.deactivationReason]: reason,
    });
    const spanContext = contextWith(span);
    try {
      if (grain !== undefined) {
        const effects = new TurnEffects();
        const turn = this.#runner.turnState;
        turn.effects = effects;
        let ok = false;
        this.journal?.beginTurn();
        try {
          await otelContext.with(spanContext, () => grain.onDeactivate());
          await this.journal?.settle();
          ok = true;
        } finally {
          turn.effects = undefined;
          this.journal?.endTurn(ok);
        }
        const changes = GrainStateCodec.diff(this.snapshot, grain.state, this.id.toString());
        const commit = await this.#runner.commitOutsideMessage(changes, spanContext, await effects.settle());
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
    if (!(await this.forwarder.flush(this.host.lockDurationMs))) {
      this.host.log.warn('deactivating with effects not carried out yet; they stay in the outbox', {
        grain: this.id.toString(),
        effects: this.forwarder.size,
      });
    }
    this.forwarder.stop();
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

  /** Drops the activation without writing anything (its silo was declared dead). */
  abandon(): void {
    this.forwarder.stop();
    this.#context.timers?.clearAll();
    this.#loop.stop();
    this.status = 'invalid';
    this.grain = undefined;
  }

  /** This activation can no longer commit: drop it without writing anything. */
  stepDown(reason: string, error?: unknown): void {
    if (this.status === 'invalid') return;
    this.host.log.warn('activation stepped down', {
      grain: this.id.toString(),
      epoch: this.epoch,
      reason,
      ...(error === undefined ? {} : { error: describeError(error) }),
    });
    this.#end('stepped down');
  }

  #end(reason: DeactivationReason): void {
    this.#context.timers?.clearAll();
    // A stepped-down activation's effects are the next owner's to carry out (it reads the outbox).
    if (reason === 'stepped down') this.forwarder.stop();
    this.#loop.stop();
    if (this.status === 'invalid') return;
    this.status = 'invalid';
    this.grain = undefined;
    this.host.metrics.deactivated(this.id.type, reason);
    this.host.ended(this);
  }
}
