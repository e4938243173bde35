import { GrainReference, type CallOptions, type MessageSender } from '../client/grain-reference.ts';
import { errorToData } from '../errors/error-converter.ts';
import { ReadOnlyHandlerError, UnknownMethodError } from '../errors/errors.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { GrainType } from '../grain/grain-type.ts';
import { instantiateGrain, type Grain, type GrainClass, type GrainContext } from '../grain/grain.ts';
import type { ReplyMessage } from '../messaging/envelope.ts';
import { deserialize } from '../messaging/serializer.ts';
import type { ReminderInfo } from '../reminders/reminder-table.ts';
import { GrainStateCodec, type StateSnapshot } from '../storage/grain-state.ts';
import { observed } from './activation-context.ts';
import type { ActivationHost } from './activation-host.ts';
import { changed, serializeReturnValue } from './handler-invoker.ts';

/*
 * A read-only handler called directly (not through the mailbox): it runs on a fresh instance of
 * the grain class holding the grain's last committed state, so it never sees a turn in progress,
 * never waits for one, and cannot disturb one. Whatever it would change is refused.
 */

/** What a direct read-only call needs from the activation it reads. */
export interface ReadOnlyTarget {
  readonly id: GrainId;
  readonly type: GrainType;
  readonly host: ActivationHost;
  /** The state as last committed. */
  readonly snapshot: StateSnapshot;
}

/** Runs `method` of the grain read-only on its committed state; the reply for the caller. */
export async function callReadOnly(
  target: ReadOnlyTarget,
  request: { method: string; args: string; correlationId: string; requestId: string },
): Promise<ReplyMessage> {
  const { id, type } = target;
  const { method, requestId } = request;
  try {
    if (!type.readOnly.has(method)) throw new UnknownMethodError(type.name, method);
    const args = deserialize(request.args);
    if (!Array.isArray(args)) throw new TypeError('the arguments are not a list');
    const context = new ReaderContext(target, method, request.correlationId);
    const reader = instantiateGrain(type.cls, context);
    reader.state = GrainStateCodec.restore(target.snapshot, reader.initialState());
    const found = GrainStateCodec.diff(target.snapshot, reader.state, id.toString()).snapshot;
    const handler = (reader as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method] as (
      ...a: unknown[]
    ) => Promise<unknown>;
    const value = await handler.apply(reader, args);
    // A refused send fails the call whether or not the handler awaited it.
    if (context.refused !== undefined) throw context.refused;
    if (changed(GrainStateCodec.diff(found, reader.state, id.toString())))
      throw new ReadOnlyHandlerError(type.name, method, 'change the state');
    return { i: requestId, ok: true, v: serializeReturnValue(value, `${type.name}.${method}`, target.host.maxPayloadBytes) };
  } catch (error) {
    return { i: requestId, ok: false, e: errorToData(error) };
  }
}

/**
 * The context of a read-only call: it reads (other grains through `ask`, the grain's reminders
 * and subscriptions) and refuses everything that would change something.
 */
class ReaderContext implements GrainContext {
  readonly traceId = '';
  readonly reminderTick = undefined;

  constructor(
    private readonly target: ReadOnlyTarget,
    private readonly method: string,
    readonly correlationId: string,
  ) {}

  get key(): string {
    return this.target.id.key;
  }

  /** What the handler attempted and was refused (kept: it fails the call even unawaited). */
  refused: ReadOnlyHandlerError | undefined;

  #refuse(attempted: string): ReadOnlyHandlerError {
    const refused = new ReadOnlyHandlerError(this.target.type.name, this.method, attempted);
    this.refused ??= refused;
    return refused;
  }

  readonly #sender: MessageSender = {
    send: (): Promise<void> => observed(Promise.reject(this.#refuse('send a message'))),
    ask: (grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<unknown> =>
      observed(this.target.host.client.ask(grain, method, args, options, [this.target.id.tag])),
  };

  getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G> {
    const { id } = this.target.host.client.getGrain(cls, key);
    return new GrainReference<G>(this.#sender, id, this.correlationId === '' ? {} : { correlationId: this.correlationId });
  }

  setTimer(): void {
    throw this.#refuse('set a timer');
  }

  clearTimer(): boolean {
    throw this.#refuse('clear a timer');
  }

  remind(): Promise<void> {
    return Promise.reject(this.#refuse('register a reminder'));
  }

  forget(): Promise<boolean> {
    return Promise.reject(this.#refuse('forget a reminder'));
  }

  reminders(): Promise<ReminderInfo[]> {
    return this.target.host.reminders.list(this.target.id);
  }

  subscribe(): Promise<void> {
    return Promise.reject(this.#refuse('subscribe'));
  }

  unsubscribe(): Promise<boolean> {
    return Promise.reject(this.#refuse('unsubscribe'));
  }

  subscriptions(): Promise<{ pattern: string; method: string }[]> {
    return this.target.host.subscriptions.list(this.target.id);
  }

  publish(): Promise<number> {
    return Promise.reject(this.#refuse('publish'));
  }

  sendTo(): Promise<void> {
    return Promise.reject(this.#refuse('send a message'));
  }
}
