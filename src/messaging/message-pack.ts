import { randomUUID } from 'node:crypto';
import type { MessageEnvelope } from './envelope.ts';

/*
 * A pack: several messages to one grain that one sender had queued at the same moment, travelling
 * as one BullMQ job (one add, one take, one acknowledgement) instead of one job each. The job is
 * named `pack:<n>` and its data is `{ v: 1, p: [envelope, ...] }`, oldest first. Each message in
 * it is still its own turn with its own reply, idempotency key, dead letter and span.
 */

/** The data of a pack job. */
export interface MessagePack {
  v: 1;
  /** The pack's own id: job ids start again once a mailbox is tidied, this never repeats. */
  i: string;
  p: MessageEnvelope[];
}

/** Most messages a pack read from Redis may hold; a bigger one is refused as malformed. */
export const MAX_PACK_MESSAGES = 1_000;

/** The BullMQ job name of a pack of `count` messages. */
export function packJobName(count: number): string {
  return `pack:${count}`;
}

/** The job data of a pack. */
export function toPack(envelopes: readonly MessageEnvelope[]): MessagePack {
  return { v: 1, i: randomUUID(), p: [...envelopes] };
}

/** What a pack's progress is recorded under: its own id, or (a pack redgrain did not write) its job id. */
export function packKey(jobId: string, data: unknown): string {
  const id = (data as { i?: unknown } | null)?.i;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? `pack:${id}` : `job:${jobId}`;
}

/**
 * The messages a job holds: a pack's, in order, or the job's data itself (one message). Each
 * entry is still unchecked (it comes from Redis); undefined for a pack too big to be ours.
 */
export function jobMessages(data: unknown): unknown[] | undefined {
  if (!isPack(data)) return [data];
  return data.p.length <= MAX_PACK_MESSAGES ? data.p : undefined;
}

/** Whether job data is a pack (the shape, not its messages). */
export function isPack(data: unknown): data is { v: 1; p: unknown[] } {
  return typeof data === 'object' && data !== null && (data as { v?: unknown }).v === 1 && Array.isArray((data as { p?: unknown }).p);
}

/**
 * How much of a pack's byte bound a message takes: the bytes of the message as the pack's job
 * data holds it (JSON, where its serialized arguments are escaped again and non-ASCII text takes
 * up to 3 bytes a character), so the bound holds for any content.
 */
export function packBytes(envelope: MessageEnvelope): number {
  return Buffer.byteLength(JSON.stringify(envelope));
}

/**
 * The state field that records how far a pack run one message per commit has got (see
 * TurnRunner): `{ j: packKey, d: messages committed, a: the pack's takes before the next one started }`.
 * It exists only while such a pack is under way, and is not part of the grain's state.
 */
export const PACK_PROGRESS_FIELD = '~pack';

export interface PackProgress {
  j: string;
  d: number;
  a: number;
}

/** Reads the progress field; undefined when absent or not ours. */
export function readPackProgress(text: string | undefined): PackProgress | undefined {
  if (text === undefined) return undefined;
  try {
    const { j, d, a } = JSON.parse(text) as Partial<PackProgress>;
    const whole = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    return typeof j === 'string' && whole(d) && whole(a) ? { j, d, a } : undefined;
  } catch {
    return undefined;
  }
}
