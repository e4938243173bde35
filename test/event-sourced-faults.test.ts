import { describe, expect, it } from 'vitest';
import { GrainId } from 'redgrain';
import { TestCluster } from 'redgrain/testing';
import { Account } from '../grains/account.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis, testClusterRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

const FAST_DETECTION = { REDGRAIN_HEARTBEAT_INTERVAL_MS: '500', REDGRAIN_MISSED_HEARTBEATS_LIMIT: '6' };
const ACCOUNTS = 6;
const DEPOSITS = 60;

/**
 * Event-sourced grains across silo processes, one killed with -9 while deposits arrive: every
 * acknowledged deposit is in its account's journal exactly once, in the order it was sent, and the
 * balance (a fold of the journal, from its snapshot) counts each once.
 */
describe('event-sourced grains under kill -9', () => {
  it('journals every deposit exactly once, in order, across a takeover', async () => {
    const cluster = await TestCluster.start({
      grains: ['grains/account.ts'],
      silos: 3,
      ...testClusterRedis(),
      keyPrefix: freshPrefix('es-kill'),
      env: FAST_DETECTION,
    });
    const redis = rawRedis();
    try {
      const client = await cluster.connect();
      const keys = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
      // Deposit i of every account is i + 1, so a deposit applied twice or lost shows in the sum.
      let acknowledged = 0;
      const depositAll = (from: number, to: number) =>
        Promise.all(
          keys.map(async (key) => {
            for (let i = from; i < to; i++) {
              await client.getGrain(Account, key).send('deposit', i + 1);
              acknowledged += 1;
            }
          }),
        );
      await depositAll(0, DEPOSITS / 2);
      // Every account active somewhere; the silo that holds acct-0 is killed while the second half arrives.
      await Promise.all(keys.map((key) => client.getGrain(Account, key).ask('balance')));
      const owner = await redis.hget(`${cluster.keyPrefix}:g:{${GrainId.of('Account', 'acct-0').tag}}:dir`, 'silo');
      const victim = cluster.silos.find((silo) => silo.id === owner);
      if (victim === undefined) throw new Error(`acct-0 is owned by ${owner}, not one of the cluster's silos`);
      // Killed while the second half is being sent and processed.
      const secondHalf = depositAll(DEPOSITS / 2, DEPOSITS);
      await waitFor(
        'a few deposits of the second half',
        () => (acknowledged >= (ACCOUNTS * DEPOSITS) / 2 + ACCOUNTS * 3 ? true : undefined),
        {
          everyMs: 5,
        },
      );
      victim.signal('SIGKILL');
      await secondHalf;
      expect(acknowledged).toBe(ACCOUNTS * DEPOSITS);

      const expected = (DEPOSITS * (DEPOSITS + 1)) / 2;
      const balances = await waitFor(
        'every deposit to be applied',
        async () => {
          const all = await Promise.all(keys.map((key) => client.getGrain(Account, key).ask('balance')));
          return all.every((b) => b >= expected) ? all : undefined;
        },
        { timeoutMs: 60_000, everyMs: 250 },
      );
      expect(balances).toEqual(keys.map(() => expected));
      for (const key of keys) {
        const events = await client.readEvents(Account, key, { limit: 10_000 });
        expect(
          events.map((e) => [e.seq, e.event]),
          key,
        ).toEqual(Array.from({ length: DEPOSITS }, (_, i) => [i + 1, { type: 'Deposited', amount: i + 1 }]));
      }
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
  }, 120_000);
});
