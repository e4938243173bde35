import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, InvalidOptionError } from 'redgrain';
import { Ledger } from './grains/test-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';
import { rawRedis, testRedis } from './support/redis.ts';

describe('idempotency keys', () => {
  const cluster = inProcessSilo('idem', [Ledger]);
  const { keyPrefix, log } = cluster;
  let redis: ReturnType<typeof rawRedis>;

  beforeAll(() => {
    redis = rawRedis();
  });
  afterAll(() => {
    redis?.disconnect();
  });

  it('processes a duplicate once; a duplicate ask gets the first result', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'once');
    expect(await ledger.with({ idempotencyKey: 'pay-1' }).ask('credit', 'pay-1', 10)).toBe(10n);
    // A retry after an uncertain send, and a retry of the ask: neither applies the credit again.
    await ledger.with({ idempotencyKey: 'pay-1' }).send('credit', 'pay-1', 10);
    expect(await ledger.with({ idempotencyKey: 'pay-1' }).ask('credit', 'pay-1', 10)).toBe(10n);
    expect(await ledger.with({ idempotencyKey: 'pay-2' }).ask('credit', 'pay-2', 5)).toBe(15n);
    expect((await ledger.ask('snapshot')).balance).toBe(15n);
    // The same key on another grain is another message.
    expect(await cluster.client.getGrain(Ledger, 'other').with({ idempotencyKey: 'pay-1' }).ask('credit', 'pay-1', 1)).toBe(1n);
  });

  it('gives a duplicate of a failed call the same error, without running it again', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'declined').with({ idempotencyKey: 'pay-9' });
    const first = await ledger.ask('creditThenFail', 'pay-9', 7).catch((error: unknown) => error);
    const declined = { name: 'PaymentDeclinedError', code: 'PAYMENT_DECLINED', message: 'payment of 7 declined' };
    expect(first).toMatchObject(declined);
    const again = await ledger.ask('creditThenFail', 'pay-9', 7).catch((error: unknown) => error);
    expect(again).toMatchObject(declined);
    const snapshot = await cluster.client.getGrain(Ledger, 'declined').ask('snapshot');
    expect(snapshot.balance).toBe(0n);
    // Only the first attempt reached the handler: the mailbox failed list holds one failure.
    expect((await cluster.inspector.grain('Ledger', 'declined')).mailbox.failed).toBe(1);
  });

  it('forgets a key after the retention window', async () => {
    const shortLived = await connect({ redis: testRedis(), keyPrefix, idempotencyWindowMs: 200 });
    try {
      const ledger = shortLived.getGrain(Ledger, 'window').with({ idempotencyKey: 'pay-w' });
      expect(await ledger.ask('credit', 'pay-w', 3)).toBe(3n);
      expect(await ledger.ask('credit', 'pay-w', 3)).toBe(3n);
      const record = `${keyPrefix}:g:{Ledger/window}:idem:pay-w`;
      await waitFor('the idempotency record to expire', async () => ((await redis.exists(record)) === 0 ? true : undefined));
      expect(await ledger.ask('credit', 'pay-w', 3)).toBe(6n);
    } finally {
      await shortLived.close();
    }
  });

  it('refuses a bad key and a bad window', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'bad');
    await expect(ledger.with({ idempotencyKey: '' }).send('credit', 'x', 1)).rejects.toThrow(
      new InvalidOptionError('idempotencyKey', '""', 'must be a non-empty string of at most 512 characters'),
    );
    await expect(ledger.with({ idempotencyKey: 'k'.repeat(513) }).send('credit', 'x', 1)).rejects.toThrow(/at most 512/);
    await expect(connect({ redis: testRedis(), keyPrefix, idempotencyWindowMs: 0 })).rejects.toThrow(
      new InvalidOptionError('connect option idempotencyWindowMs', '0', 'must be a whole number of ms, at least 1'),
    );
    log.expectQuiet([/handler failed/]);
  });
});
