import { describe, expect, it } from 'vitest';
import { Inventory, OrderSaga, Payments, Pricing } from '../grains/order-saga.ts';
import { BrittleSaga, Stall, StallSaga } from './grains/saga-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';

const ended = (status: string) => status === 'completed' || status === 'compensated';

/** Sagas: steps as messages through the outbox, replies as messages, compensation in reverse. */
describe('sagas', () => {
  const cluster = inProcessSilo('saga', [OrderSaga, Inventory, Pricing, Payments, StallSaga, Stall, BrittleSaga]);
  const finished = (key: string) =>
    waitFor(`saga ${key} to end`, async () => {
      const state = await cluster.client.getGrain(OrderSaga, key).ask('get');
      return ended(state.saga.status) ? state : undefined;
    });

  it('completes when every step is done, each participant acting once', async () => {
    const { client } = cluster;
    await client.getGrain(OrderSaga, 'o1').ask('place', { id: 'o1', sku: 'ab', qty: 2, customer: 'ann' });
    const state = await finished('o1');
    expect(state.saga.status).toBe('completed');
    expect(state.path[0]).toBe('placed');
    expect(state.path.at(-1)).toBe('completed');
    expect([...state.path.slice(1, 4)].sort()).toEqual(['done charge', 'done quote', 'done reserve']);
    expect(state.saga.steps.find((s) => s.name === 'quote')?.value).toBe(400);
    const stock = await client.getGrain(Inventory, 'ab').ask('get');
    expect(stock).toMatchObject({ stock: 8, reserved: { o1: 2 }, reservations: 1, releases: 0 });
    expect(await client.getGrain(Payments, 'ann').ask('get')).toMatchObject({ charged: { o1: 400 }, charges: 1, refunds: 0 });
  });

  it('undoes the completed steps, in reverse order and once each, when a step fails', async () => {
    const { client } = cluster;
    // 5 x 300 = 1,500: over the card's limit, so the charge fails; stock was reserved meanwhile.
    await client.getGrain(OrderSaga, 'o2').ask('place', { id: 'o2', sku: 'abc', qty: 5, customer: 'bob' });
    const state = await finished('o2');
    expect(state.saga.status).toBe('compensated');
    expect(state.saga.failure).toBe('charge: card declined (1500 over 1000)');
    expect(state.path.at(-1)).toBe('compensated (charge: card declined (1500 over 1000))');
    expect(state.path.filter((p) => p.startsWith('undone'))).toEqual(['undone reserve']);
    expect(await client.getGrain(Inventory, 'abc').ask('get')).toMatchObject({ stock: 10, reserved: {}, reservations: 1, releases: 1 });
    expect(await client.getGrain(Payments, 'bob').ask('get')).toMatchObject({ charged: {}, charges: 0, refunds: 0 });
  });

  it('compensates when a step does not answer in time, and undoes a step that answers late', async () => {
    const { client } = cluster;
    const saga = client.getGrain(StallSaga, 's1');
    await saga.ask('start', 300);
    const state = await waitFor('the saga to time out and compensate', async () => {
      const s = await saga.ask('get');
      return s.saga.status === 'compensated' ? s : undefined;
    });
    expect(state.saga.failure).toBe('timed out waiting for slow');
    expect(state.ends).toEqual(['compensated']);
    expect(await client.getGrain(Stall, 's1-quick').ask('get')).toMatchObject({ did: 1, undid: 1 });
    // The slow step did its work after all: the saga undoes it as soon as it says so.
    await client.getGrain(Stall, 's1-slow').ask('answer');
    const slow = await waitFor('the late step to be undone', async () => {
      const s = await client.getGrain(Stall, 's1-slow').ask('get');
      return s.undid === 1 ? s : undefined;
    });
    expect(slow).toMatchObject({ did: 1, undid: 1, pending: [] });
    expect((await saga.ask('get')).ends).toEqual(['compensated']);
  });

  it('refuses a mode that is neither parallel nor sequence, and starts nothing', async () => {
    const saga = cluster.client.getGrain(BrittleSaga, 'bogus');
    await expect(saga.ask('startIn', 'bogus')).rejects.toMatchObject({ message: `a saga's mode is 'parallel' or 'sequence', got "bogus"` });
    expect((await saga.ask('get')).saga.status).toBe('idle');
  });

  it('keeps going when a compensation fails, and ends as compensationFailed with its reason', async () => {
    const saga = cluster.client.getGrain(BrittleSaga, 'b1');
    await saga.ask('start');
    const state = await waitFor('the saga to end', async () => {
      const s = await saga.ask('get');
      return s.ends.length > 0 ? s : undefined;
    });
    expect(state.ends).toEqual(['compensationFailed']);
    expect(state.saga.status).toBe('compensationFailed');
    expect(state.saga.failure).toBe('c: refused');
    expect(state.saga.steps.map((s) => [s.name, s.status, s.reason])).toEqual([
      ['a', 'compensationFailed', 'cannot undo'],
      ['b', 'compensated', undefined],
      ['c', 'failed', 'refused'],
    ]);
    expect(await cluster.client.getGrain(Stall, 'b1-b').ask('get')).toMatchObject({ did: 1, undid: 1 });
  });
});
