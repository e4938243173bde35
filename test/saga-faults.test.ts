import { describe, expect, it } from 'vitest';
import { TestCluster } from 'redgrain/testing';
import { Inventory, OrderSaga, Payments, Pricing, type Order } from '../grains/order-saga.ts';
import { freshPrefix } from './support/prefix.ts';
import { testClusterRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

const FAST_DETECTION = { REDGRAIN_HEARTBEAT_INTERVAL_MS: '500', REDGRAIN_MISSED_HEARTBEATS_LIMIT: '6' };
const SKUS = ['mug', 'pen', 'cap'];
const CUSTOMERS = ['ann', 'bob', 'cy', 'dee'];
const byText = (a: string, b: string) => a.localeCompare(b);

/**
 * Sagas across silo processes, one killed with -9 while they run: every saga ends (completed or
 * compensated), every step's effect happened once, and every compensation once.
 */
describe('sagas under kill -9', () => {
  it('ends every saga; each step and each compensation takes effect exactly once', async () => {
    const cluster = await TestCluster.start({
      grains: ['grains/order-saga.ts'],
      silos: 3,
      ...testClusterRedis(),
      keyPrefix: freshPrefix('saga-kill'),
      env: FAST_DETECTION,
    });
    try {
      const client = await cluster.connect();
      // 36 orders: some run out of stock (10 per SKU), some go over the card limit (1,000).
      const orders: Order[] = Array.from({ length: 36 }, (_, i) => ({
        id: `o${i}`,
        sku: SKUS[i % SKUS.length] as string,
        qty: 1 + (i % 4),
        customer: CUSTOMERS[i % CUSTOMERS.length] as string,
      }));
      const place = (order: Order) => client.getGrain(OrderSaga, order.id).ask('place', order);
      // Half before the kill (their steps and replies still in flight), half after it.
      await Promise.all(orders.slice(0, orders.length / 2).map(place));
      cluster.silos[0]?.signal('SIGKILL');
      await Promise.all(orders.slice(orders.length / 2).map(place));

      const states = await waitFor(
        'every saga to end',
        async () => {
          const all = await Promise.all(orders.map((order) => client.getGrain(OrderSaga, order.id).ask('get')));
          return all.every((s) => s.saga.status === 'completed' || s.saga.status === 'compensated') ? all : undefined;
        },
        { timeoutMs: 60_000, everyMs: 250 },
      );
      // One end each.
      for (const state of states) {
        expect(
          state.path.filter((p) => p === 'completed' || p.startsWith('compensated')),
          state.order?.id,
        ).toHaveLength(1);
      }
      const stepStatus = (state: (typeof states)[number], name: string) => state.saga.steps.find((s) => s.name === name)?.status;
      const happened = (status: string | undefined) => status === 'done' || status === 'compensated';
      for (const sku of SKUS) {
        const mine = states.filter((s) => s.order?.sku === sku);
        const stock = await client.getGrain(Inventory, sku).ask('get');
        const completed = mine.filter((s) => s.saga.status === 'completed');
        expect(stock.reservations, `reservations of ${sku}`).toBe(mine.filter((s) => happened(stepStatus(s, 'reserve'))).length);
        expect(stock.releases, `releases of ${sku}`).toBe(mine.filter((s) => stepStatus(s, 'reserve') === 'compensated').length);
        expect(stock.stock, `stock of ${sku}`).toBe(10 - completed.reduce((sum, s) => sum + (s.order?.qty ?? 0), 0));
        expect(Object.keys(stock.reserved).sort(byText)).toEqual(completed.map((s) => s.order?.id ?? '').sort(byText));
      }
      for (const customer of CUSTOMERS) {
        const mine = states.filter((s) => s.order?.customer === customer);
        const card = await client.getGrain(Payments, customer).ask('get');
        expect(card.charges, `charges of ${customer}`).toBe(mine.filter((s) => happened(stepStatus(s, 'charge'))).length);
        expect(card.refunds, `refunds of ${customer}`).toBe(mine.filter((s) => stepStatus(s, 'charge') === 'compensated').length);
        expect(Object.keys(card.charged).sort(byText)).toEqual(
          mine
            .filter((s) => s.saga.status === 'completed')
            .map((s) => s.order?.id ?? '')
            .sort(byText),
        );
      }
      expect((await client.getGrain(Pricing, 'catalogue').ask('get')).quotes).toBe(orders.length);
      const ends = states.map((s) => s.saga.status);
      process.stdout.write(
        `[saga] ${ends.filter((e) => e === 'completed').length} completed, ${ends.filter((e) => e === 'compensated').length} compensated after a kill -9\n`,
      );
      expect(ends.filter((e) => e === 'completed').length).toBeGreaterThan(0);
      expect(ends.filter((e) => e === 'compensated').length).toBeGreaterThan(0);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
