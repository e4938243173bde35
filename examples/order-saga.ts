/**
 * Sagas: orders that reserve stock, quote a price and charge a card at once, then complete, or
 * undo what was done when a step fails.
 *
 *   npm run example:saga       (starts a private Redis when REDIS_URL is not set)
 *
 * Prints the path of each order (its steps' replies, the compensations, the end) and exits with
 * code 0 only when every order ended completed or compensated.
 */
import { randomUUID } from 'node:crypto';
import { connect, Silo } from 'redgrain';
import { Inventory, OrderSaga, Payments, Pricing, type Order } from '../grains/order-saga.ts';
import { withRedis } from './support/redis.ts';

const orders: Order[] = [
  { id: 'o-1', sku: 'mug', qty: 2, customer: 'ann' }, // 600: completes
  { id: 'o-2', sku: 'mug', qty: 9, customer: 'bob' }, // only 8 mugs left: out of stock
  { id: 'o-3', sku: 'poster', qty: 3, customer: 'cy' }, // 1,800: over the card's limit
  { id: 'o-4', sku: 'pen', qty: 3, customer: 'dee' }, // 900: completes
];

const ok = await withRedis(async (redis) => {
  const keyPrefix = `saga-example-${randomUUID().slice(0, 8)}`;
  const grains = [OrderSaga, Inventory, Pricing, Payments];
  const silos = await Promise.all([1, 2].map(() => Silo.start({ redis, keyPrefix, grains, logLevel: 'warn' })));
  const client = await connect({ redis, keyPrefix });
  try {
    // One after another, so the stock each order sees is the one the previous left.
    let allEnded = true;
    for (const order of orders) {
      const saga = client.getGrain(OrderSaga, order.id);
      await saga.ask('place', order);
      const deadline = Date.now() + 30_000;
      let state = await saga.ask('get');
      while (state.saga.status !== 'completed' && state.saga.status !== 'compensated' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        state = await saga.ask('get');
      }
      console.log(`${order.id} (${order.qty} x ${order.sku} for ${order.customer}): ${state.saga.status}`);
      for (const step of state.path) console.log(`  ${step}`);
      allEnded &&= state.saga.status === 'completed' || state.saga.status === 'compensated';
    }
    for (const sku of ['mug', 'poster', 'pen']) {
      const { stock, reserved } = await client.getGrain(Inventory, sku).ask('get');
      console.log(`stock of ${sku}: ${stock} (reserved by ${Object.keys(reserved).join(', ') || 'nobody'})`);
    }
    return allEnded;
  } finally {
    await client.close();
    await Promise.all(silos.map((silo) => silo.stop()));
  }
});
process.exitCode = ok ? 0 : 1;
