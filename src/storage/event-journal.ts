import { InvalidOptionError } from '../errors/errors.ts';
import type { EventRange, EventSourcing, JournalEvent } from '../grain/event-sourced.ts';
import { deserialize } from '../messaging/serializer.ts';
import type { RedisClient } from '../redis/connection.ts';

/*
 * An event-sourced grain's journal: a Redis Stream under the grain's hash tag whose entry id
 * `0-<seq>` is the event's sequence number (1, 2, 3, ...), so a range of events is one XRANGE and
 * an append the commit did not expect fails inside the commit script. Fields: `v` the event
 * version, `e` the event (serialized like state), `c` the correlation id, `t` the time (ms).
 */

/** Events read per XRANGE while an activation replays its journal. */
export const REPLAY_PAGE = 1_000;
/** Events `readEvents` returns when the caller gives no limit. */
export const DEFAULT_EVENT_LIMIT = 1_000;

/** One journal entry as stored, not decoded yet. */
export interface StoredEvent {
  seq: number;
  version: number;
  text: string;
  correlationId: string;
  at: number;
}

/** A stream entry id `0-<seq>` as a stream range bound. */
export function entryId(seq: number): string {
  return `0-${seq}`;
}

/** Reads a stream entry written by the commit; throws, naming the entry, on anything else. */
export function parseEntry([id, fields]: [string, string[]]): StoredEvent {
  const match = /^0-(\d{1,15})$/.exec(id);
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i] as string, fields[i + 1] as string);
  const version = Number(values.get('v'));
  const at = Number(values.get('t'));
  const text = values.get('e');
  if (match === null || !Number.isSafeInteger(version) || version < 1 || !Number.isSafeInteger(at) || text === undefined) {
    throw new TypeError(`journal entry ${JSON.stringify(id.slice(0, 40))} is not an event redgrain wrote`);
  }
  return { seq: Number(match[1]), version, text, correlationId: values.get('c') ?? '', at };
}

/** The stored event in the class's current shape: deserialized, and upcast when stored with another version. */
export function decodeEvent(stored: StoredEvent, config: EventSourcing): { type: string } {
  let event: unknown;
  try {
    event = deserialize(stored.text);
  } catch (error) {
    throw new TypeError(`event ${stored.seq} cannot be read (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  // Written by a newer version of the class (a rolling deploy): this one cannot know its shape.
  if (stored.version > config.eventVersion) {
    throw new TypeError(`event ${stored.seq} has version ${stored.version}, newer than the class's eventVersion ${config.eventVersion}`);
  }
  if (stored.version !== config.eventVersion) event = config.upcast(event, stored.version);
  if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') {
    throw new TypeError(`event ${stored.seq} (version ${stored.version}) is not an event with a string \`type\` once upcast`);
  }
  return event as { type: string };
}

/** Reads a range of a journal, decoded and upcast (see `GrainClient.readEvents`). */
export async function readJournal(redis: RedisClient, key: string, config: EventSourcing, range: EventRange = {}): Promise<JournalEvent[]> {
  if (typeof range !== 'object' || range === null) throw new InvalidOptionError('range', String(range), 'must be { from?, to?, limit? }');
  const { from = 1, to, limit = DEFAULT_EVENT_LIMIT } = range;
  const check = (name: string, value: number): void => {
    if (!Number.isSafeInteger(value) || value < 1) throw new InvalidOptionError(name, String(value), 'must be a positive whole number');
  };
  check('from', from);
  if (to !== undefined) check('to', to);
  check('limit', limit);
  if (to !== undefined && to < from) return [];
  const entries = await redis.xrange(key, entryId(from), to === undefined ? '+' : entryId(to), 'COUNT', limit);
  return entries.map((entry) => {
    const stored = parseEntry(entry);
    const event = decodeEvent(stored, config);
    return {
      seq: stored.seq,
      type: event.type,
      event,
      version: stored.version,
      at: new Date(stored.at),
      correlationId: stored.correlationId,
    };
  });
}

/** The sequence number of a journal's last event (0 when it has none). */
export async function journalEnd(redis: RedisClient, key: string): Promise<number> {
  let top: [string, string[]][];
  try {
    top = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  } catch (error) {
    throw new JournalReadFailure(error);
  }
  const [entry] = top;
  return entry === undefined ? 0 : parseEntry(entry).seq;
}

/** Redis failed while an activation read its journal (retried like any Redis failure, not the grain's fault). */
export class JournalReadFailure extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original), { cause: original });
  }
}

/**
 * Reads a journal from event `from` to its end, page by page, handing each page to `apply` before
 * reading the next (so a long replay holds one page at a time). Checks that the events follow one
 * another with no gap from `from` on. Returns the last sequence number applied (`from - 1` for none).
 */
export async function replayJournal(
  redis: RedisClient,
  key: string,
  from: number,
  apply: (events: StoredEvent[]) => void,
): Promise<number> {
  let expected = from;
  for (;;) {
    let entries: [string, string[]][];
    try {
      entries = await redis.xrange(key, entryId(expected), '+', 'COUNT', REPLAY_PAGE);
    } catch (error) {
      throw new JournalReadFailure(error);
    }
    const page = entries.map(parseEntry);
    for (const stored of page) {
      if (stored.seq !== expected) {
        throw new TypeError(
          expected === 1
            ? `the journal starts at event ${stored.seq}, not 1: the events before it were trimmed (journalRetention 'snapshot') or lost`
            : `the journal jumps from event ${expected - 1} to ${stored.seq}`,
        );
      }
      expected += 1;
    }
    apply(page);
    if (page.length < REPLAY_PAGE) return expected - 1;
  }
}
