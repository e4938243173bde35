import { waitForReplicas } from '../redis/commands.ts';
import { randomUUID } from 'node:crypto';
import { Queue, type RedisQueueBackend } from 'bullmq';
import { Cluster } from 'ioredis';
import { addAllInTransaction, addJobThen } from '../mailbox/bullmq-adapter.ts';
import { jobMessages, packBytes, packJobName, toPack } from '../messaging/message-pack.ts';
import { MessagePacker, NotSentBehindError, type PackLimits, type PackSending } from './message-packer.ts';
import type { RedisClient } from '../redis/connection.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import type { GrainLocator } from '../directory/grain-locator.ts';
import {
  AskTimeoutError,
  ClosedError,
  describeError,
  GrainTypeNotRegisteredError,
  InvalidGrainClassError,
  InvalidOptionError,
  MailboxFullError,
  PayloadTooLargeError,
  RedgrainError,
  RedisUnavailableError,
  UnknownMethodError,
} from '../errors/errors.ts';
import { waitReadyWithin } from '../redis/runtime.ts';
import { GrainId } from '../grain/grain-id.ts';
import { grainTypeName, handlerNames, mailboxLimits, readOnlyHandlers } from '../grain/grain-type.ts';
import type { Grain, GrainClass, MailboxLimits } from '../grain/grain.ts';
import type { MembershipTable } from '../membership/membership-table.ts';
import type { DeadLetter, DeadLetterStore } from '../mailbox/dead-letters.ts';
import {
  asEnvelope,
  isCorrelationId,
  isIdempotencyKey,
  isMethodName,
  MAX_CORRELATION_ID_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  newCorrelationId,
  preview,
  type MessageEnvelope,
  type ReplyMessage,
} from '../messaging/envelope.ts';
import { errorToData, type ErrorClassRegistry } from '../errors/error-converter.ts';
import { MAX_TIMER_MS } from '../config/options-schema.ts';
import { deserialize, serialize } from '../messaging/serializer.ts';
import { matchSegments, patternSegments, topicSegments } from '../pubsub/topic-pattern.ts';
import type { SubscriptionTable } from '../pubsub/subscription-table.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { eventSourcingOf, type EventOf, type EventRange, type EventSourcedGrain, type JournalEvent } from '../grain/event-sourced.ts';
import { readJournal } from '../storage/event-journal.ts';
import { NOT_SERVED_CODE, type ReadOnlyQuery } from '../messaging/read-only-query.ts';
import { publishTo } from '../redis/channels.ts';
import { GrainReference, type CallOptions, type MessageSender } from './grain-reference.ts';
import { ReplyListener } from './reply-listener.ts';
import { CallOrder, type Place } from './call-order.ts';
import { callerContext, correlationFromContext, endCall, startCall, type CallTrace } from '../telemetry/tracing.ts';

/** A call being made: what its envelope carries besides the message. */
interface Call {
  correlationId: string;
  idempotencyKey: string | undefined;
  trace: CallTrace;
}

/** What a handler's `publish` records: the payload for live listeners, a message per subscribed grain. */
export interface PreparedPublish {
  payload: string;
  messages: { grain: GrainId; envelope: MessageEnvelope }[];
}

/** How long a direct read-only call waits for the owner's answer before it goes through the mailbox. */
const DIRECT_READ_WAIT_MS = 1_000;
/** Grains with read-only handlers whose queued messages a client counts, at most (then it reads through the mailbox). */
const MAX_TRACKED_GRAINS = 100_000;
/** How long a redrive holds its claim on a dead letter, at most. */
const REDRIVE_CLAIM_MS = 60_000;
/** How many subscribers a publish enqueues for at once. */
const PUBLISH_CONCURRENCY = 64;

/** Hears one published message: its topic and data. */
export type TopicListener = (topic: string, data: unknown) => void | Promise<void>;

/** A live subscription of a process (`client.subscribe`). */
export interface TopicSubscription {
  readonly pattern: string;
  unsubscribe(): Promise<void>;
}

/** How many grain mailboxes a client keeps a BullMQ producer for. */
const PRODUCER_CACHE_SIZE = 1_000;

/** What a client runs on; a silo shares its own with the client its grains use. */
export interface ClientRuntime {
  redis: RedisClient & ScriptCommands;
  keys: RedisKeys;
  mailboxRoot: RedisQueueBackend;
  locator: GrainLocator;
  membership: MembershipTable;
  deadLetters: DeadLetterStore;
  subscriptions: SubscriptionTable;
  askTimeoutMs: number;
  /** How long `send` / `ask` wait for Redis before failing with RedisUnavailableError. */
  redisTimeoutMs: number;
  /** Largest serialized arguments of one message, in bytes. */
  maxPayloadBytes: number;
  /** How big a pack of messages to one grain may grow (see MessagePacker); `messages: 1` sends each alone. */
  pack: PackLimits;
  /** Grain classes known from the start (a silo's own), as if referenced with `getGrain`. */
  knownClasses?: readonly GrainClass[] | undefined;
  /** How long a message's outcome is kept for its idempotency key (ms). */
  idempotencyWindowMs: number;
  /** Replicas that must acknowledge an enqueue before it counts as sent (0: none). */
  replicas: number;
  /** The application's error classes, rebuilt as themselves when a handler throws one. */
  errorClasses: ErrorClassRegistry;
  /** Opens the connection that carries `ask` replies (on the first `ask`). */
  openSubscriber(): RedisClient;
  /** Releases what this client owns. */
  dispose(): Promise<void>;
}

/**
 * Sends messages to grains from any process: outside silos (made by `connect`) and inside
 * handlers (`this.getGrain`). One command connection, plus one subscriber once `ask` is used.
 */
export class GrainClient implements MessageSender {
  readonly id = randomUUID();
  readonly #producers = new Map<string, Queue>();
  readonly #knownTypes = new Set<string>();
  readonly #order = new CallOrder();
  /** Mailbox bounds of the types this client has references to. */
  readonly #limits = new Map<string, Required<MailboxLimits>>();
  /** The class of each type this client has taken in (one class per type name). */
  readonly #classes = new Map<string, GrainClass>();
  /** Handlers of the types this client holds the class of: a message for another method is refused here. */
  readonly #handlers = new Map<string, ReadonlySet<string>>();
  #replies: ReplyListener | undefined;
  #subscriber: RedisClient | undefined;
  /** The connection that hears published topics, once `subscribe` is used. */
  #topicSubscriber: Promise<RedisClient> | undefined;
  /** Its connection, as soon as it is opened (closed with the client, subscribed or not). */
  #topicConnection: RedisClient | undefined;
  readonly #topicListeners = new Set<{ segments: string[]; listener: TopicListener }>();
  #closed = false;
  /** Enqueues under way: `close` lets them finish before it closes the connection. */
  readonly #enqueuing = new Set<Promise<void>>();
  /** The read-only handlers of the grain types this client has referenced that declare any. */
  readonly #readOnly = new Map<string, ReadonlySet<string>>();
  /** This client's messages to grains with read-only handlers, per grain: sent, and known processed. */
  #queued: Map<string, { sent: number; done: number }> | undefined = new Map();
  readonly #packer: MessagePacker;

  constructor(private readonly runtime: ClientRuntime) {
    this.#packer = new MessagePacker(runtime.pack, (grain, envelopes) => this.#sendPack(grain, envelopes));
    for (const cls of runtime.knownClasses ?? []) this.#learn(cls);
  }

  /** A typed reference to the grain of class `cls` with key `key`. */
  getGrain<G extends Grain<object>>(cls: GrainClass<G>, key: string): GrainReference<G> {
    return new GrainReference<G>(this, GrainId.of(this.#learn(cls), key));
  }

  /**
   * Takes in what a grain class says about its messages (bounds, handlers, errors); returns its
   * type. A second, different class with a type name this client knows is refused, as `Silo.start`
   * refuses it: its handlers and bounds would silently replace the first class's.
   */
  #learn(cls: GrainClass): string {
    const type = grainTypeName(cls);
    const known = this.#classes.get(type);
    if (known === cls) return type;
    if (known !== undefined) {
      throw new InvalidGrainClassError(`Grain type name "${type}" is declared by two classes (${known.name} and ${cls.name})`);
    }
    const limits = mailboxLimits(cls);
    const handlers = handlerNames(cls);
    const readOnly = readOnlyHandlers(cls);
    this.runtime.errorClasses.register(cls.errors);
    if (limits !== undefined) this.#limits.set(type, limits);
    this.#handlers.set(type, handlers);
    if (readOnly.size > 0) this.#readOnly.set(type, readOnly);
    this.#classes.set(type, cls);
    return type;
  }

  async send(grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<void> {
    const place = this.#order.place(grain.tag);
    this.#track(grain);
    try {
      this.#checkMethod(grain, method);
      const call = this.#startCall('send', grain, method, options);
      try {
        await this.#deliver(grain, method, this.#serializeArgs(grain, method, args), call, undefined, {}, place);
        endCall(call.trace.span);
      } catch (error) {
        endCall(call.trace.span, error);
        throw this.#closedOr(error);
      }
    } finally {
      place.done();
    }
  }

  /** `waiting`: inside a turn, the grains waiting for that turn's reply and the turn's own (see CallCycleError). */
  async ask(grain: GrainId, method: string, args: unknown[], options: CallOptions, waiting?: readonly string[]): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.runtime.askTimeoutMs;
    // A read-only handler asked from outside a turn, with nothing of this client's still queued for
    // the grain, goes straight to the grain's activation (see `readOnly`); the mailbox otherwise.
    if (waiting === undefined && options.idempotencyKey === undefined && this.#readsDirectly(grain, method)) {
      const started = Date.now();
      const direct = await this.#askDirect(grain, method, args, options, Math.min(DIRECT_READ_WAIT_MS, timeoutMs));
      if (direct.served) return direct.value;
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) throw new AskTimeoutError(grain.toString(), method, timeoutMs);
      return this.#askThroughMailbox(grain, method, args, { ...options, timeoutMs: left }, waiting);
    }
    return this.#askThroughMailbox(grain, method, args, options, waiting);
  }

  /** Whether an ask of `method` may go straight to the grain's activation. */
  #readsDirectly(grain: GrainId, method: string): boolean {
    if (this.#queued === undefined || this.#closed) return false;
    if (this.#readOnly.get(grain.type)?.has(method) !== true) return false;
    const queued = this.#queued.get(grain.tag);
    return queued === undefined || queued.done >= queued.sent;
  }

  /**
   * Counts a message of this client to a grain with read-only handlers as queued until an `ask`
   * sent after it is answered through the mailbox (so everything before it was processed).
   * Returns its number, or 0 for grains whose reads never go direct.
   */
  #track(grain: GrainId): number {
    if (this.#queued === undefined || this.#readOnly.get(grain.type)?.size === undefined) return 0;
    const entry = this.#queued.get(grain.tag) ?? { sent: 0, done: 0 };
    entry.sent += 1;
    this.#queued.set(grain.tag, entry);
    // Bounded memory: a client that talks to very many such grains reads through the mailbox.
    if (this.#queued.size > MAX_TRACKED_GRAINS) this.#queued = undefined;
    return entry.sent;
  }

  #processed(grain: GrainId, seq: number): void {
    const entry = this.#queued?.get(grain.tag);
    if (entry === undefined || seq === 0) return;
    entry.done = Math.max(entry.done, seq);
    if (entry.done >= entry.sent) this.#queued?.delete(grain.tag);
  }

  /**
   * A read-only call published to the silo that owns the grain, answered from its activation's
   * committed state. Not served (no owner, no activation there, no answer within `waitMs`): the
   * caller goes through the mailbox instead.
   */
  async #askDirect(
    grain: GrainId,
    method: string,
    args: unknown[],
    options: CallOptions,
    waitMs: number,
  ): Promise<{ served: true; value: unknown } | { served: false }> {
    const call = this.#startCall('ask', grain, method, options);
    let failure: unknown;
    try {
      this.#checkMethod(grain, method);
      const serializedArgs = this.#serializeArgs(grain, method, args);
      const owner = await this.runtime.locator.locate(grain);
      if (owner === undefined) return { served: false };
      const replies = await this.#replyListener();
      const requestId = replies.nextRequestId();
      const reply = replies.expect(requestId, waitMs, () => new AskTimeoutError(grain.toString(), method, waitMs));
      reply.catch(() => undefined);
      const query: ReadOnlyQuery = { g: grain.tag, m: method, a: serializedArgs, c: call.correlationId, r: { c: this.id, i: requestId } };
      // No one listening: the owner is gone.
      if ((await publishTo(this.runtime.redis, this.runtime.keys.siloQueries(owner), JSON.stringify(query))) === 0) {
        replies.cancel(requestId);
        return { served: false };
      }
      try {
        return { served: true, value: await reply };
      } catch (error) {
        if (error instanceof AskTimeoutError || (error instanceof RedgrainError && error.code === NOT_SERVED_CODE))
          return { served: false };
        throw error;
      }
    } catch (error) {
      failure = error;
      throw this.#closedOr(error);
    } finally {
      endCall(call.trace.span, failure);
    }
  }

  async #askThroughMailbox(
    grain: GrainId,
    method: string,
    args: unknown[],
    options: CallOptions,
    waiting?: readonly string[],
  ): Promise<unknown> {
    // The place is taken when the call is made: the reply subscription below may take a while.
    const place = this.#order.place(grain.tag);
    const seq = this.#track(grain);
    let call: Call | undefined;
    try {
      this.#checkMethod(grain, method);
      const replies = await this.#replyListener();
      const requestId = replies.nextRequestId();
      const timeoutMs = options.timeoutMs ?? this.runtime.askTimeoutMs;
      call = this.#startCall('ask', grain, method, options);
      const reply = replies.expect(requestId, timeoutMs, () => new AskTimeoutError(grain.toString(), method, timeoutMs));
      const delivered = this.#deliver(
        grain,
        method,
        this.#serializeArgs(grain, method, args),
        call,
        { c: this.id, i: requestId },
        waiting === undefined ? {} : { w: [...waiting] },
        place,
      );
      // The timeout (or a close) ends the wait even while the enqueue is still in flight; what the
      // enqueue does after that no longer concerns the caller.
      delivered.catch(() => undefined);
      try {
        await Promise.race([delivered, reply]);
      } catch (error) {
        replies.cancel(requestId);
        throw error;
      }
      const value = await reply.catch((error: unknown) => {
        // A handler's error is an answer too: everything before the message was processed.
        if (!(error instanceof AskTimeoutError) && !(error instanceof ClosedError)) this.#processed(grain, seq);
        throw error;
      });
      this.#processed(grain, seq);
      endCall(call.trace.span);
      return value;
    } catch (error) {
      if (call !== undefined) endCall(call.trace.span, error);
      throw this.#closedOr(error);
    } finally {
      place.done();
    }
  }

  /**
   * The message a handler's `send` records in its grain's outbox instead of enqueuing it: checked,
   * serialized and traced like a `send` (a full bounded mailbox refuses it here), but not enqueued;
   * `forward` enqueues it once the turn has committed.
   */
  async prepareSend(grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<MessageEnvelope> {
    if (this.#closed) throw new ClosedError('The client');
    this.#checkMethod(grain, method);
    const call = this.#startCall('send', grain, method, options);
    try {
      const serializedArgs = this.#serializeArgs(grain, method, args);
      await this.#assertRegistered(grain.type);
      await this.#refuseIfFull(grain);
      endCall(call.trace.span);
      return this.#envelope(method, serializedArgs, call, undefined);
    } catch (error) {
      endCall(call.trace.span, error);
      throw error;
    }
  }

  /**
   * The messages a handler's `publish` records in its grain's outbox: one per grain subscribed
   * now, as `publish` would enqueue them, and the payload for live listeners.
   */
  async preparePublish(topic: string, data: unknown, options: Pick<CallOptions, 'correlationId'>): Promise<PreparedPublish> {
    if (this.#closed) throw new ClosedError('The client');
    checkCallOptions(options);
    const payload = this.#publishPayload(topic, data);
    const subscribers = await this.#whileOpen(`publish on ${topic}`, () => this.runtime.subscriptions.subscribersOf(topic));
    const messages = subscribers.map(({ grain, method }) => {
      const call = this.#startCall('send', grain, method, options);
      endCall(call.trace.span);
      return { grain, envelope: this.#envelope(method, payload, call, undefined) };
    });
    return { payload, messages };
  }

  /**
   * Enqueues a message an outbox recorded (see `prepareSend`) and wakes its grain. Its turn has
   * committed, so a full bounded mailbox does not refuse it.
   */
  forward(grain: GrainId, envelopes: readonly [MessageEnvelope, ...MessageEnvelope[]]): Promise<void> {
    return this.#enqueueWithin(grain, envelopes[0].m, envelopes);
  }

  /** Publishes a payload to the processes listening to `topic` live. */
  async publishLive(topic: string, payload: string): Promise<void> {
    await this.runtime.redis.publish(this.runtime.keys.topicChannel(topic), payload);
  }

  /** A call that failed because the client was closed under it says so, whatever failed first. */
  #closedOr(error: unknown): unknown {
    return this.#closed && !(error instanceof RedgrainError) ? new ClosedError('The client') : error;
  }

  /**
   * Refuses a method name no grain can handle (untyped callers), and one the grain's class does not
   * handle when this client holds the class: nothing is enqueued.
   */
  #checkMethod(grain: GrainId, method: unknown): asserts method is string {
    const handlers = this.#handlers.get(grain.type);
    if (!isMethodName(method) || (handlers !== undefined && !handlers.has(method))) throw new UnknownMethodError(grain.type, method);
  }

  /** Resolves the call's correlation id (option, baggage, or new) and opens its span. */
  #startCall(kind: 'send' | 'ask', grain: GrainId, method: string, options: CallOptions): Call {
    checkCallOptions(options);
    const { idempotencyKey, correlationId: given } = options;
    const parent = callerContext(options.traceContext);
    const correlationId = given ?? correlationFromContext(parent) ?? newCorrelationId();
    return { correlationId, idempotencyKey, trace: startCall(kind, grain, method, correlationId, parent) };
  }

  /**
   * Messages set aside because their processing kept killing or hanging their activation.
   * `redrive` puts one back at the end of its grain's mailbox (once the grain is fixed); it and
   * `discard` resolve false when there is no dead letter with that id (redriven or discarded
   * already). A malformed limit or id is refused with InvalidOptionError, a closed client with
   * ClosedError.
   */
  readonly deadLetters = {
    list: (limit = 100): Promise<DeadLetter[]> =>
      this.#whileOpen('list the dead letters', () => {
        if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
          throw new InvalidOptionError('deadLetters.list limit', preview(limit), 'must be a whole number, at least 1');
        }
        return this.runtime.deadLetters.list(limit);
      }),
    redrive: (id: string): Promise<boolean> =>
      this.#whileOpen(`redrive dead letter ${preview(id)}`, async () => {
        checkDeadLetterId(id, 'deadLetters.redrive id');
        const letter = await this.runtime.deadLetters.get(id);
        if (letter === undefined) return false;
        const envelope = asEnvelope(letter.message);
        if (envelope === undefined) throw new TypeError(`Dead letter ${id} holds no redgrain message; discard it instead`);
        // One redrive of a letter at a time (two operators, two clicks): the claim expires by itself
        // if this process dies before the letter is removed, which leaves the letter to redrive again.
        const claim = this.runtime.keys.deadLetterRedrive(id);
        if ((await this.runtime.redis.set(claim, this.id, 'PX', REDRIVE_CLAIM_MS, 'NX')) !== 'OK') {
          throw new RangeError(`Dead letter ${id} is being redriven already`);
        }
        try {
          await this.#enqueueWithin(GrainId.of(letter.grainType, letter.grainKey), envelope.m, { ...envelope, t: Date.now() });
          await this.runtime.deadLetters.remove(id);
        } finally {
          await this.runtime.redis.del(claim);
        }
        return true;
      }),
    discard: (id: string): Promise<boolean> =>
      this.#whileOpen(`discard dead letter ${preview(id)}`, () => {
        checkDeadLetterId(id, 'deadLetters.discard id');
        return this.runtime.deadLetters.remove(id);
      }),
  };

  /**
   * Runs `work`, which reads or writes Redis, on an open client: ClosedError when closed, before
   * or while it runs; RedisUnavailableError when Redis is not reachable within `redisTimeoutMs`,
   * or fails under it (a command timed out, its connection dropped), saying what could not be done.
   */
  async #whileOpen<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('The client');
    try {
      await waitReadyWithin(this.runtime.redis, this.runtime.redisTimeoutMs);
    } catch (error) {
      throw new RedisUnavailableError(
        `Cannot ${what}: ${error instanceof RedisUnavailableError ? error.message : describeError(error)}`,
        error,
      );
    }
    try {
      return await work();
    } catch (error) {
      const closed = this.#closedOr(error);
      // Ours (RedgrainError), or a refusal documented as TypeError / RangeError: as it is.
      if (closed !== error || error instanceof RedgrainError || error instanceof TypeError || error instanceof RangeError) throw closed;
      throw new RedisUnavailableError(`Cannot ${what}: Redis failed (${describeError(error)})`, error);
    }
  }

  /**
   * Reads the journal of an event-sourced grain (see EventSourcedGrain) without activating it:
   * its committed events from `from` to `to` (sequence numbers, both included; default: from the
   * first), at most `limit` (default 1,000), each upcast to the class's current event version.
   * Events trimmed by `journalRetention: 'snapshot'` are no longer there.
   */
  async readEvents<G extends EventSourcedGrain<object, { type: string }>>(
    cls: GrainClass<G>,
    key: string,
    range: EventRange = {},
  ): Promise<JournalEvent<EventOf<G>>[]> {
    if (this.#closed) throw new ClosedError('The client');
    const type = grainTypeName(cls);
    const config = eventSourcingOf(type, cls);
    if (config === undefined)
      throw new InvalidGrainClassError(`${type} is not an event-sourced grain (it does not extend EventSourcedGrain)`);
    const id = GrainId.of(type, key);
    const events = await this.#whileOpen(`read the events of ${id.toString()}`, () =>
      readJournal(this.runtime.redis, this.runtime.keys.journal(id), config, range),
    );
    return events as JournalEvent<EventOf<G>>[];
  }

  /**
   * Publishes `data` on `topic` (dot-separated segments, no wildcards). Every grain subscribed to
   * a matching pattern, durably or by its type's implicit subscriptions, gets
   * `method(topic, data)` in its mailbox, like a `send` from this client; external subscribers
   * (`client.subscribe`) hear it live. Resolves with the number of grain messages enqueued, once
   * all are durable. If enqueuing fails for some subscribers it rejects after trying them all:
   * publish again with an `idempotencyKey` so those that got it do not run it twice.
   */
  async publish(topic: string, data: unknown, options: Pick<CallOptions, 'correlationId' | 'idempotencyKey'> = {}): Promise<number> {
    if (this.#closed) throw new ClosedError('The client');
    // Checked before the subscribers are looked up, as for a send: refused even when none subscribes.
    checkCallOptions(options);
    const payload = this.#publishPayload(topic, data);
    const subscribers = await this.#whileOpen(`publish on ${topic}`, () => this.runtime.subscriptions.subscribersOf(topic));
    const failures: unknown[] = [];
    for (let i = 0; i < subscribers.length; i += PUBLISH_CONCURRENCY) {
      const results = await Promise.allSettled(
        subscribers.slice(i, i + PUBLISH_CONCURRENCY).map(async ({ grain, method }) => {
          const call = this.#startCall('send', grain, method, options);
          try {
            await this.#deliver(grain, method, payload, call, undefined);
            endCall(call.trace.span);
          } catch (error) {
            endCall(call.trace.span, error);
            throw error;
          }
        }),
      );
      for (const result of results) if (result.status === 'rejected') failures.push(result.reason);
    }
    await this.#whileOpen(`publish on ${topic} to live listeners`, () =>
      this.runtime.redis.publish(this.runtime.keys.topicChannel(topic), payload),
    );
    if (failures.length > 0) {
      const first = failures[0];
      if (first instanceof RedgrainError && failures.length === 1) throw first;
      throw new RedisUnavailableError(
        `Publishing on ${topic} reached ${subscribers.length - failures.length} of ${subscribers.length} subscribers; first failure: ${describeError(first)}`,
        first,
      );
    }
    return subscribers.length;
  }

  /**
   * Listens to published topics matching `pattern` from this process (not a grain). Live only:
   * messages published while this client is not subscribed, or disconnected, are not replayed;
   * for durable delivery subscribe a grain.
   */
  async subscribe(pattern: string, listener: TopicListener): Promise<TopicSubscription> {
    if (this.#closed) throw new ClosedError('The client');
    if (typeof listener !== 'function')
      throw new InvalidOptionError('listener', preview(listener), 'must be a function (topic, data) => void');
    const entry = { segments: patternSegments(pattern), listener };
    await this.#whileOpen(`subscribe to ${pattern}`, () => this.#topics());
    this.#topicListeners.add(entry);
    return {
      pattern,
      unsubscribe: async () => {
        this.#topicListeners.delete(entry);
      },
    };
  }

  #topics(): Promise<RedisClient> {
    this.#topicSubscriber ??= (async () => {
      const connection = this.runtime.openSubscriber();
      this.#topicConnection = connection;
      const prefix = this.runtime.keys.topicChannel('');
      connection.on('pmessage', (_pattern: string, channel: string, message: string) => {
        const topic = channel.slice(prefix.length);
        const segments = topic.split('.');
        let data: unknown;
        try {
          data = (deserialize(message) as unknown[])[1];
        } catch {
          return;
        }
        for (const { segments: pattern, listener } of this.#topicListeners) {
          if (!matchSegments(pattern, segments)) continue;
          try {
            const result = listener(topic, data);
            if (result instanceof Promise) result.catch(() => undefined);
          } catch {
            // a listener's failure is its own; the others still hear the message
          }
        }
      });
      try {
        await waitReadyWithin(connection, this.runtime.redisTimeoutMs);
        await connection.psubscribe(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`);
      } catch (error) {
        // Not connected within the Redis timeout: the next subscribe starts over.
        connection.disconnect();
        this.#topicSubscriber = undefined;
        this.#topicConnection = undefined;
        throw error;
      }
      return connection;
    })();
    return this.#topicSubscriber;
  }

  /** Closes the client; `ask` calls still waiting reject with ClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Calls already made finish their enqueue (each within redisTimeoutMs), so a send that was
    // issued before the close is enqueued, or fails saying so; calls made from now on are refused.
    await Promise.allSettled([...this.#enqueuing]);
    this.#replies?.close();
    this.#subscriber?.disconnect();
    // Not awaited: a subscription still waiting for Redis fails with the connection.
    this.#topicConnection?.disconnect();
    this.#producers.clear();
    await this.runtime.dispose();
  }

  /**
   * Delivers one tick of a reminder (the silo's reminder service calls this): a one-way message
   * whose idempotency key is the tick id, so a tick delivered twice runs once.
   */
  async deliverTick(grain: GrainId, method: string, serializedArgs: string, tick: NonNullable<MessageEnvelope['rt']>): Promise<void> {
    const call = this.#startCall('send', grain, method, { idempotencyKey: `reminder:${tick.id}` });
    try {
      await this.#deliver(grain, method, serializedArgs, call, undefined, { rt: tick });
      endCall(call.trace.span);
    } catch (error) {
      endCall(call.trace.span, error);
      throw error;
    }
  }

  #serializeArgs(grain: GrainId, method: string, args: unknown[]): string {
    const serializedArgs = serialize(args, `the arguments of ${grain.type}.${method}`);
    const bytes = Buffer.byteLength(serializedArgs);
    if (bytes > this.runtime.maxPayloadBytes) {
      throw new PayloadTooLargeError(`The arguments of ${grain.type}.${method}`, bytes, this.runtime.maxPayloadBytes);
    }
    return serializedArgs;
  }

  /** The arguments `method(topic, data)` a publish delivers, serialized and size-checked. */
  #publishPayload(topic: string, data: unknown): string {
    topicSegments(topic);
    const payload = serialize([topic, data], `the data published on ${topic}`);
    const bytes = Buffer.byteLength(payload);
    if (bytes > this.runtime.maxPayloadBytes)
      throw new PayloadTooLargeError(`The data published on ${topic}`, bytes, this.runtime.maxPayloadBytes);
    return payload;
  }

  #envelope(
    method: string,
    serializedArgs: string,
    call: Call,
    replyTo: MessageEnvelope['r'],
    extra: Pick<MessageEnvelope, 'rt' | 'w'> = {},
  ): MessageEnvelope {
    return {
      ...extra,
      v: 1,
      m: method,
      a: serializedArgs,
      c: call.correlationId,
      t: Date.now(),
      ...(replyTo === undefined ? {} : { r: replyTo }),
      ...call.trace.envelope,
      ...(call.idempotencyKey === undefined ? {} : { i: { k: call.idempotencyKey, w: this.runtime.idempotencyWindowMs } }),
    };
  }

  /** A grain whose bounded mailbox rejects overflow, and is full, refuses the message. */
  async #refuseIfFull(grain: GrainId): Promise<void> {
    const limits = this.#limits.get(grain.type);
    if (limits?.overflow !== 'reject') return;
    // Checked before the enqueue: concurrent senders may together pass the bound by their number.
    const depth = await this.runtime.redis.llen(this.runtime.keys.mailbox(grain, 'wait'));
    if (depth >= limits.maxDepth) throw new MailboxFullError(grain.toString(), limits.maxDepth);
  }

  async #deliver(
    grain: GrainId,
    method: string,
    serializedArgs: string,
    call: Call,
    replyTo: MessageEnvelope['r'],
    extra: Pick<MessageEnvelope, 'rt' | 'w'> = {},
    place: Place = this.#order.place(grain.tag),
  ): Promise<void> {
    if (this.#closed) throw new ClosedError('The client');
    // From here the call counts as made: `close` lets it finish (its checks too).
    await this.#finishedBeforeClose(this.#checkAndEnqueue(grain, method, serializedArgs, call, replyTo, extra, place));
  }

  async #checkAndEnqueue(
    grain: GrainId,
    method: string,
    serializedArgs: string,
    call: Call,
    replyTo: MessageEnvelope['r'],
    extra: Pick<MessageEnvelope, 'rt' | 'w'>,
    place: Place,
  ): Promise<void> {
    try {
      await this.#assertRegistered(grain.type);
      await this.#refuseIfFull(grain);
    } catch (error) {
      place.done();
      if (error instanceof RedgrainError) throw error;
      throw new RedisUnavailableError(
        `Cannot send ${grain.toString()}.${method}: ${describeError(error)}; the message was not enqueued`,
        error,
      );
    }
    try {
      // #deliver already counts this call among those `close` lets finish.
      await this.#enqueueNow(grain, method, this.#envelope(method, serializedArgs, call, replyTo, extra), place);
    } finally {
      place.done();
    }
  }

  /**
   * Enqueues within the Redis timeout (see `#enqueueNow`), counted among the enqueues `close`
   * lets finish.
   */
  #enqueueWithin(
    grain: GrainId,
    method: string,
    envelopes: MessageEnvelope | readonly MessageEnvelope[],
    place: Place = this.#order.place(grain.tag),
  ): Promise<void> {
    return this.#finishedBeforeClose(this.#enqueueNow(grain, method, envelopes, place));
  }

  /** Counts `work` among the calls `close` lets finish first. */
  async #finishedBeforeClose(work: Promise<void>): Promise<void> {
    this.#enqueuing.add(work);
    try {
      await work;
    } finally {
      this.#enqueuing.delete(work);
    }
  }

  /**
   * Enqueues within the Redis timeout. Waiting for a connection fails cleanly (nothing was sent);
   * a failure after the enqueue was sent leaves it uncertain, and the error says so.
   */
  async #enqueueNow(grain: GrainId, method: string, envelopes: MessageEnvelope | readonly MessageEnvelope[], place: Place): Promise<void> {
    try {
      const { redis, redisTimeoutMs } = this.runtime;
      const deadline = Date.now() + redisTimeoutMs;
      try {
        await waitReadyWithin(redis, redisTimeoutMs);
      } catch (error) {
        const why = error instanceof RedisUnavailableError ? error.message : `Redis not reachable within ${redisTimeoutMs} ms`;
        throw new RedisUnavailableError(`Cannot send ${grain.toString()}.${method}: ${why}; the message was not enqueued`, error);
      }
      let timer: NodeJS.Timeout | undefined;
      // Once this call has given up, it must not issue its enqueue later, behind calls made after it.
      const gaveUp = { now: false };
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => {
            gaveUp.now = true;
            reject(new Error('timed out'));
          },
          Math.max(1, deadline - Date.now()),
        );
      });
      try {
        await Promise.race([this.#enqueue(grain, envelopes, place, gaveUp), timeout]);
      } catch (error) {
        if (error instanceof RedgrainError) throw error;
        if (error instanceof NotSentBehindError) {
          throw new RedisUnavailableError(
            `Cannot send ${grain.toString()}.${method}: ${error.message}; the message was not enqueued`,
            error,
          );
        }
        throw new RedisUnavailableError(
          `Redis failed while sending ${grain.toString()}.${method} (${describeError(error)}); the message may or may not have been enqueued`,
          error,
        );
      } finally {
        clearTimeout(timer);
      }
    } finally {
      // Given up before issuing the enqueue: the calls behind this one go on.
      place.done();
    }
  }

  async #enqueue(
    grain: GrainId,
    envelopes: MessageEnvelope | readonly MessageEnvelope[],
    place: Place,
    gaveUp: { readonly now: boolean },
  ): Promise<void> {
    // A bounded mailbox counts its messages by job: its messages travel alone, and so do those to
    // a type whose class this client does not know (it cannot tell whether its mailbox is bounded).
    if (this.runtime.pack.messages > 1 && this.#handlers.has(grain.type) && !this.#limits.has(grain.type)) {
      await place.turn;
      if (gaveUp.now) return;
      const sent = this.#packer.add(grain, Array.isArray(envelopes) ? envelopes : [envelopes as MessageEnvelope]);
      place.done();
      await sent;
      return;
    }
    const limits = this.#limits.get(grain.type);
    // Issued in call order; the calls behind this one need not wait for its round trip.
    await place.turn;
    if (gaveUp.now) return;
    const list = Array.isArray(envelopes) ? envelopes : [envelopes as MessageEnvelope];
    const sending = this.#sendJobs(
      grain,
      list.map((envelope) => ({ name: envelope.m, data: envelope })),
      limits?.overflow === 'drop-oldest' ? () => this.#dropOverflow(grain, limits.maxDepth) : undefined,
    );
    place.done();
    await sending.done;
  }

  /**
   * Sends a pack the packer made: one message as a job of its own, several as one pack job (or,
   * past the limits, as several packs in one MULTI: all of them or none).
   */
  #sendPack(grain: GrainId, envelopes: readonly MessageEnvelope[]): PackSending {
    const [only] = envelopes;
    const jobs =
      envelopes.length === 1 && only !== undefined
        ? [{ name: only.m, data: only }]
        : packsOf(envelopes, this.runtime.pack).map((members) => ({ name: packJobName(members.length), data: toPack(members) }));
    return this.#sendJobs(grain, jobs);
  }

  /**
   * Adds jobs to one grain's mailbox (one job alone; several in one MULTI, in order: all of them
   * or none, since a receiver that got a later one would drop an earlier one sent again), then
   * wakes the grain's owner and waits for the replicas required. `beforeWake` runs in between.
   */
  #sendJobs(grain: GrainId, jobs: readonly { name: string; data: unknown }[], beforeWake?: () => Promise<void>): PackSending {
    const { locator, redis, keys, replicas, redisTimeoutMs } = this.runtime;
    const [only] = jobs;
    const replicated = () => (replicas > 0 ? waitForReplicas(redis, replicas, redisTimeoutMs, keys.mailbox(grain, 'wait')) : undefined);
    if (only !== undefined && jobs.length === 1 && beforeWake === undefined && !(redis instanceof Cluster)) {
      // On one Redis the owner's wake-up travels in the enqueue's round trip, right behind it.
      const { added, after } = addJobThen(this.#producer(grain), only.name, only.data, () => locator.wakeOwner(grain));
      const done = added.then(async () => {
        const [again] = await Promise.all([after, replicated()]);
        // The wake-up ran before the enqueue (or found its message taken already): once more.
        if (again) await locator.wakeOwner(grain);
      });
      return { added, done };
    }
    // The owner lookup needs nothing from the enqueue, so both travel at once; the wake-up must
    // follow the enqueue, or a silo could look at the mailbox before the message is in it.
    const owner = locator.locate(grain);
    owner.catch(() => undefined);
    const queue = this.#producer(grain);
    const added =
      jobs.length === 1 && only !== undefined ? queue.add(only.name, only.data).then(() => undefined) : addAllInTransaction(queue, jobs);
    const done = (async () => {
      await added;
      await beforeWake?.();
      await Promise.all([locator.wake(grain, await owner), replicated()]);
    })();
    return { added, done };
  }

  /** Moves the oldest waiting messages past `maxDepth` to the dead letters, telling `ask` callers. */
  async #dropOverflow(grain: GrainId, maxDepth: number): Promise<void> {
    const { redis, keys, deadLetters } = this.runtime;
    // Taken out of the waiting list in one step, so that concurrent senders together drop exactly
    // the overflow, each message once (and never one a silo has taken meanwhile).
    const dropped = (await redis.dropOldest(keys.mailbox(grain, 'wait'), maxDepth)) as string[];
    if (dropped.length === 0) return;
    const queue = this.#producer(grain);
    for (const jobId of dropped) {
      const job = await queue.getJob(jobId);
      if (job === undefined) continue;
      await queue.remove(jobId);
      // A pack (sent by a process that did not know the bound) is set aside message by message.
      for (const message of jobMessages(job.data) ?? [job.data]) {
        const envelope = asEnvelope(message);
        await deadLetters.add({
          grainType: grain.type,
          grainKey: grain.key,
          method: envelope?.m ?? job.name,
          reason: `mailbox full: dropped as the oldest waiting message (maxDepth ${maxDepth}, overflow drop-oldest)`,
          attempts: 0,
          silo: '',
          message,
        });
        if (envelope?.r !== undefined) {
          const reply: ReplyMessage = {
            i: envelope.r.i,
            ok: false,
            e: errorToData(new MailboxFullError(grain.toString(), maxDepth, true)),
          };
          await publishTo(redis, keys.replyChannel(envelope.r.c), JSON.stringify(reply));
        }
      }
    }
  }

  async #assertRegistered(type: string): Promise<void> {
    if (this.#knownTypes.has(type)) return;
    if (!(await this.runtime.membership.isTypeRegistered(type))) throw new GrainTypeNotRegisteredError(type);
    this.#knownTypes.add(type);
  }

  #producer(grain: GrainId): Queue {
    const name = this.runtime.keys.queueName(grain);
    let queue = this.#producers.get(name);
    if (queue !== undefined) {
      this.#producers.delete(name);
      this.#producers.set(name, queue);
      return queue;
    }
    const root = this.runtime.mailboxRoot;
    queue = new Queue(
      name,
      { connection: this.runtime.redis, prefix: this.runtime.keys.bullPrefix, skipMetasUpdate: true },
      () => root.forQueue(name) as RedisQueueBackend,
    );
    queue.on('error', () => undefined); // failed enqueues reject the send itself
    this.#producers.set(name, queue);
    if (this.#producers.size > PRODUCER_CACHE_SIZE) {
      const oldest = this.#producers.keys().next().value as string;
      this.#producers.delete(oldest);
    }
    return queue;
  }

  async #replyListener(): Promise<ReplyListener> {
    if (this.#closed) throw new ClosedError('The client');
    if (this.#replies === undefined) {
      this.#subscriber = this.runtime.openSubscriber();
      this.#replies = new ReplyListener(this.#subscriber, this.runtime.keys.replyChannel(this.id), this.runtime.errorClasses);
    }
    await this.#replies.ready(this.runtime.redisTimeoutMs);
    return this.#replies;
  }
}

/** Refuses malformed call options (`idempotencyKey`, `correlationId`, `timeoutMs`) with InvalidOptionError. */
function checkCallOptions(options: CallOptions): void {
  const { idempotencyKey, correlationId: given, timeoutMs } = options;
  if (idempotencyKey !== undefined && !isIdempotencyKey(idempotencyKey)) {
    throw new InvalidOptionError(
      'idempotencyKey',
      preview(idempotencyKey),
      `must be a non-empty string of at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
    );
  }
  if (given !== undefined && !isCorrelationId(given)) {
    throw new InvalidOptionError(
      'correlationId',
      preview(given),
      `must be a non-empty string of at most ${MAX_CORRELATION_ID_LENGTH} characters`,
    );
  }
  // Whole, as connect's askTimeoutMs is.
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS)
  ) {
    throw new InvalidOptionError('timeoutMs', preview(timeoutMs), `must be a whole number of ms, from 1 to ${MAX_TIMER_MS}`);
  }
}

/** The largest part of a Redis stream id (an unsigned 64-bit number). */
const MAX_STREAM_ID_PART = 18_446_744_073_709_551_615n;

/** Refuses what is not a dead letter id as `list` gives it (`<ms>-<seq>`): Redis would refuse it, or read it as a range. */
function checkDeadLetterId(id: unknown, option: string): asserts id is string {
  const parts = typeof id === 'string' ? /^(\d{1,20})-(\d{1,20})$/.exec(id) : null;
  if (parts === null || parts.slice(1).some((part) => BigInt(part) > MAX_STREAM_ID_PART)) {
    throw new InvalidOptionError(option, preview(id), 'must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)');
  }
}

/** Splits messages into packs within the limits, in order (one pack when they fit). */
function packsOf(envelopes: readonly MessageEnvelope[], limits: PackLimits): MessageEnvelope[][] {
  const packs: MessageEnvelope[][] = [];
  let current: MessageEnvelope[] = [];
  let bytes = 0;
  for (const envelope of envelopes) {
    const size = packBytes(envelope);
    if (current.length > 0 && (current.length >= limits.messages || bytes + size > limits.bytes)) {
      packs.push(current);
      current = [];
      bytes = 0;
    }
    current.push(envelope);
    bytes += size;
  }
  if (current.length > 0) packs.push(current);
  return packs;
}
