import {
  context as otelContext,
  INVALID_SPAN_CONTEXT,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';
import type { GrainId } from '../grain/grain-id.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import { errorMessage, errorName } from '../errors/errors.ts';
import {
  Attr,
  CORRELATION_BAGGAGE_KEY,
  destinationName,
  destinationTemplate,
  INSTRUMENTATION_NAME,
  MESSAGING_SYSTEM,
  SpanNames,
} from './semantics.ts';

/**
 * Opens redgrain's spans and carries trace context inside message envelopes. Only the
 * OpenTelemetry API is used: with no SDK registered every span is a no-op and nothing is carried.
 *
 * How a message's spans relate (the README documents this):
 * - `ask`: an RPC client span on the caller, the RPC server span of the turn as its child, and a
 *   `wait` span (time in the mailbox) also under the client span.
 * - `send`: a producer span on the caller. The turn's consumer span runs later, possibly long
 *   after the send span ended, so it *links* to the send span instead of being its child; its
 *   parent is the caller's own span (the user action, or the handler turn that sent it), which
 *   keeps one user action in one trace. Without a caller span the send span is its parent.
 */

const tracer = () => trace.getTracer(INSTRUMENTATION_NAME);

/** What the API's global provider delegates to while no SDK is registered. */
const NO_PROVIDER = new ProxyTracerProvider().getDelegate();
/** The span the API's no-op tracer gives a span without a parent: nothing recorded, nothing carried. */
const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Whether no SDK is registered: every span would then be the no-op tracer's, and a span without a
 * parent is `NO_SPAN`. The message paths skip building names, attributes and links for it (a tenth
 * of a hot grain's CPU, measured). With a parent from the envelope or the caller they take the
 * usual path: the no-op span then carries that parent's context on.
 */
/** Whether `ctx` holds a span with a valid context (one a no-op span would carry on). */
function hasSpan(ctx: Context): boolean {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext !== undefined && trace.isSpanContextValid(spanContext);
}

function tracingOff(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NO_PROVIDER;
}

/** Trace fields a message carries in its envelope. */
export interface EnvelopeTrace {
  /** W3C trace context (`traceparent`, `tracestate`, `baggage`) of the turn's parent. */
  x?: Record<string, string>;
  /** Span id of the send/ask span that enqueued the message (same trace as `x`). */
  k?: string;
}

/** A call being made: its span, and what to put in the envelope. */
export interface CallTrace {
  readonly span: Span;
  readonly envelope: EnvelopeTrace;
}

/** The correlation id carried in `context`'s baggage, if any. */
export function correlationFromContext(ctx: Context): string | undefined {
  return propagation.getBaggage(ctx)?.getEntry(CORRELATION_BAGGAGE_KEY)?.value;
}

/** `ctx` with the correlation id in its baggage. */
export function withCorrelation(ctx: Context, correlationId: string): Context {
  const bag = propagation.getBaggage(ctx) ?? propagation.createBaggage();
  return propagation.setBaggage(ctx, bag.setEntry(CORRELATION_BAGGAGE_KEY, { value: correlationId }));
}

/** The context a call parents on: the active one when it holds a span, else `fallback`. */
export function callerContext(fallback: Context | undefined): Context {
  const active = otelContext.active();
  if (fallback === undefined || trace.getSpan(active) !== undefined) return active;
  return fallback;
}

/** Opens the caller's span of a `send` (producer) or an `ask` (RPC client). */
export function startCall(kind: 'send' | 'ask', grain: GrainId, method: string, correlationId: string, parent: Context): CallTrace {
  if (tracingOff() && !hasSpan(parent)) return { span: NO_SPAN, envelope: {} };
  const attributes: Attributes = {
    ...messageAttributes(grain, method, correlationId),
    [Attr.messagingOperationType]: 'send',
    [Attr.messagingOperationName]: 'send',
    ...(kind === 'ask' ? rpcAttributes(grain, method) : {}),
  };
  const name = kind === 'ask' ? SpanNames.call(grain.type, method) : SpanNames.send(grain.type);
  const span = tracer().startSpan(name, { kind: kind === 'ask' ? SpanKind.CLIENT : SpanKind.PRODUCER, attributes }, parent);
  const own = span.spanContext();
  if (!trace.isSpanContextValid(own)) return { span, envelope: {} };
  const caller = trace.getSpanContext(parent);
  const callerHasSpan = caller !== undefined && trace.isSpanContextValid(caller);
  // An ask's turn is the client span's child; a send's turn hangs under the caller's span.
  const turnParent = kind === 'send' && callerHasSpan ? parent : trace.setSpan(parent, span);
  return { span, envelope: { x: inject(withCorrelation(turnParent, correlationId)), k: own.spanId } };
}

/** Ends a call span, marking it failed when `error` is given. */
export function endCall(span: Span, error?: unknown): void {
  if (error !== undefined) markFailed(span, error);
  span.end();
}

/** The spans of one turn: the handler runs in `context`. */
export interface TurnTrace {
  readonly span: Span;
  readonly context: Context;
  readonly traceId: string;
}

/**
 * Opens the spans of a message's turn: the `wait` span (from the send to now) and the turn span
 * (RPC server for `ask`, consumer for `send`), parented and linked from the envelope.
 */
export function startTurn(
  grain: GrainId,
  envelope: MessageEnvelope,
  details: { siloId: string; epoch: string; jobId: string; deliveryCount: number; activationLink: SpanContext | undefined },
): TurnTrace {
  const parent = extract(envelope.x);
  const parentSpan = trace.getSpanContext(parent);
  if (tracingOff() && !hasSpan(parent)) {
    return { span: NO_SPAN, context: trace.setSpan(withCorrelation(parent, envelope.c), NO_SPAN), traceId: '' };
  }
  const producer: SpanContext | undefined =
    parentSpan !== undefined && envelope.k !== undefined && /^[0-9a-f]{16}$/.test(envelope.k)
      ? { traceId: parentSpan.traceId, spanId: envelope.k, traceFlags: parentSpan.traceFlags, isRemote: true }
      : undefined;
  const base = {
    ...messageAttributes(grain, envelope.m, envelope.c),
    [Attr.siloId]: details.siloId,
    [Attr.epoch]: details.epoch,
    [Attr.messagingMessageId]: details.jobId,
    [Attr.messagingDeliveryCount]: details.deliveryCount,
  };
  if (producer !== undefined) {
    tracer()
      .startSpan(
        SpanNames.wait(grain.type),
        { kind: SpanKind.INTERNAL, startTime: envelope.t, attributes: base },
        trace.setSpanContext(ROOT_CONTEXT, producer),
      )
      .end();
  }
  const isAsk = envelope.r !== undefined;
  const links: Link[] = [];
  if (!isAsk && producer !== undefined && producer.spanId !== parentSpan?.spanId) links.push({ context: producer });
  if (details.activationLink !== undefined) links.push({ context: details.activationLink, attributes: { [Attr.epoch]: details.epoch } });
  const span = tracer().startSpan(
    isAsk ? SpanNames.call(grain.type, envelope.m) : SpanNames.process(grain.type),
    {
      kind: isAsk ? SpanKind.SERVER : SpanKind.CONSUMER,
      links,
      attributes: {
        ...base,
        [Attr.messagingOperationType]: 'process',
        [Attr.messagingOperationName]: 'process',
        ...(isAsk ? rpcAttributes(grain, envelope.m) : {}),
      },
    },
    parent,
  );
  const context = trace.setSpan(withCorrelation(parent, envelope.c), span);
  const own = span.spanContext();
  return { span, context, traceId: trace.isSpanContextValid(own) ? own.traceId : '' };
}

/** Opens a span for work of an activation outside turns (activation, deactivation, state). */
export function startGrainSpan(
  name: string,
  grain: GrainId,
  siloId: string,
  parent: Context = ROOT_CONTEXT,
  attributes: Attributes = {},
): Span {
  return tracer().startSpan(
    name,
    {
      kind: SpanKind.INTERNAL,
      attributes: { [Attr.grainType]: grain.type, [Attr.grainKey]: grain.key, [Attr.siloId]: siloId, ...attributes },
    },
    parent,
  );
}

/** A context holding `span` (for its children). */
export function contextWith(span: Span, parent: Context = ROOT_CONTEXT): Context {
  return trace.setSpan(parent, span);
}

/** Records `error` on `span` and marks it failed. */
export function markFailed(span: Span, error: unknown): void {
  const name = errorName(error);
  const message = errorMessage(error);
  span.setAttribute(Attr.errorType, name);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  // What a handler threw is its own: its fields are read once, safely, not by the exporter.
  let stack: string | undefined;
  try {
    stack = error instanceof Error && typeof error.stack === 'string' ? error.stack : undefined;
  } catch {
    stack = undefined;
  }
  span.recordException(stack === undefined ? { name, message } : { name, message, stack });
}

/** The trace id and span id of the active span, for log lines (empty when none). */
export function activeTraceFields(): { traceId?: string; spanId?: string } {
  const spanContext = trace.getSpanContext(otelContext.active());
  if (spanContext === undefined || !trace.isSpanContextValid(spanContext)) return {};
  return { traceId: spanContext.traceId, spanId: spanContext.spanId };
}

function messageAttributes(grain: GrainId, method: string, correlationId: string): Attributes {
  return {
    [Attr.messagingSystem]: MESSAGING_SYSTEM,
    [Attr.messagingDestinationName]: destinationName(grain.type, grain.key),
    [Attr.messagingDestinationTemplate]: destinationTemplate(grain.type),
    [Attr.messagingConversationId]: correlationId,
    [Attr.grainType]: grain.type,
    [Attr.grainKey]: grain.key,
    [Attr.grainMethod]: method,
    [Attr.correlationId]: correlationId,
  };
}

function rpcAttributes(grain: GrainId, method: string): Attributes {
  return { [Attr.rpcSystem]: MESSAGING_SYSTEM, [Attr.rpcService]: grain.type, [Attr.rpcMethod]: method };
}

/**
 * W3C trace context of `ctx` as headers. The registered propagator writes them (with baggage);
 * `traceparent` is written here too when none is registered, so context flows by default.
 */
function inject(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  const spanContext = trace.getSpanContext(ctx);
  if (carrier.traceparent === undefined && spanContext !== undefined && trace.isSpanContextValid(spanContext)) {
    carrier.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-0${(spanContext.traceFlags & 1).toString(16)}`;
  }
  return carrier;
}

function extract(carrier: Record<string, string> | undefined): Context {
  if (carrier === undefined) return ROOT_CONTEXT;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier);
  if (trace.getSpanContext(ctx) !== undefined) return ctx;
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(carrier.traceparent ?? '');
  if (match === null) return ctx;
  const spanContext: SpanContext = {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16),
    isRemote: true,
  };
  return trace.isSpanContextValid(spanContext) ? trace.setSpanContext(ctx, spanContext) : ctx;
}
