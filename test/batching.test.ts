import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Silo } from 'redgrain';
import { startRedisServer, type RedisServer } from 'redgrain/testing';
import { Ledger } from './grains/test-grains.ts';
import { LogRecorder } from './support/log-recorder.ts';

/**
 * Batched turns: a busy grain takes several queued messages in one round trip, runs each as its
 * own turn in order, and commits their state and acknowledgements together. This file owns its
 * Redis, so it can count the MULTIs a drain makes.
 */
describe('batched turns', () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const execCalls = async (): Promise<number> => Number(/cmdstat_exec:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);

  /**
   * Queues messages to one Ledger while no silo runs, starts a silo with `turnBatchSize`, and
   * returns what the grain and its callers saw, and how many MULTIs the drain took.
   */
  async function drainQueued(keyPrefix: string, turnBatchSize: number, maxPackMessages?: number) {
    const log = new LogRecorder();
    // A silo has hosted Ledger under this prefix (so clients may address it), and none runs now.
    await (await Silo.start({ redis: server.url, keyPrefix, grains: [Ledger], logger: log })).stop();
    const client = await connect({ redis: server.url, keyPrefix, maxPackMessages });
    const ledger = client.getGrain(Ledger, 'busy');
    const credits = Array.from({ length: 40 }, (_, i) => `c${i}`);
    const asks: Promise<unknown>[] = [];
    for (const [i, id] of credits.entries()) {
      if (i === 10) asks.push(ledger.ask('creditThenFail', 'declined', 1_000).catch((error: unknown) => error));
      if (i === 20 || i === 30) await ledger.with({ idempotencyKey: 'pay-once' }).send('credit', 'once', 500);
      asks.push(ledger.ask('credit', id, 1));
    }
    const before = await execCalls();
    const silo = await Silo.start({ redis: server.url, keyPrefix, grains: [Ledger], logger: log, turnBatchSize });
    try {
      const replies = await Promise.all(asks);
      const multis = (await execCalls()) - before;
      const snapshot = await ledger.ask('snapshot');
      return { replies, multis, snapshot, log };
    } finally {
      await client.close();
      await silo.stop();
    }
  }

  it('drains a backlog in batches, one MULTI for many messages, each message still its own turn', async () => {
    const { replies, multis, snapshot, log } = await drainQueued('batched', 16);
    // Each ask saw the balance as of its own turn: failures and the idempotent duplicate in between.
    const declined = replies[10];
    expect(declined).toMatchObject({ name: 'PaymentDeclinedError', code: 'PAYMENT_DECLINED' });
    const balances = replies.filter((r) => r !== declined);
    expect(balances).toEqual(Array.from({ length: 40 }, (_, i) => BigInt(i + 1 + (i >= 20 ? 500 : 0))));
    // The failed turn rolled back only its own changes; the duplicate ran once.
    expect(snapshot.balance).toBe(540n);
    expect([...snapshot.entries.keys()]).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `c${i}`),
      'once',
      ...Array.from({ length: 20 }, (_, i) => `c${i + 20}`),
    ]);
    expect(snapshot.notes).toEqual([]);
    // 43 messages in far fewer round trips than messages (activation and the state read included).
    expect(multis).toBeGreaterThan(0);
    expect(multis).toBeLessThan(15);
    log.expectQuiet();
  });

  it('with turnBatchSize 1 and packing off commits every message in its own MULTI, with the same results', async () => {
    const { replies, multis, snapshot } = await drainQueued('unbatched', 1, 1);
    expect(replies.filter((r) => typeof r === 'bigint')).toHaveLength(40);
    expect(snapshot.balance).toBe(540n);
    expect(multis).toBeGreaterThanOrEqual(43);
  });

  it('refuses a turnBatchSize that is not an integer from 1 to 1000', async () => {
    for (const turnBatchSize of [0, 1.5, 1_001, Number.NaN]) {
      await expect(Silo.start({ redis: server.url, grains: [Ledger], turnBatchSize })).rejects.toThrow(
        `Silo option turnBatchSize is ${turnBatchSize}: must be a whole number of messages, from 1 to 1000`,
      );
    }
  });
});
