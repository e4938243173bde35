import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, Grain, Silo, type GrainClient, type ReminderInfo } from 'redgrain';
import { main } from '../src/cli/main.ts';
import { serialize } from '../src/messaging/serializer.ts';
import { freshPrefix } from './support/prefix.ts';

/** An account that credits, hears news and has reminders: every kind of data a grain keeps. */
class Account extends Grain<{ balance: number; news: string[]; pings: number }> {
  static readonly type = 'Account';

  initialState() {
    return { balance: 0, news: [] as string[], pings: 0 };
  }
  async credit(amount: number) {
    this.state.balance += amount;
    return this.state.balance;
  }
  async onNews(topic: string, data: string) {
    this.state.news.push(`${topic}:${data}`);
  }
  async ping() {
    this.state.pings += 1;
  }
  async read() {
    return { ...this.state, reminders: (await this.reminders()).map((r: ReminderInfo) => r.name) };
  }
  async drop(name: string) {
    return this.forget(name);
  }
}

class Bystander extends Grain<object> {
  static readonly type = 'Bystander';
  initialState() {
    return {};
  }
}

/** The tag an older version wrote: plain percent-encoding. */
const legacyTag = (key: string) => `Account/${encodeURIComponent(key)}`;

/**
 * Data as an older version left it for grains whose keys percent-encoding changes, written by
 * hand under %-encoded tags: state, a mailbox with two waiting messages, a wake-up in the type's
 * pending list and in a dead silo's grain set, a topic subscription, a one-shot and a repeating
 * reminder. Then `redgrain migrate-keys`, and a silo of this version picks it all up.
 */
describe('redgrain migrate-keys', () => {
  const keyPrefix = freshPrefix('migrate');
  let redis: Redis;
  let client: GrainClient | undefined;
  let silo: Silo | undefined;
  const reminders = () => new Queue('reminders', { connection: redis, prefix: `${keyPrefix}:q`, skipMetasUpdate: true });

  const migrate = async (...args: string[]): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    const code = await main(
      ['migrate-keys', '--redis', inject('redisUrl'), '--prefix', keyPrefix, ...args],
      (text) => lines.push(text),
      (text) => lines.push(text),
    );
    return { code, text: lines.join('\n') };
  };
  const keysUnderPrefix = async () => (await redis.keys(`${keyPrefix}:*`)).sort();

  beforeAll(async () => {
    redis = new Redis(inject('redisUrl'), { connectionName: 'migrate-test' });
    // A silo of this version registers the type, then stops: the cluster is offline.
    silo = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Account], logLevel: 'silent' });
    await silo.stop();
    silo = undefined;

    for (const [key, balance] of [
      ['a b', 5],
      ['ann@example.com', 7],
      ['plain', 1],
    ] as const) {
      await redis.hset(`${keyPrefix}:g:{${legacyTag(key)}}:state`, 'balance', serialize(balance, 'balance'));
    }
    const mailbox = new Queue(`{${legacyTag('a b')}}`, { connection: redis, prefix: `${keyPrefix}:q` });
    for (const amount of [10, 100]) {
      await mailbox.add('credit', { v: 1, m: 'credit', a: serialize([amount], 'args'), c: `legacy-${amount}`, t: Date.now() });
    }
    await mailbox.close();
    await redis.lpush(`${keyPrefix}:t:{Account}:pending`, legacyTag('a b'));
    await redis.sadd(`${keyPrefix}:s:{gone-silo}:grains`, legacyTag('a b'), legacyTag('plain'));
    await redis.sadd(`${keyPrefix}:sub:{=news.daily}`, `${legacyTag('ann@example.com')} onNews`);
    await redis.hset(`${keyPrefix}:g:{${legacyTag('ann@example.com')}}:subs`, 'news.daily', 'onNews');

    const queue = reminders();
    const tick = { m: 'ping', a: serialize([], 'args'), p: 'once' };
    await queue.add(
      'tick',
      { g: legacyTag('a b'), n: 'once', o: true, ...tick },
      { jobId: `once/${legacyTag('a b')}/once`, delay: 3_600_000, attempts: 5 },
    );
    await queue.upsertJobScheduler(
      `${legacyTag('a b')}/beat`,
      { every: 3_600_000, startDate: Date.now() + 3_600_000 },
      { name: 'tick', data: { g: legacyTag('a b'), n: 'beat', e: 3_600_000, ...tick } },
    );
    await queue.close();
    await redis.hset(
      `${keyPrefix}:g:{${legacyTag('a b')}}:reminders`,
      'once',
      JSON.stringify({ kind: 'once', method: 'ping', schedule: { after: 3_600_000 }, registeredAt: Date.now() }),
      'beat',
      JSON.stringify({ kind: 'every', method: 'ping', schedule: { every: 3_600_000 }, registeredAt: Date.now() }),
    );
  });

  afterAll(async () => {
    await client?.close();
    await silo?.stop();
    await redis?.quit();
  });

  it('refuses while a silo runs', async () => {
    const before = await keysUnderPrefix();
    // A silo of another type: one hosting Account would take the pending wake-up.
    const running = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Bystander], logLevel: 'silent' });
    try {
      const { code, text } = await migrate();
      expect(code).toBe(1);
      expect(text).toBe(`redgrain: silos are running (${running.id}); stop every silo first (a silo silent for 30 s counts as stopped)`);
    } finally {
      await running.stop();
    }
    expect((await keysUnderPrefix()).filter((key) => key.includes('%'))).toEqual(before.filter((key) => key.includes('%')));
  });

  // a b: state, reminders, and its mailbox's id, meta, events, marker, wait and two jobs.
  it('shows what would move on a dry run and writes nothing', async () => {
    const before = await keysUnderPrefix();
    const { code, text } = await migrate('--dry-run');
    expect(code).toBe(0);
    expect(text).toBe(
      [
        'would move 11 key(s) of 2 grain(s), 3 grain reference(s) in sets and lists, 2 reminder(s) (dry run: nothing written)',
        '  Account/a%20b -> Account/a~20b (9 keys)',
        '  Account/ann%40example.com -> Account/ann~40example.com (2 keys)',
      ].join('\n'),
    );
    expect(await keysUnderPrefix()).toEqual(before);
  });

  it('moves the keys, the references and the reminders, and finds nothing left on a second run', async () => {
    expect(await migrate()).toEqual({
      code: 0,
      text: [
        'moved 11 key(s) of 2 grain(s), 3 grain reference(s) in sets and lists, 2 reminder(s)',
        '  Account/a%20b -> Account/a~20b (9 keys)',
        '  Account/ann%40example.com -> Account/ann~40example.com (2 keys)',
      ].join('\n'),
    });
    const keys = await keysUnderPrefix();
    expect(keys.filter((key) => key.includes('%'))).toEqual([]);
    expect(keys).toContain(`${keyPrefix}:g:{Account/plain}:state`);
    expect(keys).toContain(`${keyPrefix}:g:{Account/a~20b}:state`);
    expect(await redis.lrange(`${keyPrefix}:t:{Account}:pending`, 0, -1)).toEqual(['Account/a~20b']);
    expect((await redis.smembers(`${keyPrefix}:s:{gone-silo}:grains`)).sort()).toEqual(['Account/a~20b', 'Account/plain']);
    expect(await redis.smembers(`${keyPrefix}:sub:{=news.daily}`)).toEqual(['Account/ann~40example.com onNews']);
    const queue = reminders();
    try {
      expect((await queue.getJobSchedulers()).map((s) => [s.key, s.template?.data?.g])).toEqual([['Account/a~20b/beat', 'Account/a~20b']]);
      const once = await queue.getJob('once/Account/a~20b/once');
      expect(once?.data.g).toBe('Account/a~20b');
      expect(await once?.getState()).toBe('delayed');
      expect(await queue.getJob(`once/${legacyTag('a b')}/once`)).toBeUndefined();
    } finally {
      await queue.close();
    }
    expect((await migrate()).text).toBe('moved 0 key(s) of 0 grain(s), 0 grain reference(s) in sets and lists, 0 reminder(s)');
  });

  it('leaves a silo of this version with every message, state, subscription and reminder', async () => {
    silo = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Account], logLevel: 'silent' });
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
    // The waiting credits ran, in order, on the state the older version had stored.
    const ab = client.getGrain(Account, 'a b');
    expect(await ab.ask('read')).toEqual({ balance: 115, news: [], pings: 0, reminders: ['beat', 'once'] });
    expect(await ab.ask('drop', 'beat')).toBe(true);
    expect(await ab.ask('drop', 'once')).toBe(true);
    const queue = reminders();
    try {
      expect(await queue.getJobSchedulersCount()).toBe(0);
      expect(await queue.getDelayedCount()).toBe(0);
    } finally {
      await queue.close();
    }
    expect(await client.publish('news.daily', 'hello')).toBe(1);
    const ann = client.getGrain(Account, 'ann@example.com');
    await expect.poll(() => ann.ask('read')).toEqual({ balance: 7, news: ['news.daily:hello'], pings: 0, reminders: [] });
    expect(await client.getGrain(Account, 'plain').ask('credit', 1)).toBe(2);
  });

  it('leaves a key in place when its new name is taken, and says so', async () => {
    await silo?.stop();
    silo = undefined;
    await redis.hset(`${keyPrefix}:g:{${legacyTag('x:y')}}:state`, 'balance', serialize(1, 'balance'));
    await redis.hset(`${keyPrefix}:g:{Account/x~3Ay}:state`, 'balance', serialize(2, 'balance'));
    expect(await migrate()).toEqual({
      code: 1,
      text: [
        'moved 0 key(s) of 0 grain(s), 0 grain reference(s) in sets and lists, 0 reminder(s)',
        `  left in place: ${keyPrefix}:g:{Account/x%3Ay}:state (${keyPrefix}:g:{Account/x~3Ay}:state exists)`,
        'redgrain: 1 key(s) left in place: their new names are taken (see above)',
      ].join('\n'),
    });
    expect(await redis.hget(`${keyPrefix}:g:{Account/x%3Ay}:state`, 'balance')).toBe(serialize(1, 'balance'));
    expect(await redis.hget(`${keyPrefix}:g:{Account/x~3Ay}:state`, 'balance')).toBe(serialize(2, 'balance'));
  });
});
