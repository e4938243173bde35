import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ActivationFailedError,
  AskTimeoutError,
  connect,
  Grain,
  GrainTypeNotRegisteredError,
  InvalidGrainKeyError,
  RemoteGrainError,
  SerializationError,
  Silo,
  UnknownMethodError,
  type GrainClient,
} from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { Fragile, Ledger, Relay, Session } from './grains/test-grains.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';
import { rawRedis, testRedis } from './support/redis.ts';

describe('one silo, in process', () => {
  const keyPrefix = freshPrefix('runtime');
  let silo: Silo;
  let client: GrainClient;
  let redis: ReturnType<typeof rawRedis>;
  const log = new LogRecorder();

  beforeAll(async () => {
    silo = await Silo.start({ redis: testRedis(), grains: [Counter, Ledger, Session, Relay], keyPrefix, logger: log });
    client = await connect({ redis: testRedis(), keyPrefix });
    redis = rawRedis();
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
    redis?.disconnect();
    log.expectQuiet();
  });

  it('persists Date, Map, Set and BigInt state through superjson', async () => {
    const ledger = client.getGrain(Ledger, 'types');
    const openedAt = new Date('2026-01-02T03:04:05.678Z');
    await ledger.ask('open', openedAt);
    expect(await ledger.ask('credit', 'e1', 40)).toBe(40n);
    const state = await ledger.ask('snapshot');
    expect(state.openedAt).toEqual(openedAt);
    expect(state.tags).toEqual(new Set(['open']));
    expect(state.entries.get('e1')).toEqual({ amount: 40, at: new Date(0) });
    // What Redis holds is the same, field by field.
    const stored = await redis.hgetall(`${keyPrefix}:g:{Ledger/types}:state`);
    expect(Object.keys(stored).sort()).toEqual(['balance', 'entries', 'notes', 'openedAt', 'tags']);
  });

  it('a handler that throws leaves state as it was, in Redis and in memory', async () => {
    const ledger = client.getGrain(Ledger, 'rollback');
    await ledger.ask('credit', 'a', 10);
    const before = await redis.hgetall(`${keyPrefix}:g:{Ledger/rollback}:state`);
    const error = await ledger.ask('creditThenFail', 'b', 5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteGrainError);
    expect(error).toMatchObject({ name: 'PaymentDeclinedError', code: 'PAYMENT_DECLINED', message: 'payment of 5 declined' });
    expect(await redis.hgetall(`${keyPrefix}:g:{Ledger/rollback}:state`)).toEqual(before);
    const state = await ledger.ask('snapshot');
    expect(state.balance).toBe(10n);
    expect([...state.entries.keys()]).toEqual(['a']);
    expect(state.notes).toEqual([]);
    expect(state.activations).toBe(1);
  });

  it('a plain error keeps its name and message, with code HANDLER_ERROR', async () => {
    const error = await client
      .getGrain(Ledger, 'plain')
      .ask('failPlain', 'boom')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TypeError', message: 'boom', code: 'HANDLER_ERROR' });
  });

  it('rejects a type no silo ever registered, at once, and enqueues nothing', async () => {
    class Ghost extends Grain<{ n: number }> {
      static readonly type = 'Ghost';
      async add(by: number) {
        return by;
      }
    }
    const error = await client
      .getGrain(Ghost, 'g')
      .send('add', 1)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrainTypeNotRegisteredError);
    expect((error as GrainTypeNotRegisteredError).message).toContain('Ghost');
    expect(await redis.keys(`${keyPrefix}:q:{Ghost*`)).toEqual([]);
  });

  it('refuses bad keys and unserializable arguments with typed errors', () => {
    expect(() => client.getGrain(Counter, '')).toThrow(InvalidGrainKeyError);
    expect(() => client.getGrain(Counter, 'x'.repeat(600))).toThrow(InvalidGrainKeyError);
    return expect(client.getGrain(Ledger, 'args').send('credit', 'id', (() => 1) as unknown as number)).rejects.toBeInstanceOf(
      SerializationError,
    );
  });

  it('keys with separators and braces are separate grains', async () => {
    const keys = ['a:b', '{x}', 'a/b', 'a b\nc', 'ü'];
    for (const [i, key] of keys.entries()) await client.getGrain(Counter, key).ask('add', i + 1);
    for (const [i, key] of keys.entries()) expect(await client.getGrain(Counter, key).ask('get')).toBe(i + 1);
  });

  it('an unknown method from an untyped caller is a typed error, and the grain goes on', async () => {
    const ref = client.getGrain(Counter, 'untyped') as unknown as { ask(m: string, ...a: unknown[]): Promise<unknown> };
    await expect(ref.ask('nope')).rejects.toBeInstanceOf(UnknownMethodError);
    await expect(ref.ask('_helper')).rejects.toBeInstanceOf(UnknownMethodError);
    await expect(ref.ask('initialState')).rejects.toBeInstanceOf(UnknownMethodError);
    expect(await ref.ask('add', 2)).toBe(2);
  });

  it('a return value that cannot be serialized reaches the caller as an error', async () => {
    await expect(client.getGrain(Ledger, 'ret').ask('returnsFunction')).rejects.toMatchObject({ code: 'SERIALIZATION_FAILED' });
  });

  it('ask times out with a typed error; the message still runs', async () => {
    const ledger = client.getGrain(Ledger, 'slow');
    await expect(ledger.with({ timeoutMs: 50 }).ask('slow', 300)).rejects.toBeInstanceOf(AskTimeoutError);
    expect(await ledger.ask('slow', 1)).toBe(1);
  });

  it('deactivates idle grains (onDeactivate, state saved, directory released) and reactivates them', async () => {
    const session = client.getGrain(Session, 's1');
    expect(await session.ask('visit')).toBe(1);
    const directory = `${keyPrefix}:g:{Session/s1}:dir`;
    expect(await redis.hget(directory, 'silo')).toBe(silo.id);
    // At rest the grain keeps its state and its directory entry; its emptied mailbox leaves nothing
    // (tidied right after the directory entry is released).
    const mailbox = ['events', 'id', 'marker', 'meta', 'wait', 'active'].map((part) => `${keyPrefix}:q:{Session/s1}:${part}`);
    await waitFor('the idle session to be collected and its mailbox tidied', async () =>
      (await redis.hget(directory, 'silo')) === null && (await redis.exists(...mailbox)) === 0 ? true : undefined,
    );
    const stored = await redis.hget(`${keyPrefix}:g:{Session/s1}:state`, 'deactivatedAt');
    expect(stored).not.toBeNull();
    expect(await redis.exists(directory, `${keyPrefix}:g:{Session/s1}:state`, `${keyPrefix}:g:{Session/s1}:outbox`)).toBe(2);
    // The first epoch is the server clock at the first claim; every later claim adds one.
    const first = Number(await redis.hget(directory, 'epoch'));
    expect(Math.abs(first - Date.now())).toBeLessThan(60_000);
    const state = await session.ask('read');
    expect(state.visits).toBe(1);
    expect(state.deactivatedAt).toBeInstanceOf(Date);
    expect(await redis.hget(directory, 'epoch')).toBe(String(first + 1));
  });

  it('grain-to-grain ask carries the correlation id on', async () => {
    const result = await client.getGrain(Relay, 'r1').with({ correlationId: 'corr-1' }).ask('forward', 'target', 7);
    expect(result).toEqual({ balance: 7n, correlationId: 'corr-1' });
    const fresh = await client.getGrain(Relay, 'r1').ask('whoAmI');
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps one sender’s messages in order, one turn at a time', async () => {
    const counter = client.getGrain(Counter, 'ordered');
    const results = await Promise.all(Array.from({ length: 50 }, () => counter.ask('add', 1)));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('keeps the order of calls made without awaiting them, sends and asks mixed, from a new client', async () => {
    // A new client's first ask sets up its reply subscription first: the sends made after it
    // must still not overtake it.
    const fresh = await connect({ redis: testRedis(), keyPrefix });
    try {
      const ledger = fresh.getGrain(Ledger, 'call-order');
      const ids = Array.from({ length: 30 }, (_, i) => `e${i}`);
      const calls = ids.map((id, i) => (i % 3 === 0 ? ledger.ask('credit', id, 1) : ledger.send('credit', id, 1)));
      await Promise.all(calls);
      expect([...(await ledger.ask('snapshot')).entries.keys()]).toEqual(ids);
    } finally {
      await fresh.close();
    }
  });
});

describe('silo start', () => {
  it('refuses a Redis whose maxmemory-policy evicts', async () => {
    const { startRedisServer } = await import('redgrain/testing');
    const server = await startRedisServer({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      await expect(Silo.start({ redis: server.url, grains: [Counter], logLevel: 'silent' })).rejects.toMatchObject({
        code: 'REDIS_EVICTION_POLICY',
        message: expect.stringContaining('noeviction') as unknown,
      });
    } finally {
      await server.stop();
    }
  });

  it('accepts messages for a registered type while no silo runs, and processes them when one starts', async () => {
    const keyPrefix = freshPrefix('parked');
    const first = await Silo.start({ redis: testRedis(), grains: [Counter], keyPrefix, logLevel: 'error' });
    await first.stop();
    const client = await connect({ redis: testRedis(), keyPrefix });
    try {
      await client.getGrain(Counter, 'later').send('add', 3);
      await client.getGrain(Counter, 'later').send('add', 4);
      const second = await Silo.start({ redis: testRedis(), grains: [Counter], keyPrefix, logLevel: 'error' });
      try {
        expect(await client.getGrain(Counter, 'later').ask('get')).toBe(7);
      } finally {
        await second.stop();
      }
    } finally {
      await client.close();
    }
  });
});

describe('fencing', () => {
  it('a stale activation cannot commit: its turn is refused, it steps down, and the message runs once under the new owner', async () => {
    const keyPrefix = freshPrefix('fence');
    const log = new LogRecorder();
    const silo = await Silo.start({ redis: testRedis(), grains: [Counter], keyPrefix, logger: log });
    const client = await connect({ redis: testRedis(), keyPrefix });
    const redis = rawRedis();
    try {
      const counter = client.getGrain(Counter, 'fenced');
      expect(await counter.ask('add', 1)).toBe(1);
      const first = Number(await redis.hget(`${keyPrefix}:g:{Counter/fenced}:dir`, 'epoch'));
      // Another silo claims the grain behind this activation's back (as after a pause past its
      // lease): a new epoch, a silo that is gone by now.
      const directory = `${keyPrefix}:g:{Counter/fenced}:dir`;
      await redis.multi().hincrby(directory, 'epoch', 1).hset(directory, 'silo', 'gone-silo').exec();
      // The live activation runs this message, but may not commit it; the message is taken over
      // (the gone silo's claim superseded) and applied exactly once.
      expect(await counter.ask('add', 10)).toBe(11);
      expect(await counter.ask('get')).toBe(11);
      expect(await redis.hget(`${keyPrefix}:g:{Counter/fenced}:state`, 'count')).toBe('{"json":11}');
      expect(await redis.hget(directory, 'epoch')).toBe(String(first + 2));
      expect(log.problems().map((e) => [e.message, e.fields.reason])).toEqual([
        ['activation stepped down', 'another activation owns the grain'],
      ]);
    } finally {
      redis.disconnect();
      await client.close();
      await silo.stop();
    }
  });
});

describe('activation failures', () => {
  it('retries a failing activation with backoff, then suspends it: asks get ActivationFailedError, messages wait until it is fixed', async () => {
    const keyPrefix = freshPrefix('supervise');
    const log = new LogRecorder();
    const supervision = { maxRestarts: 3, baseDelayMs: 20, maxDelayMs: 200, restartWindowMs: 60_000 };
    Fragile.broken = true;
    const broken = await Silo.start({ redis: testRedis(), grains: [Fragile], keyPrefix, logger: log, supervision });
    const client = await connect({ redis: testRedis(), keyPrefix });
    try {
      const fragile = client.getGrain(Fragile, 'f1');
      await fragile.send('touch');
      const error = await fragile.ask('touch').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActivationFailedError);
      expect((error as Error).message).toContain('config missing');
      // While suspended, a new ask is answered at once, and nothing was lost.
      await expect(fragile.with({ timeoutMs: 5_000 }).ask('touch')).rejects.toBeInstanceOf(ActivationFailedError);
      expect(log.problems().map((e) => e.message)).toEqual([
        'activation failed; retrying',
        'activation failed; retrying',
        'activation failed; retrying',
        'activation keeps failing; grain suspended, its messages wait in its mailbox',
      ]);
      await broken.stop();
      // Deployed fixed: a new silo runs every waiting message.
      Fragile.broken = false;
      const fixed = await Silo.start({ redis: testRedis(), grains: [Fragile], keyPrefix, logLevel: 'warn' });
      try {
        expect(await fragile.ask('touch')).toBe(4);
      } finally {
        await fixed.stop();
      }
    } finally {
      await client.close();
      await broken.stop();
    }
  });
});
