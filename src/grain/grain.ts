import type { MachineDefinition } from './state-machine.ts';
import type { GrainReference } from '../client/grain-reference.ts';
import type { TimerSchedule } from '../catalog/grain-timers.ts';
import type { ReminderInfo, ReminderSchedule, ReminderTick } from '../reminders/reminder-table.ts';
import type { ImplicitSubscription } from '../pubsub/subscription-table.ts';

/** What the runtime hands a grain instance at construction. */
export interface GrainContext {
  readonly key: string;
  getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G>;
  /** The correlation id of the message being handled (empty outside a turn). */
  readonly correlationId: string;
  /** The trace id of the turn's span (empty outside a turn, or when tracing is off). */
  readonly traceId: string;
  setTimer(name: string, schedule: TimerSchedule, method: string, args: unknown[]): void;
  clearTimer(name: string): boolean;
  /** The reminder tick being handled, if the message is one. */
  readonly reminderTick: ReminderTick | undefined;
  remind(name: string, schedule: ReminderSchedule, method: string, args: unknown[]): Promise<void>;
  forget(name: string): Promise<boolean>;
  reminders(): Promise<ReminderInfo[]>;
  subscribe(pattern: string, method: string): Promise<void>;
  unsubscribe(pattern: string): Promise<boolean>;
  subscriptions(): Promise<{ pattern: string; method: string }[]>;
  publish(topic: string, data: unknown): Promise<number>;
  /** Sends to a grain known by type and key only (a saga's reply), through the turn's outbox. */
  sendTo(type: string, key: string, method: string, args: unknown[]): Promise<void>;
}

let constructing: GrainContext | undefined;
const contexts = new WeakMap<object, GrainContext>();

/** The context of a grain instance, for the runtime's own helpers (sagas). */
export function contextOf(grain: object): GrainContext {
  const context = contexts.get(grain);
  if (context === undefined) throw new TypeError('not a grain created by a silo');
  return context;
}

/** Creates a grain instance bound to its context. Only the runtime calls this. */
export function instantiateGrain<G extends Grain<object>>(cls: GrainClass<G>, context: GrainContext): G {
  constructing = context;
  try {
    return new cls();
  } finally {
    constructing = undefined;
  }
}

/**
 * The base class of every grain: a virtual actor with an identity (type + key), persisted state,
 * and handlers (its public async methods) that run one at a time.
 *
 * ```ts
 * export class Counter extends Grain<{ count: number }> {
 *   static readonly type = 'Counter';
 *   initialState() { return { count: 0 }; }
 *   async add(by: number) { this.state.count += by; return this.state.count; }
 * }
 * ```
 *
 * State changes a handler makes are committed to Redis atomically with the acknowledgement of its
 * message; a handler that throws leaves the state exactly as it was before the message.
 */
export abstract class Grain<S extends object = Record<string, never>> {
  /** The grain's key: with its type, its whole identity. */
  readonly key: string;
  /** The grain's state, loaded at activation and committed after every successful turn. */
  state: S;
  readonly #context: GrainContext;

  constructor() {
    const context = constructing;
    if (context === undefined) {
      throw new TypeError('Grains are created by a silo; call client.getGrain(Type, key) to reach one');
    }
    this.#context = context;
    contexts.set(this, context);
    this.key = context.key;
    this.state = {} as S;
  }

  /** The state of a grain that has never been persisted. Override to give defaults. */
  initialState(): S {
    return {} as S;
  }

  /** Runs after the state is loaded and before the first message of an activation. */
  onActivate(): Promise<void> | void {}

  /** Runs before an activation is collected or its silo stops; state changes made here are persisted. */
  onDeactivate(): Promise<void> | void {}

  /** A reference to another grain, for `send` / `ask` from inside a handler. */
  protected getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G> {
    return this.#context.getGrain(cls, key);
  }

  /** The correlation id of the message being handled; messages sent from the handler carry it on. */
  protected get correlationId(): string {
    return this.#context.correlationId;
  }

  /**
   * The OpenTelemetry trace id of the message being handled: empty outside a turn and when no
   * tracer provider is registered. The turn's span is also the active span during the handler.
   */
  protected get traceId(): string {
    return this.#context.traceId;
  }

  /**
   * Starts a volatile timer (replacing one of the same name): after `after` ms, or every `every`
   * ms, `method(...args)` runs as a turn of its own, never interleaved with a handler, and its
   * state changes are committed like a message's. Ticks do not keep the grain from idle
   * collection unless `keepAlive: true`; timers stop when the activation ends and are not
   * durable (see `remind` for that). Call it from `onActivate` or a handler.
   *
   * `this.setTimer('flush', { every: 5_000 }, 'flush')`: the method name and its arguments are
   * type-checked like `send`.
   */
  protected setTimer<M extends string, A extends unknown[]>(
    this: HandlerHolder<M, A>,
    name: string,
    schedule: TimerSchedule,
    method: M,
    ...args: A
  ): void {
    (this as unknown as Grain<object>).#context.setTimer(name, schedule, method, args);
  }

  /** Stops a timer; returns whether there was one. */
  protected clearTimer(name: string): boolean {
    return this.#context.clearTimer(name);
  }

  /**
   * Registers (or replaces) a durable reminder: `{ at }`, `{ after }`, `{ every }` or `{ cron }`,
   * with an optional missed-tick policy. It is stored in Redis, survives deactivation and silo
   * restarts, and when due delivers `method(...args)` through the grain's mailbox, activating the
   * grain wherever placement puts it. Each tick is delivered at least once and carries a tick id
   * (`this.reminderTick.id`) for deduplication. Resolves once the reminder is stored.
   */
  protected remind<M extends string, A extends unknown[]>(
    this: HandlerHolder<M, A>,
    name: string,
    schedule: ReminderSchedule,
    method: M,
    ...args: A
  ): Promise<void> {
    return (this as unknown as Grain<object>).#context.remind(name, schedule, method, args);
  }

  /** Removes a reminder; resolves with whether there was one. */
  protected forget(name: string): Promise<boolean> {
    return this.#context.forget(name);
  }

  /** The reminders this grain has registered. */
  protected reminders(): Promise<ReminderInfo[]> {
    return this.#context.reminders();
  }

  /**
   * Subscribes this grain to a topic pattern, durably: every publish on a matching topic puts
   * `method(topic, data)` into this grain's mailbox (activating it on demand), across deactivation
   * and restarts, until `unsubscribe`. `?` matches one segment, `*` zero or more.
   */
  protected subscribe<M extends string>(this: TopicHandlerHolder<M>, pattern: string, method: M): Promise<void> {
    return (this as unknown as Grain<object>).#context.subscribe(pattern, method);
  }

  /**
   * Publishes on a topic from inside a handler, carrying on the message's correlation id and
   * trace; resolves with the number of grain messages enqueued (see `GrainClient.publish`).
   */
  protected publish(topic: string, data: unknown): Promise<number> {
    return this.#context.publish(topic, data);
  }

  /** Ends a subscription; resolves with whether there was one. */
  protected unsubscribe(pattern: string): Promise<boolean> {
    return this.#context.unsubscribe(pattern);
  }

  /** This grain's durable subscriptions. */
  protected subscriptions(): Promise<{ pattern: string; method: string }[]> {
    return this.#context.subscriptions();
  }

  /** The reminder tick being handled (`name`, `id`, `scheduledAt`), or undefined for other messages. */
  protected get reminderTick(): ReminderTick | undefined {
    return this.#context.reminderTick;
  }
}

/**
 * A concrete grain class: constructible by the runtime, with a stable type name and optionally its
 * own idle collection age.
 */
export type GrainClass<G extends Grain<object> = Grain<object>> = (new () => G) & {
  readonly type: string;
  readonly collectionAgeMs?: number;
  readonly mailbox?: MailboxLimits;
  readonly implicitSubscriptions?: readonly ImplicitSubscription[];
  /** Error classes the grain's handlers throw: `ask` callers get them back as these classes. */
  readonly errors?: readonly ErrorClass[];
  /** The state machine that routes the grain's messages (see StateMachineGrain). */
  readonly machine?: MachineDefinition;
  /** Handlers that only read (see `readOnly`): they run beside the grain's turns and change nothing. */
  readonly readOnly?: readonly string[];
};

/**
 * Declares the read-only handlers of grain class `G`, checked by the compiler (each is a handler
 * of `G`): `static readonly readOnly = readOnly<Operator>('status')`. A read-only handler reads
 * the grain's last committed state: an `ask` of it from outside the cluster is answered by the
 * grain's activation at once, beside the turn in progress and other read-only calls, instead of
 * waiting behind the messages queued in the mailbox. It cannot change the state or make an
 * effect; trying fails the call with ReadOnlyHandlerError and changes nothing.
 */
export function readOnly<G>(...handlers: HandlerName<G>[]): readonly HandlerName<G>[] {
  return handlers;
}

/** A class of errors (extending Error) whose instances `ask` rebuilds as themselves. */
export type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * A bound on a grain type's mailboxes: `static readonly mailbox = { maxDepth: 1_000 }`. When a
 * mailbox holds `maxDepth` waiting messages, `overflow` decides: `reject` (default) refuses the
 * new message with MailboxFullError; `drop-oldest` enqueues it and moves the oldest waiting
 * message to the dead letters (its `ask` caller gets MailboxFullError).
 */
export interface MailboxLimits {
  readonly maxDepth: number;
  readonly overflow?: 'reject' | 'drop-oldest';
}

type BaseMember = keyof Grain<object>;

/** The names of a grain's handlers: its public methods returning a promise, minus the lifecycle hooks. */
export type HandlerName<G> = {
  [K in keyof G]-?: K extends BaseMember
    ? never
    : K extends string
      ? G[K] extends (...args: never[]) => Promise<unknown>
        ? K
        : never
      : never;
}[keyof G];

export type HandlerArgs<G, M extends HandlerName<G>> = G[M] extends (...args: infer A) => Promise<unknown> ? A : never;

export type HandlerResult<G, M extends HandlerName<G>> = G[M] extends (...args: never[]) => Promise<infer R> ? R : never;

/**
 * A grain seen from inside (`this`) that has handler `M` taking `A`: how `setTimer` and `remind`
 * type-check a method name and its arguments against the calling grain.
 */
export type HandlerHolder<M extends string, A extends unknown[]> = { [P in M]: (...args: A) => Promise<unknown> };

/** A grain with handler `M` taking a published message: `(topic: string, data) => Promise<...>`. */
export type TopicHandlerHolder<M extends string> = { [P in M]: (topic: string, data: never) => Promise<unknown> };

/** The state type of a grain class. */
export type StateOf<G> = G extends Grain<infer S> ? S : never;
