import type { Context } from '@opentelemetry/api';
import type { GrainId } from '../grain/grain-id.ts';
import type { Grain, HandlerArgs, HandlerName, HandlerResult } from '../grain/grain.ts';

/** Per-call options, set with `reference.with({ ... })`. */
export interface CallOptions {
  /** How long `ask` waits for the reply before rejecting with AskTimeoutError (ms). */
  timeoutMs?: number | undefined;
  /**
   * Correlation id for the messages sent through this reference. When absent, the one in the
   * active OpenTelemetry baggage (`redgrain.correlation_id`) is used, else a new one is made.
   */
  correlationId?: string | undefined;
  /**
   * OpenTelemetry context to parent the call's span on when the active context holds no span
   * (inside a handler, references are given the turn's context already).
   */
  traceContext?: Context | undefined;
  /**
   * Makes the call idempotent: a message with the same key to the same grain within the client's
   * `idempotencyWindowMs` is not processed again, and a duplicate `ask` gets the first call's
   * result (or error). Set it per call: `ref.with({ idempotencyKey: 'order-42' }).send(...)`.
   */
  idempotencyKey?: string | undefined;
}

/** What a reference needs from the client that made it. */
export interface MessageSender {
  send(grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<void>;
  ask(grain: GrainId, method: string, args: unknown[], options: CallOptions): Promise<unknown>;
}

/**
 * A typed handle on one grain, valid from any process. Holding one costs nothing: the grain is
 * activated on some silo when a message reaches it.
 *
 * - `send` (tell) resolves once the message is durably enqueued in the grain's mailbox.
 * - `ask` resolves with the handler's return value or rejects with its error.
 *
 * Messages from one sender to one grain are handled in the order they were sent.
 */
export class GrainReference<G extends Grain<object>> {
  constructor(
    private readonly sender: MessageSender,
    readonly id: GrainId,
    private readonly options: CallOptions = {},
  ) {}

  get type(): string {
    return this.id.type;
  }

  get key(): string {
    return this.id.key;
  }

  /** Enqueues a message; resolves once it is durable. The handler runs later, at least once. */
  send<M extends HandlerName<G>>(method: M, ...args: HandlerArgs<G, M>): Promise<void> {
    return this.sender.send(this.id, method, args, this.options);
  }

  /** Enqueues a message and waits for the handler's result (or its error, or a timeout). */
  ask<M extends HandlerName<G>>(method: M, ...args: HandlerArgs<G, M>): Promise<HandlerResult<G, M>> {
    return this.sender.ask(this.id, method, args, this.options) as Promise<HandlerResult<G, M>>;
  }

  /** The same grain with other call options, e.g. `ref.with({ timeoutMs: 5_000 }).ask('get')`. */
  with(options: CallOptions): GrainReference<G> {
    return new GrainReference(this.sender, this.id, { ...this.options, ...options });
  }
}
