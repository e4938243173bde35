import { InvalidGrainClassError } from '../errors/errors.ts';
import { serialize } from '../messaging/serializer.ts';
import { topicSegments } from '../pubsub/topic-pattern.ts';
import { GrainStateCodec, type StateChanges, type StateSnapshot } from '../storage/grain-state.ts';
import { Grain, type GrainClass } from './grain.ts';

/** Which events an event-sourced grain keeps in its journal once a snapshot covers them. */
export type JournalRetention = 'all' | 'snapshot';

/** A range of an event-sourced grain's journal, by sequence number (both ends included). */
export interface EventRange {
  /** The first sequence number to read (default 1, the first event). */
  from?: number;
  /** The last sequence number to read (default: the last event). */
  to?: number;
  /** At most this many events (default 1,000); read on from the last `seq` + 1. */
  limit?: number;
}

/** One event of a grain's journal, upcast to the class's current event version. */
export interface JournalEvent<E extends { type: string } = { type: string }> {
  /** Its place in the grain's journal: 1, 2, 3, ... with no gap. */
  seq: number;
  type: E['type'];
  event: E;
  /** The event version it was stored with (the class's `eventVersion` when it was raised). */
  version: number;
  /** When it was raised. */
  at: Date;
  /** The correlation id of the message whose handler raised it. */
  correlationId: string;
}

/** What an event-sourced grain with an `eventTopic` publishes for each event it commits. */
export interface PublishedEvent<E extends { type: string } = { type: string }> extends JournalEvent<E> {
  grainType: string;
  key: string;
}

/** The event type of an event-sourced grain class (or instance). */
export type EventOf<G> = G extends EventSourcedGrain<object, infer E> ? E : never;

/** The part of a raised event the commit writes: version, serialized event, correlation id, time. */
export type RecordedEvent = readonly [version: number, event: string, correlationId: string, at: number];

/** What the runtime knows of an event-sourced class (validated when the type is registered). */
export interface EventSourcing {
  readonly snapshotEvery: number;
  readonly retention: JournalRetention;
  readonly eventVersion: number;
  readonly snapshotVersion: number;
  readonly topic: string | undefined;
  readonly upcast: (event: unknown, version: number) => { type: string };
}

/** Hash fields of an event-sourced grain's state that are not state: the snapshot's place and version. */
export const SNAPSHOT_SEQ_FIELD = '~seq';
export const SNAPSHOT_VERSION_FIELD = '~v';

/**
 * A grain whose state is a pure fold of its events: handlers call `this.raise(event)`, which
 * applies the event at once (`apply(state, event)`, so the handler sees the new state) and records
 * it for the turn. The events of a turn are appended to the grain's journal (a Redis Stream under
 * the grain's hash tag) in the same atomic commit as the message's acknowledgement; a handler that
 * throws raises nothing. The state is not written with every turn: a snapshot is, every
 * `snapshotEvery` events, in the same commit, and an activation loads the latest snapshot and
 * replays only the events after it.
 *
 * ```ts
 * type Event = { type: 'Deposited'; amount: number } | { type: 'Withdrawn'; amount: number };
 * export class Account extends EventSourcedGrain<{ balance: number }, Event> {
 *   static readonly type = 'Account';
 *   initialState() { return { balance: 0 }; }
 *   apply(state: { balance: number }, event: Event) {
 *     return { balance: state.balance + (event.type === 'Deposited' ? event.amount : -event.amount) };
 *   }
 *   async deposit(amount: number) { this.raise({ type: 'Deposited', amount }); return this.state.balance; }
 * }
 * ```
 *
 * Change the state only through `raise`: what a handler writes to `this.state` directly is not in
 * the journal, so a replay would not rebuild it.
 */
export abstract class EventSourcedGrain<TState extends object, TEvent extends { type: string }> extends Grain<TState> {
  /** A snapshot of the state is written once this many events were committed since the last one (`Infinity`: never). */
  static readonly snapshotEvery: number = 100;
  /** `'all'` keeps every event; `'snapshot'` trims the events a snapshot covers but its last one, in the same commit. */
  static readonly journalRetention: JournalRetention = 'all';
  /** The version events are raised with now; older ones go through `upcast` when read. */
  static readonly eventVersion: number = 1;
  /**
   * The shape of the state in snapshots: bump it when the state's shape changes, and a snapshot
   * written with another version is not loaded (the journal is replayed from its first event).
   */
  static readonly snapshotVersion: number = 1;
  /** When set, each committed event is published on `<eventTopic>.<event.type>`, through the outbox. */
  static readonly eventTopic: string | undefined = undefined;

  /**
   * Turns an event stored with `version` (not the current `eventVersion`) into the current shape.
   * The default returns it unchanged.
   */
  static upcast(event: unknown, _version: number): { type: string } {
    return event as { type: string };
  }

  /** The state after `event`: a pure function of the two (no I/O, no clock, no randomness). */
  abstract apply(state: TState, event: TEvent): TState;

  /**
   * Raises an event: applies it to the state at once and records it, to be appended to the
   * journal with the turn's commit (or dropped, if the handler throws). Call it from a handler, a
   * timer tick or `onDeactivate`.
   */
  protected raise(event: TEvent): void {
    const recorder = recorders.get(this);
    if (recorder === undefined || !recorder.recording) {
      throw new TypeError(`${describeGrain(this)}: raise() is called from a handler, a timer tick or onDeactivate`);
    }
    recorder.raise(this, event, this.correlationId, (topic, data) => this.publish(topic, data));
  }

  /**
   * Reads this grain's journal (committed events; the events of the turns in the batch being
   * processed are not committed yet), upcast to the current event version.
   */
  protected events(range: EventRange = {}): Promise<JournalEvent<TEvent>[]> {
    const recorder = recorders.get(this);
    if (recorder === undefined) return Promise.reject(new TypeError(`${describeGrain(this)} is not active`));
    return recorder.read(range) as Promise<JournalEvent<TEvent>[]>;
  }

  /** The sequence number of the last event applied to the state (0 before the first). */
  protected get lastEventSeq(): number {
    return recorders.get(this)?.lastSeq ?? 0;
  }
}

function describeGrain(grain: object): string {
  const type = (grain.constructor as { type?: unknown }).type;
  return `${typeof type === 'string' ? type : grain.constructor.name}/${(grain as { key?: string }).key ?? '?'}`;
}

/** A grain class extending EventSourcedGrain. */
export type EventSourcedClass<G extends EventSourcedGrain<object, { type: string }> = EventSourcedGrain<object, { type: string }>> =
  GrainClass<G> & {
    readonly snapshotEvery?: number;
    readonly journalRetention?: JournalRetention;
    readonly eventVersion?: number;
    readonly snapshotVersion?: number;
    readonly eventTopic?: string | undefined;
    upcast?(event: unknown, version: number): { type: string };
  };

/** Whether `cls` is an event-sourced grain class. */
export function isEventSourced(cls: unknown): cls is EventSourcedClass {
  return typeof cls === 'function' && cls.prototype instanceof EventSourcedGrain;
}

/** Reads and checks an event-sourced class's settings (undefined for other grain classes). */
export function eventSourcingOf(typeName: string, cls: GrainClass): EventSourcing | undefined {
  if (!isEventSourced(cls)) return undefined;
  const fail = (why: string): never => {
    throw new InvalidGrainClassError(`${typeName}.${why}`);
  };
  const { snapshotEvery = 100, journalRetention = 'all', eventVersion = 1, snapshotVersion = 1, eventTopic } = cls;
  if (!(snapshotEvery === Infinity || (Number.isSafeInteger(snapshotEvery) && snapshotEvery > 0)))
    fail(`snapshotEvery must be a positive whole number of events, or Infinity, got ${String(snapshotEvery)}`);
  if (journalRetention !== 'all' && journalRetention !== 'snapshot')
    fail(`journalRetention must be 'all' or 'snapshot', got ${JSON.stringify(journalRetention)}`);
  if (!Number.isSafeInteger(eventVersion) || eventVersion < 1)
    fail(`eventVersion must be a positive whole number, got ${String(eventVersion)}`);
  if (!Number.isSafeInteger(snapshotVersion) || snapshotVersion < 1)
    fail(`snapshotVersion must be a positive whole number, got ${String(snapshotVersion)}`);
  if (eventTopic !== undefined) {
    try {
      if (typeof eventTopic !== 'string') throw new TypeError('not a string');
      topicSegments(eventTopic);
    } catch (error) {
      fail(`eventTopic ${JSON.stringify(eventTopic)} is not a topic (${error instanceof Error ? error.message : String(error)})`);
    }
  }
  if (typeof cls.prototype.apply !== 'function') fail('apply(state, event) must be a method');
  const upcast = typeof cls.upcast === 'function' ? cls.upcast.bind(cls) : (event: unknown) => event as { type: string };
  return { snapshotEvery, retention: journalRetention, eventVersion, snapshotVersion, topic: eventTopic, upcast };
}

const recorders = new WeakMap<object, EventRecorder>();

/** The recorder of an active event-sourced grain, for the runtime (undefined for other grains). */
export function eventRecorderOf(grain: object): EventRecorder | undefined {
  return recorders.get(grain);
}

/**
 * What an activation of an event-sourced grain knows of its journal and snapshot, and the events
 * its turns raised that are not committed yet. One per activation; the runtime drives it.
 */
export class EventRecorder {
  /** The last event committed to the journal. */
  committedSeq = 0;
  /** The event the snapshot in the state hash covers up to (0: none). */
  snapshotSeq = 0;
  /** The state fields as the hash holds them (the snapshot), to write the next one as a diff. */
  snapshotFields: StateSnapshot = new Map();
  /** The stored snapshot could not be used: write a new one with the next commit. */
  snapshotStale = false;
  /** Events raised by the turns of the batch in progress, not committed yet. */
  readonly pending: RecordedEvent[] = [];
  #turnStart = -1;
  #publishes: Promise<unknown>[] = [];

  constructor(
    readonly typeName: string,
    readonly config: EventSourcing,
    readonly read: (range: EventRange) => Promise<JournalEvent[]>,
  ) {}

  /** Binds the recorder to the grain instance it records for. */
  attach(grain: object): void {
    recorders.set(grain, this);
  }

  get recording(): boolean {
    return this.#turnStart >= 0;
  }

  /** The sequence number of the last event applied to the state. */
  get lastSeq(): number {
    return this.committedSeq + this.pending.length;
  }

  beginTurn(): void {
    this.#turnStart = this.pending.length;
    this.#publishes = [];
  }

  /** Resolves once the turn's publishes are recorded in its outbox; rejects when one was refused. */
  async settle(): Promise<void> {
    const publishes = this.#publishes;
    this.#publishes = [];
    await Promise.all(publishes);
  }

  /** Ends the turn: a failed one's events are dropped. */
  endTurn(ok: boolean): void {
    if (!ok && this.#turnStart >= 0) this.pending.length = this.#turnStart;
    this.#turnStart = -1;
    this.#publishes = [];
  }

  raise(
    grain: EventSourcedGrain<object, { type: string }>,
    event: { type: string },
    correlationId: string,
    publish: (topic: string, data: unknown) => Promise<number>,
  ): void {
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string' || event.type.length === 0) {
      throw new TypeError(`${this.typeName}: an event is an object with a non-empty string \`type\``);
    }
    const text = serialize(event, `event ${event.type} of ${this.typeName}`);
    const topic = this.config.topic === undefined ? undefined : `${this.config.topic}.${event.type}`;
    if (topic !== undefined) topicSegments(topic);
    grain.state = grain.apply(grain.state, event);
    const at = Date.now();
    const seq = this.lastSeq + 1;
    this.pending.push([this.config.eventVersion, text, correlationId, at]);
    if (topic !== undefined) {
      const data: PublishedEvent = {
        grainType: this.typeName,
        key: (grain as { key: string }).key,
        seq,
        type: event.type,
        event,
        version: this.config.eventVersion,
        at: new Date(at),
        correlationId,
      };
      const published = publish(topic, data);
      published.catch(() => undefined);
      this.#publishes.push(published);
    }
  }

  /**
   * What the next commit writes: the batch's events, and, when one is due, a snapshot of
   * `working` (the state's fields after the batch) as the changes to the state hash.
   */
  prepare(working: StateSnapshot): PreparedJournal {
    const lastSeq = this.lastSeq;
    const due = this.snapshotStale || lastSeq - this.snapshotSeq >= this.config.snapshotEvery;
    const changes: StateChanges = due ? GrainStateCodec.between(this.snapshotFields, working) : { set: [], remove: [], snapshot: working };
    if (due) {
      changes.set.push(
        [SNAPSHOT_SEQ_FIELD, serialize(lastSeq, 'the snapshot sequence number')],
        [SNAPSHOT_VERSION_FIELD, serialize(this.config.snapshotVersion, 'the snapshot version')],
      );
    }
    return {
      prev: this.committedSeq,
      events: [...this.pending],
      snapshot: due ? { seq: lastSeq, fields: working } : undefined,
      // The last event stays: the journal then always shows where it ends, which the commit checks.
      trimBelow: due && this.config.retention === 'snapshot' ? lastSeq : 0,
      changes,
    };
  }

  /** The commit of `prepared` landed. */
  committed(prepared: PreparedJournal): void {
    this.pending.splice(0, prepared.events.length);
    this.committedSeq = prepared.prev + prepared.events.length;
    if (prepared.snapshot !== undefined) {
      this.snapshotSeq = prepared.snapshot.seq;
      this.snapshotFields = prepared.snapshot.fields;
      this.snapshotStale = false;
    }
  }
}

/** A batch's journal writes, ready to commit. */
export interface PreparedJournal {
  /** The last event committed before this batch. */
  prev: number;
  events: readonly RecordedEvent[];
  /** The snapshot to write with it, when one is due: the state's fields after the batch. */
  snapshot: { seq: number; fields: StateSnapshot } | undefined;
  /** Trim the journal's events below this sequence number (0: keep them). */
  trimBelow: number;
  /** What the commit writes to the state hash: the snapshot, or nothing. */
  changes: StateChanges;
}
