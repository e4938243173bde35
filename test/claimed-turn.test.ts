import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { stringify } from 'superjson';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Grain } from 'redgrain';
import { GrainId } from '../src/grain/grain-id.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';

/** Every run of `append`, in the order the handler ran, whether its turn committed or not. */
const runs: string[] = [];

class Journal extends Grain<{ items: string[] }> {
  static readonly type: string = 'Journal';
  initialState() {
    return { items: [] as string[] };
  }
  async append(item: string) {
    runs.push(item);
    this.state.items.push(item);
    return this.state.items.length;
  }
  async items() {
    return this.state.items;
  }
}

/** The same, with a bounded mailbox: its messages are never run before they are taken. */
class BoundedJournal extends Journal {
  static override readonly type = 'BoundedJournal';
  static readonly mailbox = { maxDepth: 100, overflow: 'drop-oldest' as const };
}

/**
 * On one Redis, the wake-up of a message sent to an idle grain carries the message when it is the
 * only one in the mailbox: the activation runs it while its take is under way, and commits behind
 * the take. Should the take find another message ahead of it, that commit writes nothing, the turn
 * is undone, and the messages run in mailbox order.
 */
describe('a turn claimed from its wake-up', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  const cluster = inProcessSilo('claimed', [Journal, BoundedJournal]);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });
  /** The outcome of each turn of `append` on grain `key`, in the order the turns ended. */
  const turnOutcomes = (key: string) =>
    exporter
      .getFinishedSpans()
      .filter((s) => s.name === 'process grain.Journal.{key}' && s.attributes['redgrain.grain.key'] === key)
      .map((s) => `${String(s.attributes['messaging.message.id'])}:${String(s.attributes['redgrain.message.outcome'])}`);

  it('runs an ask to an idle grain once, committed, with the mailbox left empty', async () => {
    const journal = cluster.client.getGrain(Journal, 'idle');
    expect(await journal.ask('items')).toEqual([]); // active and idle
    const keys = new RedisKeys(cluster.keyPrefix);
    const grain = GrainId.of('Journal', 'idle');
    runs.length = 0;
    expect(await journal.ask('append', 'a')).toBe(1);
    expect(await journal.ask('append', 'b')).toBe(2);
    expect(runs).toEqual(['a', 'b']);
    expect(await redis.llen(keys.mailbox(grain, 'wait'))).toBe(0);
    expect(await redis.llen(keys.mailbox(grain, 'active'))).toBe(0);
    expect(await redis.hget(keys.state(grain), 'items')).toBe(stringify(['a', 'b']));
  });

  /**
   * Two messages enqueued behind the silo's back (no wake-up), then a wake-up carrying the second
   * as if it were the only one: a claim's take finds the first.
   */
  let raced = { first: '', second: '' };
  const race = async (cls: typeof Journal | typeof BoundedJournal, key: string) => {
    const journal = cluster.client.getGrain(cls, key);
    expect(await journal.ask('items')).toEqual([]);
    const keys = new RedisKeys(cluster.keyPrefix);
    const grain = GrainId.of(cls.type, key);
    const connection = redis.duplicate();
    const queue = new Queue(keys.queueName(grain), { connection, prefix: keys.bullPrefix });
    const envelope = (item: string) => ({ v: 1, m: 'append', a: stringify([item]), c: `corr-${item}`, t: Date.now() });
    const first = await queue.add('append', envelope('first'));
    const second = await queue.add('append', envelope('second'));
    raced = { first: String(first.id), second: String(second.id) };
    const epoch = await redis.hget(keys.directory(grain), 'epoch');
    const carried = { e: epoch, j: second.id, t: grain.tag, n: 'append', d: JSON.stringify(envelope('second')) };
    runs.length = 0;
    await redis.lpush(keys.siloInbox(cluster.silo.id), `+${JSON.stringify(carried)}`);
    await waitFor('both messages to run', async () => (runs.includes('first') && runs.at(-1) === 'second' ? true : undefined), {
      timeoutMs: 5_000,
    });
    const items = await journal.ask('items');
    await queue.close();
    connection.disconnect();
    return items;
  };

  it('undoes a claimed turn whose message was not the next one, and runs the messages in mailbox order', async () => {
    expect(await race(Journal, 'raced')).toEqual(['first', 'second']);
    // The claimed run of `second` first (undone), then both in order.
    expect(runs).toEqual(['second', 'first', 'second']);
    // Its span says it was discarded (and it is not counted as processed); the two that committed completed.
    const { first, second } = raced;
    expect(turnOutcomes('raced')).toEqual([`${second}:discarded`, `${first}:completed`, `${second}:completed`]);
  });

  it('never runs a message to a bounded mailbox before it is taken (a sender dropping the oldest could drop it)', async () => {
    expect(await race(BoundedJournal, 'bounded')).toEqual(['first', 'second']);
    expect(runs).toEqual(['first', 'second']);
  });
});
