import { createHash } from 'node:crypto';
import type { GrainId } from '../grain/grain-id.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import type { ReminderSchedule } from '../reminders/reminder-table.ts';

/*
 * A grain's outbox: what its turns do to the rest of the cluster (messages to other grains,
 * publishes, reminders, subscriptions) is recorded during the turn, committed with the turn's
 * state in one fenced step (commitTurns.lua appends it to a list under the grain's own hash tag),
 * and only then carried out by the grain's activation (OutboxForwarder). A turn that throws, or
 * whose commit is fenced out, leaves no effect anywhere.
 */

/** One effect of a turn, as the outbox keeps it until it has been carried out. */
export type OutboxEffect =
  /** A message to a grain (a handler's `send`, or one subscriber of a `publish`). */
  | { k: 'send'; g: string; e: MessageEnvelope }
  /** A published topic, for the processes listening to it live (`client.subscribe`). */
  | { k: 'topic'; t: string; p: string }
  /** A reminder registered; `d` is when a one-shot one is due. */
  | { k: 'remind'; n: string; s: ReminderSchedule; m: string; a: string; d?: number }
  | { k: 'forget'; n: string }
  | { k: 'subscribe'; p: string; m: string }
  | { k: 'unsubscribe'; p: string };

/** An outbox entry: the effect and its place among the grain's effects (`<epoch>.<n>`), which makes it unique. */
export type OutboxEntry = OutboxEffect & { q: string };

/**
 * Where a message a grain sent came from, carried in its envelope (`o`): the sending grain (a
 * digest of its tag), the sender's activation epoch and the effect's number in that activation.
 * Messages from one grain to another arrive in this order, so the receiver keeps only the last
 * one it processed per sender and drops anything not after it: a message forwarded twice (its
 * forwarding was cut short and redone) is processed once.
 */
export interface SenderMark {
  /** Digest of the sending grain's tag. */
  s: string;
  /** The sending activation's epoch. */
  e: number;
  /** The effect's number within that activation. */
  n: number;
}

/** The digest of a grain's tag that names it as a sender (short: every message and record carries it). */
export function senderDigest(grain: GrainId): string {
  return createHash('sha256').update(grain.tag).digest('base64url').slice(0, 22);
}

/** Whether `data` is a well-formed sender mark (it comes from Redis, where anyone may write). */
export function isSenderMark(data: unknown): data is SenderMark {
  if (typeof data !== 'object' || data === null) return false;
  const { s, e, n } = data as Partial<SenderMark>;
  return typeof s === 'string' && s.length > 0 && s.length <= 64 && Number.isSafeInteger(e) && Number.isSafeInteger(n);
}

/** `a` comes strictly after `b` (`b` undefined: nothing seen yet). */
export function isAfter(a: SenderMark, b: Readonly<{ e: number; n: number }> | undefined): boolean {
  return b === undefined || a.e > b.e || (a.e === b.e && a.n > b.n);
}

/** A sender's last processed message as stored: `<epoch>.<n>`. */
export function encodeSeen({ e, n }: { e: number; n: number }): string {
  return `${e}.${n}`;
}

export function decodeSeen(text: string | null | undefined): { e: number; n: number } | undefined {
  if (text === null || text === undefined) return undefined;
  const [e, n] = text.split('.').map(Number);
  return Number.isSafeInteger(e) && Number.isSafeInteger(n) ? { e: e as number, n: n as number } : undefined;
}

/** Reads an outbox entry; undefined for anything redgrain did not write (logged and dropped by the caller). */
export function decodeEntry(text: string): OutboxEntry | undefined {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof entry !== 'object' || entry === null) return undefined;
  const { k, q } = entry as { k?: unknown; q?: unknown };
  const kinds = ['send', 'topic', 'remind', 'forget', 'subscribe', 'unsubscribe'];
  return typeof q === 'string' && typeof k === 'string' && kinds.includes(k) ? (entry as OutboxEntry) : undefined;
}

/**
 * The effects one turn records, in the order the handler made them. A `send` or `publish` is
 * checked asynchronously (its grain type registered, the subscribers read), so each is kept as a
 * promise, added at the call: order is the call order even when the handler does not await.
 */
export class TurnEffects {
  readonly #pending: (Promise<OutboxEffect[]> | OutboxEffect[])[] = [];

  /** Records effects; the returned promise settles once they are checked (rejects when refused). */
  add(effects: Promise<OutboxEffect[]> | OutboxEffect[]): Promise<void> {
    if (effects instanceof Promise) effects.catch(() => undefined); // the caller sees the rejection
    this.#pending.push(effects);
    const checked = Promise.resolve(effects).then(() => undefined);
    checked.catch(() => undefined); // a handler that does not await it must not end the process
    return checked;
  }

  /** The effects recorded so far that are already checked (remind, forget, subscribe, unsubscribe). */
  *known(): Iterable<OutboxEffect> {
    for (const effects of this.#pending) if (!(effects instanceof Promise)) yield* effects;
  }

  /** Every effect the turn made, in order; one the handler saw refused is not among them. */
  async settle(): Promise<OutboxEffect[]> {
    const settled = await Promise.allSettled(this.#pending.map((effects) => Promise.resolve(effects)));
    return settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
  }
}

/**
 * Numbers a turn's effects after the activation's earlier ones (`<epoch>.<n>`) and marks each
 * message with its sender, ready for the commit. `next` is the activation's next effect number.
 */
export function numberEffects(
  effects: readonly OutboxEffect[],
  sender: string,
  epoch: string,
  next: number,
): { entries: OutboxEntry[]; next: number } {
  const e = Number(epoch);
  const entries = effects.map((effect, i) => {
    const n = next + i;
    const entry: OutboxEntry =
      effect.k === 'send' ? { ...effect, e: { ...effect.e, o: { s: sender, e, n } }, q: '' } : { ...effect, q: '' };
    entry.q = `${epoch}.${n}`;
    return entry;
  });
  return { entries, next: next + effects.length };
}
