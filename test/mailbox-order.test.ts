import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GrainId } from '../src/grain/grain-id.ts';
import { createMailboxBackend } from '../src/mailbox/mailbox-backend.ts';
import { GrainMailbox } from '../src/mailbox/grain-mailbox.ts';
import { openTurnConnection } from '../src/mailbox/turn-connection.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { freshPrefix } from './support/prefix.ts';

/**
 * The mailbox primitives that keep a grain's order when two activations hold its messages at
 * once: a stale activation (a paused silo that lost the grain) holds an older message while the
 * owner takes newer ones. Each lets go of what it holds, and recovery puts everything back in one
 * step, in the order it was taken. (Giving messages back to the head one at a time made whoever
 * pushed last run first: the chaos suite caught newer messages running before older ones.)
 */
describe('mailbox order with two holders', () => {
  let redis: ReturnType<typeof registerScripts>;
  let turns: ReturnType<typeof openTurnConnection>;

  beforeAll(() => {
    redis = registerScripts(new Redis(inject('redisUrl')));
    turns = openTurnConnection(inject('redisUrl'), 'mailbox-order-test');
  });
  afterAll(() => {
    redis?.disconnect();
    turns?.disconnect();
  });

  /** A grain's mailbox with eight queued messages, seen by the owner (silo A) and a stale activation (silo B). */
  async function twoHolders(label: string) {
    const keys = new RedisKeys(freshPrefix(label));
    const root = await createMailboxBackend(redis, keys, { lockDurationMs: 30_000 });
    const grain = GrainId.of('Ordered', 'one');
    const queue = new Queue(keys.queueName(grain), { connection: redis, prefix: keys.bullPrefix });
    for (let seq = 1; seq <= 8; seq++) await queue.add('m', { seq });
    await queue.close();
    const mailbox = (silo: string) => new GrainMailbox(root, redis, turns, keys, grain, `${silo}:${grain.tag}`, 30_000);
    return { owner: mailbox('siloA'), stale: mailbox('siloB') };
  }
  const seqs = (taken: { messages: { data: unknown }[] }) => taken.messages.map((m) => (m.data as { seq: number }).seq);

  for (const first of ['stale', 'owner'] as const) {
    it(`both let go (the ${first} first), and one recovery puts all back in order`, async () => {
      const { owner, stale } = await twoHolders(`order-${first}`);
      const older = await stale.take(1);
      const newer = await owner.take(3);
      expect(seqs(older)).toEqual([1]);
      expect(seqs(newer)).toEqual([2, 3, 4]);
      expect(newer.foreignTaken).toBe(true);
      if (first === 'stale') {
        await stale.release(older.messages);
        await owner.release(newer.messages);
      } else {
        await owner.release(newer.messages);
        await stale.release(older.messages);
      }
      expect(await owner.recoverTaken(async () => false)).toEqual({ moved: 4, locked: 0 });
      const again = await owner.take(8);
      expect(seqs(again)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(again.foreignTaken).toBe(false);
    });
  }

  it('waits while the stale holder still holds its lock, and takes it back once that holder is known gone', async () => {
    const { owner, stale } = await twoHolders('order-locked');
    await stale.take(1);
    const newer = await owner.take(2);
    await owner.release(newer.messages);
    expect(await owner.recoverTaken(async () => false)).toEqual({ moved: 0, locked: 1 });
    // Its silo declared dead: the owner releases that lock itself and recovers all in order.
    expect(await owner.recoverTaken(async (token) => token.startsWith('siloB:'))).toEqual({ moved: 3, locked: 0 });
    expect(seqs(await owner.take(8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
