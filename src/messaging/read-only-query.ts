/*
 * A direct read-only call (see `readOnly`): what a client publishes on the channel of the silo
 * that owns the grain, and the code that silo answers with when it cannot serve it.
 */

/** A direct read-only call as a client publishes it on the owning silo's query channel. */
export interface ReadOnlyQuery {
  /** The grain's tag. */
  g: string;
  /** The read-only handler. */
  m: string;
  /** Its arguments, serialized. */
  a: string;
  /** Correlation id. */
  c: string;
  /** Where to reply: the client's id and the request id. */
  r: { c: string; i: string };
}

/** What a silo answers when it holds no valid activation of the grain: the caller goes through the mailbox. */
export const NOT_SERVED_CODE = 'READ_ONLY_NOT_SERVED';

/** Queries larger than this are not read (arguments travel through the mailbox's limits otherwise). */
export const MAX_QUERY_BYTES = 1024 * 1024;

/** The query in `text`, if it reads as one. */
export function parseQuery(text: string): ReadOnlyQuery | undefined {
  try {
    const q = JSON.parse(text) as Partial<ReadOnlyQuery> | null;
    const strings = [q?.g, q?.m, q?.a, q?.c, q?.r?.c, q?.r?.i];
    return strings.every((value) => typeof value === 'string' && value.length <= MAX_QUERY_BYTES) ? (q as ReadOnlyQuery) : undefined;
  } catch {
    return undefined;
  }
}
