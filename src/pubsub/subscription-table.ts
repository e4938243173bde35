import { execEach } from '../redis/commands.ts';
import type { RedisClient } from '../redis/connection.ts';
import { InvalidGrainClassError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import { hasWildcards, matchSegments, patternBucket, patternSegments, topicSegments } from './topic-pattern.ts';

/** A grain that receives a topic's messages, and the handler that gets them. */
export interface Subscriber {
  grain: GrainId;
  method: string;
}

/**
 * Every grain of a type receives the topics matching `pattern`, the grain's key being the
 * topic's segment at index `key` (0-based): `{ pattern: 'order.?.status', key: 1, method: 'onStatus' }`
 * sends `order.42.status` to the grain keyed `42`.
 */
export interface ImplicitSubscription {
  readonly pattern: string;
  readonly key: number;
  readonly method: string;
}

/**
 * Durable topic subscriptions of grains, indexed so a publish reads only what can match: the
 * subscribers of its exact topic, and the wildcard patterns that share its first segment or start
 * with a wildcard; never every subscription.
 */
export class SubscriptionTable {
  constructor(
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
  ) {}

  async subscribe(grain: GrainId, pattern: string, method: string): Promise<void> {
    const segments = patternSegments(pattern);
    const member = `${grain.tag} ${method}`;
    const previous = await this.redis.hget(this.keys.grainSubscriptions(grain), pattern);
    if (previous !== null && previous !== method) await this.#remove(grain, pattern, previous);
    await this.redis.hset(this.keys.grainSubscriptions(grain), pattern, method);
    if (hasWildcards(segments)) {
      const bucket = patternBucket(segments);
      await this.redis.subscribePattern(this.keys.patternBucket(bucket), this.keys.patternSubscribers(bucket, pattern), member, pattern);
    } else {
      await this.redis.sadd(this.keys.exactSubscribers(pattern), member);
    }
  }

  /** Resolves with whether the grain was subscribed to `pattern`. */
  /** Throws when `pattern` is not a valid subscription pattern. */
  check(pattern: string): void {
    patternSegments(pattern);
  }

  /** Whether `grain` is subscribed to `pattern`. */
  async has(grain: GrainId, pattern: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.grainSubscriptions(grain), pattern)) === 1;
  }

  async unsubscribe(grain: GrainId, pattern: string): Promise<boolean> {
    const method = await this.redis.hget(this.keys.grainSubscriptions(grain), pattern);
    if (method === null) return false;
    await this.#remove(grain, pattern, method);
    await this.redis.hdel(this.keys.grainSubscriptions(grain), pattern);
    return true;
  }

  async list(grain: GrainId): Promise<{ pattern: string; method: string }[]> {
    const fields = await this.redis.hgetall(this.keys.grainSubscriptions(grain));
    return Object.entries(fields)
      .map(([pattern, method]) => ({ pattern, method }))
      .sort((a, b) => a.pattern.localeCompare(b.pattern));
  }

  /** Records the implicit subscriptions of a grain type (a silo hosting it does, at start). */
  async registerImplicit(type: string, subscriptions: readonly ImplicitSubscription[]): Promise<void> {
    if (subscriptions.length === 0) return;
    const fields = subscriptions.flatMap((s) => [`${type} ${s.pattern}`, JSON.stringify({ key: s.key, method: s.method })]);
    await this.redis.hset(this.keys.implicitSubscriptions(), ...fields);
  }

  /** Every grain (and handler) a publish on `topic` goes to, each once. */
  async subscribersOf(topic: string): Promise<Subscriber[]> {
    const segments = topicSegments(topic);
    const first = segments[0] as string;
    const [exact, literalRoot, wildRoot, implicit] = await Promise.all([
      this.redis.smembers(this.keys.exactSubscribers(topic)),
      this.redis.hkeys(this.keys.patternBucket(first)),
      first === '*' ? Promise.resolve([]) : this.redis.hkeys(this.keys.patternBucket('*')),
      this.redis.hgetall(this.keys.implicitSubscriptions()),
    ]);
    const matched = [
      ...literalRoot.map((pattern) => ({ bucket: first, pattern })),
      ...wildRoot.map((pattern) => ({ bucket: '*', pattern })),
    ].filter(({ pattern }) => matchSegments(patternSegments(pattern), segments));
    const replies = await execEach(
      this.redis,
      matched.map(({ bucket, pattern }) => ['smembers', this.keys.patternSubscribers(bucket, pattern)]),
    );
    const members = new Set(exact);
    for (const [error, list] of replies) {
      if (error !== null) throw error;
      for (const member of list as string[]) members.add(member);
    }
    const subscribers = new Map<string, Subscriber>();
    for (const member of members) {
      const [tag, method] = member.split(' ');
      if (tag === undefined || method === undefined) continue;
      try {
        // Keyed by the current tag: a member an older version wrote (%-encoded tag) and one
        // written since for the same grain and method are one subscriber.
        const grain = GrainId.fromTag(tag);
        subscribers.set(`${grain.tag} ${method}`, { grain, method });
      } catch {
        // a malformed entry is skipped, not fatal to the publish
      }
    }
    for (const [field, text] of Object.entries(implicit)) {
      const space = field.indexOf(' ');
      const type = field.slice(0, space);
      const pattern = field.slice(space + 1);
      if (!matchSegments(patternSegments(pattern), segments)) continue;
      const { key, method } = JSON.parse(text) as { key: number; method: string };
      const grainKey = segments[key];
      if (grainKey === undefined) continue;
      const grain = GrainId.of(type, grainKey);
      subscribers.set(`${grain.tag} ${method}`, { grain, method });
    }
    return [...subscribers.values()];
  }

  async #remove(grain: GrainId, pattern: string, method: string): Promise<void> {
    const segments = patternSegments(pattern);
    const member = `${grain.tag} ${method}`;
    if (hasWildcards(segments)) {
      const bucket = patternBucket(segments);
      await this.redis.unsubscribePattern(this.keys.patternBucket(bucket), this.keys.patternSubscribers(bucket, pattern), member, pattern);
    } else {
      await this.redis.srem(this.keys.exactSubscribers(pattern), member);
    }
  }
}

/** Checks a grain class's implicit subscriptions against its handlers. */
export function validateImplicitSubscriptions(
  type: string,
  handlers: ReadonlySet<string>,
  subscriptions: unknown,
): readonly ImplicitSubscription[] {
  if (subscriptions === undefined) return [];
  if (!Array.isArray(subscriptions)) throw new InvalidGrainClassError(`${type}.implicitSubscriptions must be an array`);
  return subscriptions.map((s: Partial<ImplicitSubscription>) => {
    try {
      patternSegments(s.pattern as string);
    } catch (error) {
      throw new InvalidGrainClassError(`${type}.implicitSubscriptions: ${(error as Error).message}`);
    }
    if (!Number.isInteger(s.key) || (s.key as number) < 0)
      throw new InvalidGrainClassError(`${type}.implicitSubscriptions: key must be a segment index (0, 1, ...)`);
    if (typeof s.method !== 'string' || !handlers.has(s.method)) {
      throw new InvalidGrainClassError(`${type}.implicitSubscriptions: ${String(s.method)} is not a handler of ${type}`);
    }
    return { pattern: s.pattern as string, key: s.key as number, method: s.method };
  });
}
