import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { connect, Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CARRIED_DATA_BYTES, parseWakeEntry } from '../src/directory/wake-entry.ts';
import { GrainId } from '../src/grain/grain-id.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * On one Redis a message's wake-up goes right behind its enqueue, in the same round trip: one
 * script reads the grain's owner and wakes it, but only while that silo takes wake-ups. Otherwise
 * the sender routes the wake-up itself.
 */
describe('the wake-up sent behind an enqueue (wakeOwner)', () => {
  let redis: ReturnType<typeof registerScripts>;
  beforeAll(() => {
    redis = registerScripts(new Redis(inject('redisUrl')));
  });
  afterAll(() => redis?.disconnect());

  const grain = GrainId.of('Counter', 'c/1');
  const wake = (keys: RedisKeys, largest = CARRIED_DATA_BYTES) =>
    redis.wakeOwner(
      keys.directory(grain),
      keys.mailbox(grain, 'wait'),
      keys.mailbox(grain, 'active'),
      keys.siloKeyStart(),
      grain.tag,
      keys.mailbox(grain, ''),
      largest,
    );
  /** A message waiting in the grain's mailbox (the script wakes no one for an empty one). */
  const queued = (keys: RedisKeys) => redis.lpush(keys.mailbox(grain, 'wait'), '1');

  for (const status of ['active', 'joining', 'stopping'] as const) {
    it(`wakes an owner that is ${status}: its inbox gets the grain's tag`, async () => {
      const keys = new RedisKeys(freshPrefix(`wake-${status}`));
      await redis.hset(keys.directory(grain), 'silo', 'silo-1', 'epoch', '3');
      await redis.hset(keys.siloInfo('silo-1'), 'status', status);
      await queued(keys);
      expect(await wake(keys)).toBe(1);
      expect(await redis.lrange(keys.siloInbox('silo-1'), 0, -1)).toEqual([grain.tag]);
    });
  }

  for (const status of ['left', 'dead', undefined] as const) {
    it(`leaves routing to the sender when the owner is ${status ?? 'unknown'}, and pushes nothing`, async () => {
      const keys = new RedisKeys(freshPrefix(`wake-${status ?? 'unknown'}`));
      await redis.hset(keys.directory(grain), 'silo', 'silo-2', 'epoch', '1');
      if (status !== undefined) await redis.hset(keys.siloInfo('silo-2'), 'status', status);
      await queued(keys);
      expect(await wake(keys)).toBe(0);
      expect(await redis.exists(keys.siloInbox('silo-2'))).toBe(0);
    });
  }

  it('leaves routing to the sender when no silo owns the grain', async () => {
    const keys = new RedisKeys(freshPrefix('wake-none'));
    await queued(keys);
    expect(await wake(keys)).toBe(0);
    expect(await redis.keys(`${keys.prefix}:s:*`)).toEqual([]);
  });

  describe('carrying the message', () => {
    /** An owner that is active with epoch 3, and job 7 (never started) waiting in the mailbox. */
    const owned = async (label: string) => {
      const keys = new RedisKeys(freshPrefix(label));
      await redis.hset(keys.directory(grain), 'silo', 'silo-4', 'epoch', '3');
      await redis.hset(keys.siloInfo('silo-4'), 'status', 'active');
      await redis.hset(keys.job(grain, '7'), 'name', 'add', 'data', '{"m":"add","a":"[1]"}');
      await redis.lpush(keys.mailbox(grain, 'wait'), '7');
      return keys;
    };
    const inbox = (keys: RedisKeys) => redis.lrange(keys.siloInbox('silo-4'), 0, -1);

    it("carries the mailbox's only message, never started, with the owner's epoch", async () => {
      const keys = await owned('carry-only');
      expect(await wake(keys)).toBe(1);
      const [entry] = await inbox(keys);
      expect(parseWakeEntry(entry as string)).toEqual({
        tag: grain.tag,
        raw: grain.tag,
        recover: false,
        carried: { epoch: '3', jobId: '7', name: 'add', data: '{"m":"add","a":"[1]"}' },
      });
    });

    const plain: [string, (keys: RedisKeys) => Promise<unknown>, number?][] = [
      ['another message waits', (keys) => redis.lpush(keys.mailbox(grain, 'wait'), '8')],
      ['a message is taken', (keys) => redis.lpush(keys.mailbox(grain, 'active'), '6')],
      ['the message was started before', (keys) => redis.hset(keys.job(grain, '7'), 'ats', '1')],
      ['its data is over the limit', async () => undefined, 20],
      ['its data is empty', (keys) => redis.hset(keys.job(grain, '7'), 'data', '')],
    ];
    for (const [when, arrange, largest] of plain) {
      it(`wakes with the plain tag when ${when}`, async () => {
        const keys = await owned(`carry-not-${when.replaceAll(' ', '-')}`);
        await arrange(keys);
        expect(await wake(keys, largest)).toBe(1);
        expect(await inbox(keys)).toEqual([grain.tag]);
      });
    }
  });

  it('wakes no one while nothing waits in the mailbox, and says so (2)', async () => {
    const keys = new RedisKeys(freshPrefix('wake-empty'));
    await redis.hset(keys.directory(grain), 'silo', 'silo-3', 'epoch', '1');
    await redis.hset(keys.siloInfo('silo-3'), 'status', 'active');
    expect(await wake(keys)).toBe(2);
    expect(await redis.exists(keys.siloInbox('silo-3'))).toBe(0);
  });
});

/**
 * The wake-up goes behind the enqueue without waiting for it. When Redis has lost BullMQ's add
 * script but not ours (a SCRIPT FLUSH, then another process loading ours), ioredis sends the add
 * again after its NOSCRIPT answer, so the wake-up runs first, on an empty mailbox: the sender must
 * wake the grain again once the enqueue is acknowledged, or the message waits for another message.
 */
describe('a wake-up that ran before its enqueue', () => {
  it('is sent again once the enqueue is acknowledged, and the message runs', async () => {
    const server = await startRedisServer();
    const silo = await Silo.start({ redis: server.url, keyPrefix: 'reorder', grains: [Counter], logLevel: 'silent' });
    const client = await connect({ redis: server.url, keyPrefix: 'reorder' });
    const admin = new Redis(server.url);
    try {
      const counter = client.getGrain(Counter, 'c');
      expect(await counter.ask('add', 1)).toBe(1); // every script used once on every connection
      await admin.script('FLUSH');
      await admin.script('LOAD', readFileSync(new URL('../src/directory/lua/wakeOwner-3.lua', import.meta.url), 'utf8'));
      await counter.send('add', 1);
      // Read in Redis, not with an ask: an ask would wake the grain itself.
      const count = () => admin.hget('reorder:g:{Counter/c}:state', 'count');
      await waitFor('the message to run', async () => ((await count()) === '{"json":2}' ? true : undefined), { timeoutMs: 5_000 });
      expect(await count()).toBe('{"json":2}');
    } finally {
      admin.disconnect();
      await client.close();
      await silo.stop();
      await server.stop();
    }
  });
});
