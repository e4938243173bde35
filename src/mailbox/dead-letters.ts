import type { RedisClient } from '../redis/connection.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** Dead letters kept, oldest trimmed first. */
const MAX_DEAD_LETTERS = 10_000;

/** A message that kept killing or hanging its activation, set aside so its grain could go on. */
export interface DeadLetter {
  /** Id of the entry (a Redis stream id), for `redrive` and `discard`. */
  id: string;
  grainType: string;
  grainKey: string;
  method: string;
  reason: string;
  attempts: number;
  /** The silo that set it aside. */
  silo: string;
  at: Date;
  /** The message as it was stored (its envelope), re-enqueued by `redrive`. */
  message: unknown;
}

/**
 * The dead letters of one key prefix: a capped Redis stream. An entry is written before its
 * message is acknowledged, so a crash in between can list a message twice, never lose it.
 */
export class DeadLetterStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async add(letter: Omit<DeadLetter, 'id' | 'at'>): Promise<string> {
    const id = await this.redis.xadd(
      this.keys.deadLetters(),
      'MAXLEN',
      '~',
      MAX_DEAD_LETTERS,
      '*',
      'grain',
      GrainId.of(letter.grainType, letter.grainKey).tag,
      'method',
      letter.method,
      'reason',
      letter.reason,
      'attempts',
      String(letter.attempts),
      'silo',
      letter.silo,
      'message',
      JSON.stringify(letter.message ?? null),
    );
    return id ?? '';
  }

  /** Oldest first. */
  async list(limit = 100): Promise<DeadLetter[]> {
    const entries = await this.redis.xrange(this.keys.deadLetters(), '-', '+', 'COUNT', limit);
    return entries.map(([id, fields]) => toDeadLetter(id, fields));
  }

  /** The newest first. */
  async newest(limit = 100): Promise<DeadLetter[]> {
    const entries = await this.redis.xrevrange(this.keys.deadLetters(), '+', '-', 'COUNT', limit);
    return entries.map(([id, fields]) => toDeadLetter(id, fields));
  }

  /** How many dead letters are kept. */
  count(): Promise<number> {
    return this.redis.xlen(this.keys.deadLetters());
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const [entry] = await this.redis.xrange(this.keys.deadLetters(), id, id);
    return entry === undefined ? undefined : toDeadLetter(entry[0], entry[1]);
  }

  async remove(id: string): Promise<boolean> {
    return (await this.redis.xdel(this.keys.deadLetters(), id)) === 1;
  }
}

function toDeadLetter(id: string, flat: string[]): DeadLetter {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  // Anyone with access to the prefix may have written the entry: a malformed one is still listed
  // (as it is), so it can be looked at and discarded.
  let grain: { type: string; key: string };
  try {
    grain = GrainId.fromTag(f.grain ?? '');
  } catch {
    grain = { type: '', key: f.grain ?? '' };
  }
  let message: unknown;
  try {
    message = JSON.parse(f.message ?? 'null') as unknown;
  } catch {
    message = f.message;
  }
  return {
    id,
    grainType: grain.type,
    grainKey: grain.key,
    method: f.method ?? '',
    reason: f.reason ?? '',
    attempts: Number(f.attempts ?? 0),
    silo: f.silo ?? '',
    at: new Date(Number(id.split('-')[0])),
    message,
  };
}
