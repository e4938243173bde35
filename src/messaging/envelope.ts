import { randomUUID } from 'node:crypto';
import { isSenderMark, type SenderMark } from '../outbox/outbox.ts';

/**
 * A message as stored in a grain's mailbox (the BullMQ job's data). The job name is the method.
 * Fields are short because every message carries them.
 */
export interface MessageEnvelope {
  /** Envelope format version. */
  v: 1;
  /** Handler method name. */
  m: string;
  /** Arguments, serialized with the shared serializer. */
  a: string;
  /** Correlation id: made when a message first enters from outside, then copied onward. */
  c: string;
  /** When the message was sent (ms since epoch). */
  t: number;
  /** Where to reply, for `ask`: client id and request id. */
  r?: { c: string; i: string };
  /** W3C trace context (`traceparent`, `tracestate`, `baggage`) of the turn's parent span. */
  x?: Record<string, string>;
  /** Span id of the span that sent the message (a link for one-way messages). */
  k?: string;
  /** Idempotency key and how long its outcome is kept (ms). */
  i?: { k: string; w: number };
  /** The reminder tick this message delivers: reminder name, tick id, scheduled time (ms). */
  rt?: { n: string; id: string; at: number };
  /** The grain that sent it from a turn, through its outbox, and the message's place among its effects. */
  o?: SenderMark;
  /** For an `ask` made in a turn: the grains (tags) waiting for its reply, the first asker first. */
  w?: string[];
}

/** Longest chain of grains waiting on one another's `ask`s that a message carries. */
export const MAX_CALL_CHAIN = 64;

/** A message's outcome as kept for its idempotency key: what a duplicate gets. */
export type IdempotentOutcome = { ok: true; v: string } | { ok: false; e: import('../errors/error-converter.ts').ErrorData };

/** An `ask` reply as published on the caller's reply channel. */
export type ReplyMessage =
  | { i: string; ok: true; v: string }
  | { i: string; ok: false; e: import('../errors/error-converter.ts').ErrorData };

export function newCorrelationId(): string {
  return randomUUID();
}

/** Longest handler method name a message may carry. */
export const MAX_METHOD_NAME_LENGTH = 128;
/** Longest correlation id. */
export const MAX_CORRELATION_ID_LENGTH = 256;

export function isMethodName(method: unknown): method is string {
  return typeof method === 'string' && method.length > 0 && method.length <= MAX_METHOD_NAME_LENGTH && method.isWellFormed();
}

export function isCorrelationId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_CORRELATION_ID_LENGTH && id.isWellFormed();
}

/** A short, safe rendering of a value someone passed, for an error message. */
export function preview(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** Longest idempotency key, in UTF-16 code units. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 512;

export function isIdempotencyKey(key: unknown): key is string {
  return typeof key === 'string' && key.length > 0 && key.length <= MAX_IDEMPOTENCY_KEY_LENGTH && key.isWellFormed();
}

/** A retention window Redis accepts as PX: whole milliseconds, at least 1. */
export function isRetentionMs(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && ms > 0;
}

/** Checks a job's data is an envelope this version understands; foreign jobs are refused. */
export function asEnvelope(data: unknown): MessageEnvelope | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const e = data as Partial<MessageEnvelope>;
  if (e.v !== 1 || !isMethodName(e.m) || typeof e.a !== 'string' || !isCorrelationId(e.c)) {
    return undefined;
  }
  if (e.r !== undefined && (typeof e.r !== 'object' || typeof e.r.c !== 'string' || typeof e.r.i !== 'string')) {
    return undefined;
  }
  // The retention window becomes a PX in the turn's commit: a whole, positive number of ms.
  if (e.i !== undefined && (typeof e.i !== 'object' || e.i === null || !isIdempotencyKey(e.i.k) || !isRetentionMs(e.i.w))) {
    return undefined;
  }
  if (e.o !== undefined && !isSenderMark(e.o)) return undefined;
  if (
    e.w !== undefined &&
    (!Array.isArray(e.w) || e.w.length > MAX_CALL_CHAIN || e.w.some((tag) => typeof tag !== 'string' || tag.length > 2_048))
  ) {
    return undefined;
  }
  // Trace fields are best-effort: malformed ones are dropped, the message is still delivered.
  const badTrace = e.x !== undefined && (typeof e.x !== 'object' || e.x === null || Object.values(e.x).some((v) => typeof v !== 'string'));
  if (badTrace || (e.k !== undefined && typeof e.k !== 'string')) {
    const { x: _x, k: _k, ...rest } = e;
    return rest as MessageEnvelope;
  }
  return e as MessageEnvelope;
}
