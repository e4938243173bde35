import type { GrainReference } from '../client/grain-reference.ts';
import { InvalidTimerError, UnknownMethodError } from '../errors/errors.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { GrainType } from '../grain/grain-type.ts';
import type { Grain, GrainClass, GrainContext } from '../grain/grain.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import { serialize } from '../messaging/serializer.ts';
import type { ReminderInfo, ReminderSchedule, ReminderTick } from '../reminders/reminder-table.ts';
import type { TurnTrace } from '../telemetry/tracing.ts';
import type { ActivationHost } from './activation-host.ts';
import { GrainTimers, type TimerSchedule } from './grain-timers.ts';

/** What the turn in progress carries that a handler can see or pass on. */
export interface TurnState {
  correlationId: string;
  trace: TurnTrace | undefined;
  reminderTick: MessageEnvelope['rt'];
}

/** The parts of an activation its grain's context reads. */
export interface ContextOwner {
  readonly id: GrainId;
  readonly type: GrainType;
  readonly status: string;
}

/**
 * What a grain instance reaches through `this`: references to other grains (carrying on the
 * turn's correlation id and trace), timers, reminders, subscriptions and publishing. One per
 * activation, with its methods on the prototype, so an idle activation stays small.
 */
export class ActivationContext implements GrainContext {
  /** Created on the first `setTimer`: most grains never set one. */
  timers: GrainTimers | undefined;

  constructor(
    private readonly owner: ContextOwner,
    private readonly host: ActivationHost,
    readonly turn: TurnState,
    private readonly onTimerDue: () => void,
  ) {}

  get key(): string {
    return this.owner.id.key;
  }

  getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G> {
    const reference = this.host.client.getGrain(cls, key);
    if (this.turn.correlationId === '') return reference;
    return reference.with({ correlationId: this.turn.correlationId, traceContext: this.turn.trace?.context });
  }

  get correlationId(): string {
    return this.turn.correlationId;
  }

  get traceId(): string {
    return this.turn.trace?.traceId ?? '';
  }

  get reminderTick(): ReminderTick | undefined {
    const tick = this.turn.reminderTick;
    return tick === undefined ? undefined : { name: tick.n, id: tick.id, scheduledAt: new Date(tick.at) };
  }

  setTimer(name: string, schedule: TimerSchedule, method: string, args: unknown[]): void {
    const { status, id } = this.owner;
    if (status !== 'activating' && status !== 'valid')
      throw new InvalidTimerError(`${id.toString()} is not active; timers are set from onActivate or a handler`);
    this.timers ??= new GrainTimers(this.onTimerDue);
    this.timers.set(name, schedule, this.#handler(method), args);
  }

  clearTimer(name: string): boolean {
    return this.timers?.clear(name) ?? false;
  }

  async remind(name: string, schedule: ReminderSchedule, method: string, args: unknown[]): Promise<void> {
    const serializedArgs = serialize(args, `the arguments of reminder "${name}"`);
    await this.host.reminders.register(this.owner.id, name, schedule, this.#handler(method), serializedArgs);
  }

  forget(name: string): Promise<boolean> {
    return this.host.reminders.forget(this.owner.id, name);
  }

  reminders(): Promise<ReminderInfo[]> {
    return this.host.reminders.list(this.owner.id);
  }

  subscribe(pattern: string, method: string): Promise<void> {
    return this.host.subscriptions.subscribe(this.owner.id, pattern, this.#handler(method));
  }

  unsubscribe(pattern: string): Promise<boolean> {
    return this.host.subscriptions.unsubscribe(this.owner.id, pattern);
  }

  subscriptions(): Promise<{ pattern: string; method: string }[]> {
    return this.host.subscriptions.list(this.owner.id);
  }

  publish(topic: string, data: unknown): Promise<number> {
    return this.host.client.publish(topic, data, this.turn.correlationId === '' ? {} : { correlationId: this.turn.correlationId });
  }

  /** Checks that `method` is one of the grain's handlers (the compiler checks typed callers). */
  #handler(method: string): string {
    if (!this.owner.type.handlers.has(method)) throw new UnknownMethodError(this.owner.type.name, method);
    return method;
  }
}
