import { afterAll, describe, expect, it } from 'vitest';
import { ActivationFailedError, connect, GrainId, InvalidGrainClassError, Silo, type GrainClass } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { Account, InsufficientFunds } from '../grains/account.ts';
import {
  applied,
  Ledger,
  LedgerProjection,
  PublishingLedger,
  ThermoV1,
  ThermoV2,
  TrimmedLedger,
  UnsnapshottedLedger,
} from './grains/event-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis, testRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

/** Event-sourced grains: events journaled with the turn, state a fold of them, snapshots, upcasting. */
describe('event-sourced grains', () => {
  const cluster = inProcessSilo('es', [Ledger, TrimmedLedger, UnsnapshottedLedger, PublishingLedger, LedgerProjection, Account, Counter]);
  const redis = rawRedis();
  afterAll(() => redis.disconnect());
  const key = (type: string, grain: string, part: 'journal' | 'state') => `${cluster.keyPrefix}:g:{${GrainId.of(type, grain).tag}}:${part}`;
  /** Stops the silo (every grain deactivated) and starts a new one; forgets the apply counts. */
  const restart = async () => {
    await cluster.stop();
    applied.clear();
    await cluster.start();
  };

  it('applies a raised event at once and appends it to the journal with the turn', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'exact').with({ correlationId: 'corr-exact' });
    const before = Date.now();
    expect(await ledger.ask('add', 10, 'rent')).toBe(10);
    expect(await ledger.ask('addAll', [1, 2])).toBe(13);
    const entries = await redis.xrange(key('Ledger', 'exact', 'journal'), '-', '+');
    expect(entries.map(([id]) => id)).toEqual(['0-1', '0-2', '0-3']);
    const [, fields] = entries[0] as [string, string[]];
    expect(fields.slice(0, 6)).toEqual(['v', '1', 'e', '{"json":{"type":"Added","amount":10,"label":"rent"}}', 'c', 'corr-exact']);
    expect(fields[6]).toBe('t');
    expect(Number(fields[7])).toBeGreaterThanOrEqual(before);
    expect(await ledger.ask('read')).toEqual({ total: 13, labels: ['rent', 'n1', 'n2'], seq: 3 });
    // The state is not written with each turn: no snapshot yet (every 5 events).
    expect(await redis.hgetall(key('Ledger', 'exact', 'state'))).toEqual({});
    // Read from inside the grain, typed and upcast.
    const history = await ledger.ask('history');
    expect(history.map((e) => [e.seq, e.type, e.event, e.version, e.correlationId])).toEqual([
      [1, 'Added', { type: 'Added', amount: 10, label: 'rent' }, 1, 'corr-exact'],
      [2, 'Added', { type: 'Added', amount: 1, label: 'n1' }, 1, 'corr-exact'],
      [3, 'Added', { type: 'Added', amount: 2, label: 'n2' }, 1, 'corr-exact'],
    ]);
    expect(history[0]?.at).toBeInstanceOf(Date);
    expect(history[0]?.at.getTime()).toBeGreaterThanOrEqual(before);
    expect((await ledger.ask('history', 2, 2)).map((e) => e.seq)).toEqual([2]);
  });

  it('raises nothing when the handler throws, also inside a batch of turns', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'throwing');
    await ledger.ask('add', 5, 'first');
    await expect(ledger.ask('addThenFail', 5)).rejects.toThrow('refused after seeing total 10');
    expect(await ledger.ask('read')).toEqual({ total: 5, labels: ['first'], seq: 1 });
    // Sent without waiting: they run as one batch; the failed ones in the middle leave no event
    // and no gap in the numbering.
    await Promise.all([
      ledger.send('add', 1, 'a'),
      ledger.send('addThenFail', 1),
      ledger.send('add', 2, 'b'),
      ledger.send('addThenFail', 1),
      ledger.send('add', 3, 'c'),
    ]);
    expect(await ledger.ask('read')).toEqual({ total: 11, labels: ['first', 'a', 'b', 'c'], seq: 4 });
    const entries = await redis.xrange(key('Ledger', 'throwing', 'journal'), '-', '+');
    expect(entries.map(([id]) => id)).toEqual(['0-1', '0-2', '0-3', '0-4']);
    const events = await cluster.client.readEvents(Ledger, 'throwing');
    expect(events.map((e) => (e.event.type === 'Added' ? e.event.label : ''))).toEqual(['first', 'a', 'b', 'c']);
    cluster.log.expectQuiet([/handler failed/]);
  });

  it('writes a snapshot every snapshotEvery events, and an activation replays only the events after it', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'snapshots');
    for (let i = 1; i <= 7; i++) await ledger.ask('add', i, `e${i}`);
    const state = await redis.hgetall(key('Ledger', 'snapshots', 'state'));
    // The snapshot after event 5: 1 + 2 + 3 + 4 + 5.
    expect(state).toEqual({
      total: '{"json":15}',
      labels: '{"json":["e1","e2","e3","e4","e5"]}',
      '~seq': '{"json":5}',
      '~v': '{"json":1}',
    });
    await restart();
    expect(await ledger.ask('read')).toEqual({ total: 28, labels: ['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7'], seq: 7 });
    expect(applied.get('snapshots')).toBe(2);
    // Three more: the next snapshot (at event 10) is written with them.
    await ledger.ask('addAll', [8, 9, 10]);
    expect(await redis.hget(key('Ledger', 'snapshots', 'state'), '~seq')).toBe('{"json":10}');
    await restart();
    expect(await ledger.ask('read')).toMatchObject({ total: 55, seq: 10 });
    expect(applied.get('snapshots') ?? 0).toBe(0);
    // The whole journal is kept (retention 'all').
    expect(await redis.xlen(key('Ledger', 'snapshots', 'journal'))).toBe(10);
  });

  it("trims the events a snapshot covers with journalRetention 'snapshot'", async () => {
    const ledger = cluster.client.getGrain(TrimmedLedger, 'trimmed');
    for (let i = 1; i <= 4; i++) await ledger.ask('add', i, `e${i}`);
    expect(await redis.xlen(key('TrimmedLedger', 'trimmed', 'journal'))).toBe(4);
    await ledger.ask('add', 5, 'e5');
    // Snapshot at 5, in the same commit as event 5: events 1..4 are gone (the last one stays, to
    // show where the journal ends).
    const ids = async () => (await redis.xrange(key('TrimmedLedger', 'trimmed', 'journal'), '-', '+')).map(([id]) => id);
    expect(await ids()).toEqual(['0-5']);
    await ledger.ask('addAll', [6, 7]);
    expect(await ids()).toEqual(['0-5', '0-6', '0-7']);
    expect((await cluster.client.readEvents(TrimmedLedger, 'trimmed')).map((e) => e.seq)).toEqual([5, 6, 7]);
    await restart();
    expect(await ledger.ask('read')).toMatchObject({ total: 28, seq: 7 });
    expect(applied.get('trimmed')).toBe(2);
  });

  it('replays the whole journal when the snapshot no longer deserializes, and writes a good one next', async () => {
    const ledger = cluster.client.getGrain(Ledger, 'corrupt');
    for (let i = 1; i <= 6; i++) await ledger.ask('add', i, `e${i}`);
    await cluster.stop();
    await redis.hset(key('Ledger', 'corrupt', 'state'), 'labels', '{"json": not json');
    applied.clear();
    await cluster.start();
    expect(await ledger.ask('read')).toEqual({ total: 21, labels: ['e1', 'e2', 'e3', 'e4', 'e5', 'e6'], seq: 6 });
    expect(applied.get('corrupt')).toBe(6);
    expect(cluster.log.problems().map((e) => e.message)).toContain(
      'the snapshot of an event-sourced grain cannot be used; replaying its whole journal',
    );
    // The first commit after it (the read's acknowledgement) wrote a whole new snapshot.
    expect(await redis.hgetall(key('Ledger', 'corrupt', 'state'))).toEqual({
      total: '{"json":21}',
      labels: '{"json":["e1","e2","e3","e4","e5","e6"]}',
      '~seq': '{"json":6}',
      '~v': '{"json":1}',
    });
    await ledger.ask('add', 7, 'e7');
    await restart();
    expect(await ledger.ask('read')).toMatchObject({ total: 28, seq: 7 });
    expect(applied.get('corrupt')).toBe(1);
  });

  it('reads events from outside without activating the grain, by range', async () => {
    const ledger = cluster.client.getGrain(UnsnapshottedLedger, 'outside');
    await ledger.ask('addAll', [1, 2, 3, 4, 5]);
    await cluster.stop();
    try {
      // No silo is running: the client reads the stream itself.
      const all = await cluster.client.readEvents(UnsnapshottedLedger, 'outside');
      expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      const some = await cluster.client.readEvents(UnsnapshottedLedger, 'outside', { from: 2, to: 4 });
      expect(some.map((e) => (e.event.type === 'Added' ? e.event.amount : 0))).toEqual([2, 3, 4]);
      expect((await cluster.client.readEvents(UnsnapshottedLedger, 'outside', { from: 3, limit: 1 })).map((e) => e.seq)).toEqual([3]);
      expect(await cluster.client.readEvents(UnsnapshottedLedger, 'never')).toEqual([]);
      await expect(cluster.client.readEvents(UnsnapshottedLedger, 'outside', { from: 0 })).rejects.toThrow('from is 0');
      await expect(cluster.client.readEvents(UnsnapshottedLedger, 'outside', null as unknown as undefined)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringContaining('range'),
      });
      await expect(cluster.client.readEvents(Counter as unknown as typeof Ledger, 'c')).rejects.toBeInstanceOf(InvalidGrainClassError);
    } finally {
      applied.clear();
      await cluster.start();
    }
    // No snapshot ever: every activation replays all of it.
    expect(await ledger.ask('read')).toMatchObject({ total: 15, seq: 5 });
    expect(applied.get('outside')).toBe(5);
    expect(await redis.exists(key('UnsnapshottedLedger', 'outside', 'state'))).toBe(0);
  });

  it('publishes each committed event once on <eventTopic>.<type>, and none of a failed turn', async () => {
    const ledger = cluster.client.getGrain(PublishingLedger, 'pub').with({ correlationId: 'corr-pub' });
    await ledger.ask('add', 5, 'x');
    await ledger.ask('addAll', [1, 2]);
    await expect(ledger.ask('addThenFail', 1)).rejects.toThrow('refused');
    await ledger.ask('clear');
    const projection = cluster.client.getGrain(LedgerProjection, 'ledger');
    const seen = await waitFor('the projection to hear four events', async () => {
      const events = await projection.ask('read');
      return events.length >= 4 ? events : undefined;
    });
    // Once more through a restart: nothing is published again.
    await restart();
    expect(await projection.ask('read')).toEqual(seen);
    expect(seen).toEqual([
      { key: 'pub', seq: 1, type: 'Added', correlationId: 'corr-pub' },
      { key: 'pub', seq: 2, type: 'Added', correlationId: 'corr-pub' },
      { key: 'pub', seq: 3, type: 'Added', correlationId: 'corr-pub' },
      { key: 'pub', seq: 4, type: 'Cleared', correlationId: 'corr-pub' },
    ]);
  });

  it('runs the Account example: deposits, and withdrawals refused when the balance is short', async () => {
    const account = cluster.client.getGrain(Account, 'acc-1');
    expect(await account.ask('deposit', 100)).toBe(100);
    expect(await account.ask('withdraw', 30)).toBe(70);
    const refused = await account.ask('withdraw', 500).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InsufficientFunds);
    expect(refused).toMatchObject({ balance: 70, requested: 500 });
    await restart();
    expect(await account.ask('balance')).toBe(70);
    expect((await cluster.client.readEvents(Account, 'acc-1')).map((e) => e.event)).toEqual([
      { type: 'Deposited', amount: 100 },
      { type: 'Withdrawn', amount: 30 },
    ]);
  });

  it('refuses an event-sourced class with bad settings at start', async () => {
    class BadInterval extends Ledger {
      static override readonly type = 'BadInterval';
      static override readonly snapshotEvery = 0;
    }
    await expect(Silo.start({ redis: testRedis(), grains: [BadInterval], keyPrefix: 'unused', logLevel: 'silent' })).rejects.toThrow(
      new InvalidGrainClassError('BadInterval.snapshotEvery must be a positive whole number of events, or Infinity, got 0'),
    );
  });
});

describe('event-sourced grains across class versions', () => {
  const keyPrefix = freshPrefix('es-versions');
  const log = new LogRecorder();
  const start = (grains: GrainClass[]) =>
    Silo.start({ redis: testRedis(), keyPrefix, grains, logger: log, supervision: { maxRestarts: 1, baseDelayMs: 10, maxDelayMs: 20 } });

  it('loads version-1 events through the upcaster after the class moved to version 2', async () => {
    // One client per version of the class, as each deploy has its own (a client refuses two classes of one type).
    const before = await connect({ redis: testRedis(), keyPrefix });
    const client = await connect({ redis: testRedis(), keyPrefix });
    const redis = rawRedis();
    try {
      let silo = await start([ThermoV1]);
      await before.getGrain(ThermoV1, 'kitchen').ask('read', 20);
      await before.getGrain(ThermoV1, 'kitchen').ask('read', 25);
      await silo.stop();
      silo = await start([ThermoV2]);
      const thermo = client.getGrain(ThermoV2, 'kitchen');
      expect(await thermo.ask('kelvins')).toEqual([293, 298]);
      expect(log.problems().map((e) => e.fields['reason'])).toEqual(['it was written with snapshotVersion 1, the class is at 2']);
      // The version-1 snapshot was replaced by one of version 2 with the first commit (the read's).
      expect(await redis.hgetall(`${keyPrefix}:g:{Thermo/kitchen}:state`)).toEqual({
        kelvins: '{"json":[293,298]}',
        '~seq': '{"json":2}',
        '~v': '{"json":2}',
      });
      await thermo.ask('read', 300);
      const events = await client.readEvents(ThermoV2, 'kitchen');
      expect(events.map((e) => [e.version, e.event])).toEqual([
        [1, { type: 'Read', kelvin: 293 }],
        [1, { type: 'Read', kelvin: 298 }],
        [2, { type: 'Read', kelvin: 300 }],
      ]);
      await silo.stop();
      silo = await start([ThermoV2]);
      expect(await client.getGrain(ThermoV2, 'kitchen').ask('kelvins')).toEqual([293, 298, 300]);
      await silo.stop();
    } finally {
      redis.disconnect();
      await before.close();
      await client.close();
    }
  });

  it('fails the activation when a snapshot cannot be used and the events it covers were trimmed', async () => {
    const client = await connect({ redis: testRedis(), keyPrefix });
    const redis = rawRedis();
    try {
      let silo = await start([TrimmedLedger]);
      const ledger = client.getGrain(TrimmedLedger, 'lost');
      for (let i = 1; i <= 6; i++) await ledger.ask('add', i, `e${i}`);
      await silo.stop();
      await redis.hset(`${keyPrefix}:g:{${GrainId.of('TrimmedLedger', 'lost').tag}}:state`, 'total', 'garbage');
      silo = await start([TrimmedLedger]);
      const error = await waitFor('the activation to be given up', async () => {
        const outcome = await ledger.ask('read').catch((e: unknown) => e);
        return outcome instanceof ActivationFailedError ? outcome : undefined;
      });
      expect(error.message).toContain('the events before it were trimmed');
      await silo.stop();
    } finally {
      redis.disconnect();
      await client.close();
    }
  });

  it('fails the activation when the last events of the journal are missing, instead of refusing every commit', async () => {
    const client = await connect({ redis: testRedis(), keyPrefix });
    const redis = rawRedis();
    try {
      let silo = await start([Ledger]);
      const ledger = client.getGrain(Ledger, 'cut');
      for (let i = 1; i <= 7; i++) await ledger.ask('add', i, `e${i}`);
      await silo.stop();
      // The snapshot (every 5 events) covers 1..5; events 6 and 7 are deleted behind the grain's back.
      const journal = `${keyPrefix}:g:{${GrainId.of('Ledger', 'cut').tag}}:journal`;
      expect(await redis.xdel(journal, '0-6', '0-7', '0-5')).toBe(3);
      silo = await start([Ledger]);
      const error = await waitFor('the activation to be given up', async () => {
        const outcome = await ledger.ask('read').catch((e: unknown) => e);
        return outcome instanceof ActivationFailedError ? outcome : undefined;
      });
      expect(error.message).toContain('the journal ends at event 4, but its snapshot and events reach event 5: events are missing');
      await silo.stop();
    } finally {
      redis.disconnect();
      await client.close();
    }
  });

  it('refuses events written by a newer version of the class (a rolling deploy) instead of misreading them', async () => {
    const client = await connect({ redis: testRedis(), keyPrefix });
    const older = await connect({ redis: testRedis(), keyPrefix });
    try {
      let silo = await start([ThermoV2]);
      await client.getGrain(ThermoV2, 'attic').ask('read', 280);
      await silo.stop();
      silo = await start([ThermoV1]);
      const error = await waitFor('the activation to be given up', async () => {
        const outcome = await older
          .getGrain(ThermoV1, 'attic')
          .ask('read', 20)
          .catch((e: unknown) => e);
        return outcome instanceof ActivationFailedError ? outcome : undefined;
      });
      expect(error.message).toContain("event 1 has version 2, newer than the class's eventVersion 1");
      expect((await client.readEvents(ThermoV2, 'attic')).map((e) => e.event)).toEqual([{ type: 'Read', kelvin: 280 }]);
      await silo.stop();
    } finally {
      await older.close();
      await client.close();
    }
  });
});
