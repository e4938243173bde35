import { describe, expect, it } from 'vitest';
import { CallCycleError } from 'redgrain';
import { Hop } from './grains/cycle-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';

/** A grain that asks, through a chain of asks, a grain waiting for it fails at once, naming the chain. */
describe('call cycles', () => {
  const cluster = inProcessSilo('cycle', [Hop], { askTimeoutMs: 20_000 });

  it('refuses a cycle through other grains at once, naming it, and goes on', async () => {
    const start = Date.now();
    const error = await cluster.client
      .getGrain(Hop, 'a')
      .ask('ask', ['b', 'c', 'a'])
      .catch((e: unknown) => e);
    // Well under the 20 s ask timeout the cycle would have waited for.
    expect(Date.now() - start).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(CallCycleError);
    expect(error).toMatchObject({ code: 'CALL_CYCLE', chain: ['Hop/a', 'Hop/b', 'Hop/c', 'Hop/a'] });
    expect((error as Error).message).toBe(
      'call cycle: Hop/a -> Hop/b -> Hop/c -> Hop/a (each waits for the next; use send for one direction)',
    );
    // A chain without a cycle still works, through the same grains.
    expect(await cluster.client.getGrain(Hop, 'a').ask('ask', ['b', 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('refuses a grain asking itself, and lets a grain be asked back by one it only sent to', async () => {
    await expect(cluster.client.getGrain(Hop, 'self').ask('ask', ['self'])).rejects.toMatchObject({
      code: 'CALL_CYCLE',
      chain: ['Hop/self', 'Hop/self'],
    });
    // x sends to y (not waiting for it); y asks x back: no cycle.
    await cluster.client.getGrain(Hop, 'x').ask('sendThenBeAsked', 'y');
    await waitFor('y to have asked x back', async () => ((await cluster.client.getGrain(Hop, 'y').ask('hops')) === 1 ? true : undefined));
    expect(await cluster.client.getGrain(Hop, 'x').ask('hops')).toBe(1);
  });
});
