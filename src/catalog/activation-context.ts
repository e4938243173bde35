import { GrainReference, type CallOptions, type MessageSender } from '../client/grain-reference.ts';
import { CallCycleError, InvalidTimerError, ReadOnlyHandlerError, UnknownMethodError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { GrainType } from '../grain/grain-type.ts';
import type { Grain, GrainClass, GrainContext } from '../grain/grain.ts';
import { MAX_CALL_CHAIN, type MessageEnvelope } from '../messaging/envelope.ts';
import { serialize } from '../messaging/serializer.ts';
import { dueTime, type ReminderInfo, type ReminderSchedule, type ReminderTick } from '../reminders/reminder-table.ts';
import { topicSegments } from '../pubsub/topic-pattern.ts';
import type { OutboxEffect, TurnEffects } from '../outbox/outbox.ts';
import type { TurnTrace } from '../telemetry/tracing.ts';
import type { ActivationHost } from './activation-host.ts';
import { GrainTimers, type TimerSchedule } from './grain-timers.ts';

/** What the turn in progress carries that a handler can see or pass on. */
export interface TurnState {
  correlationId: string;
  trace: TurnTrace | undefined;
  reminderTick: MessageEnvelope['rt'];
  /** The grains waiting for this turn's reply (an `ask`'s chain), the first asker first; empty otherwise. */
  waiting: readonly string[];
  /**
   * Where the turn in progress records its effects on the rest of the cluster, committed with its
   * state; undefined outside a turn (in `onActivate`), where they happen at once.
   */
  effects: TurnEffects | undefined;
  /** The read-only handler the turn runs (see `readOnly`), which may change nothing; undefined otherwise. */
  readOnly: string | undefined;
  /** What a read-only handler attempted and was refused, awaited or not: it fails the turn. */
  refused: Error | undefined;
}

/** The parts of an activation its grain's context reads. */
export interface ContextOwner {
  readonly id: GrainId;
  readonly type: GrainType;
  readonly status: string;
  /** Effects committed by earlier turns and not carried out yet, oldest first. */
  unforwarded(): Iterable<OutboxEffect>;
  /** Resolves once the effects of earlier turns are carried out (or after a bounded wait). */
  forwarded(): Promise<void>;
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

  /**
   * A reference whose `send` is recorded in the turn's outbox (and enqueued once the turn has
   * committed); `ask` needs its reply within the turn, so it goes out at once.
   */
  getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G> {
    const { id } = this.host.client.getGrain(cls, key);
    const options =
      this.turn.correlationId === '' ? {} : { correlationId: this.turn.correlationId, traceContext: this.turn.trace?.context };
    return new GrainReference<G>(this.#sender, id, options);
  }

  readonly #sender: MessageSender = {
    send: (grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<void> => {
      if (this.turn.readOnly !== undefined) {
        const refused = new ReadOnlyHandlerError(this.owner.type.name, this.turn.readOnly, 'send a message');
        this.turn.refused ??= refused;
        return observed(Promise.reject(refused));
      }
      const effects = this.turn.effects;
      if (effects === undefined) return observed(this.host.client.send(grain, method, args, options));
      const prepared = this.host.client.prepareSend(grain, method, args, options);
      return effects.add(prepared.then((e): OutboxEffect[] => [{ k: 'send', g: grain.tag, e }]));
    },
    ask: (grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<unknown> => {
      // This turn waits for the reply, and so does every grain waiting for this turn's own reply.
      const waiting = [...this.turn.waiting, this.owner.id.tag].slice(-MAX_CALL_CHAIN);
      if (waiting.includes(grain.tag)) {
        const from = waiting.indexOf(grain.tag);
        return observed(Promise.reject(new CallCycleError([...waiting.slice(from), grain.tag].map(tagToName))));
      }
      return observed(this.host.client.ask(grain, method, args, options, waiting));
    },
  };

  sendTo(type: string, key: string, method: string, args: unknown[]): Promise<void> {
    const options =
      this.turn.correlationId === '' ? {} : { correlationId: this.turn.correlationId, traceContext: this.turn.trace?.context };
    return this.#sender.send(GrainId.of(type, key), method, args, options);
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
    this.#writable('set a timer');
    const { status, id } = this.owner;
    if (status !== 'activating' && status !== 'valid')
      throw new InvalidTimerError(`${id.toString()} is not active; timers are set from onActivate or a handler`);
    this.timers ??= new GrainTimers(this.onTimerDue);
    this.timers.set(name, schedule, this.#handler(method), args);
  }

  clearTimer(name: string): boolean {
    this.#writable('clear a timer');
    return this.timers?.clear(name) ?? false;
  }

  async remind(name: string, schedule: ReminderSchedule, method: string, args: unknown[]): Promise<void> {
    this.#writable('register a reminder');
    const serializedArgs = serialize(args, `the arguments of reminder "${name}"`);
    const handler = this.#handler(method);
    const effects = this.turn.effects;
    if (effects === undefined) return this.host.reminders.register(this.owner.id, name, schedule, handler, serializedArgs);
    const due = dueTime(name, schedule);
    return effects.add([{ k: 'remind', n: name, s: schedule, m: handler, a: serializedArgs, ...(due === undefined ? {} : { d: due }) }]);
  }

  async forget(name: string): Promise<boolean> {
    this.#writable('forget a reminder');
    const effects = this.turn.effects;
    if (effects === undefined) return this.host.reminders.forget(this.owner.id, name);
    const existed = this.#pending((e) => (e.k === 'remind' && e.n === name ? true : e.k === 'forget' && e.n === name ? false : undefined));
    await effects.add([{ k: 'forget', n: name }]);
    return existed ?? (await this.host.reminders.has(this.owner.id, name));
  }

  /** The grain's reminders, once the effects of its earlier turns are carried out. */
  async reminders(): Promise<ReminderInfo[]> {
    await this.owner.forwarded();
    return this.host.reminders.list(this.owner.id);
  }

  async subscribe(pattern: string, method: string): Promise<void> {
    this.#writable('subscribe');
    const handler = this.#handler(method);
    const effects = this.turn.effects;
    if (effects === undefined) return this.host.subscriptions.subscribe(this.owner.id, pattern, handler);
    this.host.subscriptions.check(pattern);
    return effects.add([{ k: 'subscribe', p: pattern, m: handler }]);
  }

  async unsubscribe(pattern: string): Promise<boolean> {
    this.#writable('unsubscribe');
    const effects = this.turn.effects;
    if (effects === undefined) return this.host.subscriptions.unsubscribe(this.owner.id, pattern);
    const existed = this.#pending((e) =>
      e.k === 'subscribe' && e.p === pattern ? true : e.k === 'unsubscribe' && e.p === pattern ? false : undefined,
    );
    await effects.add([{ k: 'unsubscribe', p: pattern }]);
    return existed ?? (await this.host.subscriptions.has(this.owner.id, pattern));
  }

  /** The grain's subscriptions, once the effects of its earlier turns are carried out. */
  async subscriptions(): Promise<{ pattern: string; method: string }[]> {
    await this.owner.forwarded();
    return this.host.subscriptions.list(this.owner.id);
  }

  /**
   * Publishes from a turn: the messages to the grains subscribed now are recorded in the outbox
   * with the payload for live listeners, and go out once the turn has committed. Resolves with the
   * number of grain messages.
   */
  async publish(topic: string, data: unknown): Promise<number> {
    this.#writable('publish');
    const options = this.turn.correlationId === '' ? {} : { correlationId: this.turn.correlationId };
    const effects = this.turn.effects;
    if (effects === undefined) return this.host.client.publish(topic, data, options);
    topicSegments(topic);
    const prepared = this.host.client.preparePublish(topic, data, options);
    await effects.add(
      prepared.then(({ payload, messages }): OutboxEffect[] => [
        ...messages.map(({ grain, envelope }): OutboxEffect => ({ k: 'send', g: grain.tag, e: envelope })),
        { k: 'topic', t: topic, p: payload },
      ]),
    );
    return (await prepared).messages.length;
  }

  /**
   * What the effects not carried out yet (this turn's, then earlier turns') say last about
   * something, as `decide` reads an effect; undefined when none speaks of it.
   */
  #pending(decide: (effect: OutboxEffect) => boolean | undefined): boolean | undefined {
    let answer: boolean | undefined;
    for (const effect of [...this.owner.unforwarded(), ...(this.turn.effects?.known() ?? [])]) answer = decide(effect) ?? answer;
    return answer;
  }

  /** Refuses a change from a read-only handler's turn. */
  #writable(attempted: string): void {
    const method = this.turn.readOnly;
    if (method !== undefined) throw new ReadOnlyHandlerError(this.owner.type.name, method, attempted);
  }

  /** Checks that `method` is one of the grain's handlers (the compiler checks typed callers). */
  #handler(method: string): string {
    if (!this.owner.type.handlers.has(method)) throw new UnknownMethodError(this.owner.type.name, method);
    return method;
  }
}

/**
 * A call a handler made, returned as it is with its rejection observed: a handler that does not
 * await it (`void ref.send(...)`) sees nothing, and its rejection must not be an unhandled one,
 * which would end the silo process and every grain on it.
 */
export function observed<T>(call: Promise<T>): Promise<T> {
  call.catch(() => undefined);
  return call;
}

/** A grain's name (`Type/key`) from its tag, for messages; the tag itself if it is not one. */
function tagToName(tag: string): string {
  try {
    return GrainId.fromTag(tag).toString();
  } catch {
    return tag;
  }
}
