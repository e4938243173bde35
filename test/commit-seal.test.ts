import { moveToActive } from 'bullmq/dist/esm/scripts/moveToActive-11.js';
import { moveToFinished } from 'bullmq/dist/esm/scripts/moveToFinished-14.js';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { connect, Grain, Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';

const gates = new Map<string, Promise<void>>();
/** Called when a gated turn has started. */
const started = new Map<string, () => void>();

/** Counts what it is told to add, once the test lets its turn go on. */
class Gated extends Grain<{ total: number; runs: number }> {
  static readonly type = 'Gated';
  initialState() {
    return { total: 0, runs: 0 };
  }
  async add(n: number) {
    started.get(this.key)?.();
    await gates.get(this.key);
    this.state.total += n;
    return this.state.total;
  }
  async get() {
    return this.state.total;
  }
}

/**
 * A turn's acknowledgement lands only with its commit: BullMQ's moveToFinished, queued behind our
 * commit script in the same MULTI, presents the token only that script (when it commits) puts into
 * the message's lock. Here the commit script is missing from Redis while BullMQ's are there, as a
 * restarted Redis can leave it (ioredis then believes it loaded): the acknowledgement must fail
 * with it, and the message run again, once.
 */
describe('an acknowledgement without its commit', () => {
  it('cannot land: with the commit script gone from Redis, the message is not acknowledged and runs again', async () => {
    const server = await startRedisServer();
    const silo = await Silo.start({ redis: server.url, keyPrefix: 'seal', grains: [Gated], logLevel: 'silent', turnBatchSize: 1 });
    const client = await connect({ redis: server.url, keyPrefix: 'seal' });
    const admin = new Redis(server.url);
    try {
      expect(await client.getGrain(Gated, 'g').ask('add', 1)).toBe(1); // every script used once on the turn connection
      let open = () => undefined as void;
      gates.set('g', new Promise<void>((resolve) => (open = resolve)));
      const turnStarted = new Promise<void>((resolve) => started.set('g', resolve));
      const added = client
        .getGrain(Gated, 'g')
        .with({ timeoutMs: 10_000 })
        .ask('add', 10)
        .catch((error: unknown) => error);
      await turnStarted;
      // The scripts vanish from Redis; BullMQ's come back, ours does not.
      await admin.script('FLUSH');
      await admin.script('LOAD', moveToFinished.content);
      await admin.script('LOAD', moveToActive.content);
      open();
      const answer = await added;
      // Acknowledged without its commit, the message would be gone: 1, and the ask timed out.
      expect(await client.getGrain(Gated, 'g').ask('get')).toBe(11);
      expect(answer).toBe(11);
      expect(await admin.hget('seal:g:{Gated/g}:state', 'total')).toBe('{"json":11}');
    } finally {
      gates.delete('g');
      started.delete('g');
      admin.disconnect();
      await client.close();
      await silo.stop();
      await server.stop();
    }
  });
});
