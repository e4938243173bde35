import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ActivationFailedError,
  AskTimeoutError,
  ClosedError,
  connect,
  Grain,
  InvalidGrainClassError,
  InvalidGrainKeyError,
  InvalidOptionError,
  MailboxFullError,
  RedgrainError,
  RemoteGrainError,
  SerializationError,
  Silo,
  UnknownMethodError,
  type GrainClient,
} from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { boobyTrappedError } from './support/booby-trapped-error.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

/** An application's own error class, registered with the client so it comes back as itself. */
class InsufficientFunds extends Error {
  constructor(readonly needed: number) {
    super(`${needed} more needed`);
    this.name = 'InsufficientFunds';
  }
}

/** The grain the hostile rows aim at; counts its activations per key in this process. */
class Target extends Grain<{ n: number }> {
  static readonly type = 'Target';
  static readonly activations = new Map<string, number>();

  initialState() {
    return { n: 0 };
  }

  override onActivate() {
    Target.activations.set(this.key, (Target.activations.get(this.key) ?? 0) + 1);
  }

  async add(by: number) {
    this.state.n += by;
    return this.state.n;
  }

  async get() {
    return this.state.n;
  }

  /** Synchronous: not a handler, whatever an untyped caller says. */
  peek() {
    return this.state.n;
  }

  /** Throws a plain error dressed as a framework error. */
  async spoof() {
    const error = new Error('not really full') as Error & { code: string };
    error.name = 'MailboxFullError';
    error.code = 'MAILBOX_FULL';
    throw error;
  }

  async refuse(needed: number) {
    throw new InsufficientFunds(needed);
  }

  /** Sets a top-level state property of any name. */
  async setField(name: string, value: unknown) {
    (this.state as Record<string, unknown>)[name] = value;
    return Object.keys(this.state).length;
  }

  /** Sends what cannot be serialized, without awaiting the refusal (a floating promise). */
  async floatingBadSend() {
    void this.getGrain(Target, 'floating-target').send('add', (() => 1) as unknown as number);
    return 'returned';
  }

  /** Throws an error whose stack, name and message getters throw when read. */
  async booby() {
    throw boobyTrappedError();
  }

  /** An ask from inside a handler whose timeout expires before its enqueue settles. */
  async impatient(): Promise<string> {
    return this.getGrain(Target, 'other')
      .with({ timeoutMs: 1 })
      .ask('add', 1)
      .then(
        () => 'answered',
        (error: unknown) => (error as Error).name,
      );
  }
}

/** Hosted by the second silo only: that silo does not host Target. */
class Elsewhere extends Grain<{ n: number }> {
  static readonly type = 'Elsewhere';
  async ping() {
    return 'pong';
  }
}

/** Another class claiming Target's type name, with other handlers. */
class Impostor extends Grain<{ n: number }> {
  static readonly type = 'Target';
  async other() {
    return 'impostor';
  }
}

type Untyped = { send(method: unknown, ...args: unknown[]): Promise<void>; ask(method: unknown, ...args: unknown[]): Promise<unknown> };

/**
 * Hostile input, row by row: keys, method names, arguments, call options, raw jobs, raw state
 * fields, raw inbox entries, raw directory and membership entries. Each row says what must happen
 * (a typed error naming the problem, or recovery within a stated bound); after every row a control
 * grain still answers, and no rejection went unhandled anywhere in this process (client or silo).
 */
describe('hostile input', () => {
  const keyPrefix = freshPrefix('hostile');
  const log = new LogRecorder();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  let silo: Silo;
  let other: Silo;
  let client: GrainClient;
  let redis: Redis;
  let controlCount = 0;

  const untyped = (key: string) => client.getGrain(Target, key) as unknown as Untyped;
  const waitLength = (key: string) => redis.llen(`${keyPrefix}:q:{Target/${key}}:wait`);
  /** Adds a raw job to a Target's mailbox, as anyone with access to the key prefix could. */
  async function rawJob(key: string, name: string, data: unknown): Promise<void> {
    const queue = new Queue(`{Target/${key}}`, { connection: redis.duplicate(), prefix: `${keyPrefix}:q` });
    try {
      await queue.add(name, data);
    } finally {
      await queue.close();
    }
  }
  async function failedReasons(key: string): Promise<string[]> {
    const queue = new Queue(`{Target/${key}}`, { connection: redis.duplicate(), prefix: `${keyPrefix}:q` });
    try {
      return (await queue.getFailed()).map((job) => job.failedReason);
    } finally {
      await queue.close();
    }
  }
  /** Waits until the silo has handled every wake-up pushed to it. */
  const inboxDrained = (id: string) =>
    waitFor('the inbox to drain', async () => {
      const [inbox, taking] = await Promise.all([redis.llen(`${keyPrefix}:s:{${id}}:inbox`), redis.llen(`${keyPrefix}:s:{${id}}:taking`)]);
      return inbox + taking === 0 ? true : undefined;
    });

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    const common = { redis: inject('redisUrl'), keyPrefix, heartbeatIntervalMs: 200, missedHeartbeatsLimit: 5 };
    silo = await Silo.start({
      ...common,
      grains: [Target, Counter],
      logger: log,
      supervision: { maxRestarts: 2, restartWindowMs: 2_000, baseDelayMs: 50, maxDelayMs: 200 },
    });
    other = await Silo.start({ ...common, grains: [Elsewhere], logLevel: 'silent' });
    client = await connect({ redis: inject('redisUrl'), keyPrefix, errors: [InsufficientFunds] });
    redis = new Redis(inject('redisUrl'));
  });
  afterEach(async () => {
    controlCount += 1;
    expect(await client.getGrain(Counter, 'control').with({ timeoutMs: 5_000 }).ask('add', 1)).toBe(controlCount);
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    await client?.close();
    await other?.stop();
    await silo?.stop();
    redis?.disconnect();
    process.off('unhandledRejection', onUnhandled);
  });

  describe('keys', () => {
    const rows: [string, unknown][] = [
      ['empty', ''],
      ['over 512 characters', 'k'.repeat(513)],
      ['a lone surrogate', 'ab\ud800'],
      ['a number', 5],
      ['null', null],
    ];
    it.each(rows)('%s: InvalidGrainKeyError, nothing sent', (_, key) => {
      expect(() => client.getGrain(Target, key as string)).toThrow(InvalidGrainKeyError);
    });
  });

  describe('grain classes', () => {
    it('a second class with the type name of a class the client knows: InvalidGrainClassError, and the first still works', async () => {
      expect(await client.getGrain(Target, 'classes').ask('add', 1)).toBe(1);
      const error = (() => {
        try {
          client.getGrain(Impostor, 'classes');
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InvalidGrainClassError);
      expect(error).toMatchObject({
        code: 'INVALID_GRAIN_CLASS',
        message: 'Grain type name "Target" is declared by two classes (Target and Impostor)',
      });
      // The client still holds Target's handlers: its methods go through, the impostor's are refused.
      expect(await client.getGrain(Target, 'classes').ask('add', 2)).toBe(3);
      await expect(untyped('classes').ask('other')).rejects.toBeInstanceOf(UnknownMethodError);
      // The same class again is of course fine.
      expect(client.getGrain(Target, 'classes').type).toBe('Target');
    });
  });

  describe('method names', () => {
    const rows: [string, unknown][] = [
      ['not a method of the grain', 'nope'],
      ['10,000 characters long', 'x'.repeat(10_000)],
      ['a synchronous method', 'peek'],
      ['the constructor', 'constructor'],
      ['a lifecycle hook', 'onActivate'],
      ['__proto__', '__proto__'],
      ['a base-class method', 'getGrain'],
      ['not a string', 123],
    ];
    it.each(rows)('%s: UnknownMethodError with a bounded message, nothing enqueued', async (_, method) => {
      for (const call of [untyped('methods').send(method), untyped('methods').ask(method)]) {
        const error = await call.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnknownMethodError);
        expect((error as Error).message.length).toBeLessThan(200);
      }
      expect(await waitLength('methods')).toBe(0);
    });
  });

  describe('arguments', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const rows: [string, () => unknown][] = [
      [
        'a getter that throws',
        () => ({
          get boom(): never {
            throw new Error('gotcha');
          },
        }),
      ],
      ['nesting 100,000 deep', () => deep],
      [
        'a Proxy whose traps throw',
        () =>
          new Proxy(
            {},
            {
              ownKeys: () => {
                throw new Error('trap');
              },
            },
          ),
      ],
      ['a function', () => () => 1],
    ];
    it.each(rows)('%s: SerializationError, nothing enqueued', async (_, value) => {
      await expect(untyped('args').ask('add', value())).rejects.toBeInstanceOf(SerializationError);
      await expect(untyped('args').send('add', value())).rejects.toBeInstanceOf(SerializationError);
      expect(await waitLength('args')).toBe(0);
    });
  });

  describe('call options', () => {
    const rows: [string, Record<string, unknown>, RegExp][] = [
      ['an empty idempotency key', { idempotencyKey: '' }, /idempotencyKey/],
      ['an idempotency key of 513 characters', { idempotencyKey: 'k'.repeat(513) }, /idempotencyKey/],
      ['an idempotency key that is a number', { idempotencyKey: 5 }, /idempotencyKey/],
      ['an idempotency key with a lone surrogate', { idempotencyKey: '\udc00' }, /idempotencyKey/],
      ['a negative timeout', { timeoutMs: -1 }, /timeoutMs/],
      ['a NaN timeout', { timeoutMs: Number.NaN }, /timeoutMs/],
      ['a timeout that is a string', { timeoutMs: 'soon' }, /timeoutMs/],
      ['a timeout past what a timer holds', { timeoutMs: 2 ** 40 }, /timeoutMs/],
      ['an empty correlation id', { correlationId: '' }, /correlationId/],
      ['a fractional timeout', { timeoutMs: 1.5 }, /^timeoutMs is 1\.5: must be a whole number of ms, from 1 to 2147483647$/],
    ];
    it.each(rows)('%s: InvalidOptionError naming the option, nothing enqueued', async (_, options, names) => {
      const ref = client.getGrain(Target, 'options').with(options);
      for (const call of [ref.send('add', 1), ref.ask('add', 1)]) {
        const error = await call.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidOptionError);
        expect((error as Error).message).toMatch(names);
      }
      expect(await waitLength('options')).toBe(0);
    });
  });

  describe('dead letters', () => {
    type Letters = GrainClient['deadLetters'];
    const rows: [string, (letters: Letters) => Promise<unknown>, string][] = [
      ['list(NaN)', (l) => l.list(Number.NaN), 'deadLetters.list limit is NaN: must be a whole number, at least 1'],
      ['list(1.5)', (l) => l.list(1.5), 'deadLetters.list limit is 1.5: must be a whole number, at least 1'],
      ['list(-1)', (l) => l.list(-1), 'deadLetters.list limit is -1: must be a whole number, at least 1'],
      ['list(0)', (l) => l.list(0), 'deadLetters.list limit is 0: must be a whole number, at least 1'],
      ["list('5')", (l) => l.list('5' as unknown as number), 'deadLetters.list limit is "5": must be a whole number, at least 1'],
      [
        "redrive('nonexistent')",
        (l) => l.redrive('nonexistent'),
        'deadLetters.redrive id is "nonexistent": must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
      [
        "redrive('')",
        (l) => l.redrive(''),
        'deadLetters.redrive id is "": must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
      [
        "redrive('5'), which Redis would read as a range",
        (l) => l.redrive('5'),
        'deadLetters.redrive id is "5": must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
      [
        'redrive of an id past 64 bits',
        (l) => l.redrive('18446744073709551616-0'),
        'deadLetters.redrive id is "18446744073709551616-0": must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
      [
        "discard('1-2-3')",
        (l) => l.discard('1-2-3'),
        'deadLetters.discard id is "1-2-3": must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
      [
        'discard(5)',
        (l) => l.discard(5 as unknown as string),
        'deadLetters.discard id is 5: must be a dead letter id as deadLetters.list gives it (<ms>-<sequence>)',
      ],
    ];
    it.each(rows)('%s: InvalidOptionError naming the argument', async (_, call, message) => {
      const error = await call(client.deadLetters).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', message });
    });

    it('a well-formed id of no dead letter: redrive and discard resolve false, as for one redriven or discarded already', async () => {
      expect(await client.deadLetters.redrive('0-0')).toBe(false);
      expect(await client.deadLetters.discard('0-0')).toBe(false);
      expect(await client.deadLetters.redrive('18446744073709551615-18446744073709551615')).toBe(false);
    });

    it('a closed client: list, redrive and discard reject with ClosedError', async () => {
      const closed = await connect({ redis: inject('redisUrl'), keyPrefix });
      await closed.close();
      for (const call of [closed.deadLetters.list(), closed.deadLetters.redrive('0-0'), closed.deadLetters.discard('0-0')]) {
        const error = await call.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ClosedError);
        expect(error).toMatchObject({ code: 'CLOSED', message: 'The client is closed' });
      }
    });
  });

  describe('publish options', () => {
    const rows: [string, Record<string, unknown>, string][] = [
      ['an empty idempotency key', { idempotencyKey: '' }, 'idempotencyKey is "": must be a non-empty string of at most 512 characters'],
      [
        'an idempotency key of 600 characters',
        { idempotencyKey: 'k'.repeat(600) },
        `idempotencyKey is "${'k'.repeat(59)}…: must be a non-empty string of at most 512 characters`,
      ],
      ['an empty correlation id', { correlationId: '' }, 'correlationId is "": must be a non-empty string of at most 256 characters'],
    ];
    it.each(rows)('publish with %s: InvalidOptionError naming the option, even when no grain subscribes', async (_, options, message) => {
      const error = await client.publish('hostile.nobody', 1, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', message });
    });
  });

  describe('subscribe', () => {
    it('subscribe with a listener that is not a function: InvalidOptionError', async () => {
      const error = await client.subscribe('hostile.*', 5 as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', message: 'listener is 5: must be a function (topic, data) => void' });
    });
  });

  describe('calls cut short', () => {
    it('an ask whose timeout expires before its enqueue settles rejects with AskTimeoutError; nothing is left unhandled', async () => {
      const ref = client.getGrain(Target, 'hurried');
      await expect(ref.with({ timeoutMs: 1 }).ask('add', 1)).rejects.toBeInstanceOf(AskTimeoutError);
      // Behind it in call order: once this answers, the first enqueue has settled too.
      expect(await ref.ask('add', 10)).toBe(11);
    });

    it('the same from inside a handler: the handler sees AskTimeoutError and the silo lives on', async () => {
      expect(await client.getGrain(Target, 'impatient').ask('impatient')).toBe('AskTimeoutError');
      // The timed-out ask's message still runs. Its enqueue may still be in flight when the handler's
      // caller has its answer, so a call from another client may reach the mailbox first.
      const target = client.getGrain(Target, 'other');
      expect(await waitFor('the timed-out message to run', async () => ((await target.ask('get')) === 1 ? 1 : undefined))).toBe(1);
      expect(await target.ask('add', 1)).toBe(2);
    });

    it('client.close() lets the sends already made finish their enqueue: each resolves and runs; later calls are refused', async () => {
      const closing = await connect({ redis: inject('redisUrl'), keyPrefix });
      const ref = closing.getGrain(Target, 'closing-sends');
      const sends = Array.from({ length: 20 }, () => ref.send('add', 1));
      await closing.close();
      expect(await Promise.allSettled(sends)).toEqual(sends.map(() => ({ status: 'fulfilled', value: undefined })));
      expect(await client.getGrain(Target, 'closing-sends').ask('get')).toBe(20);
      await expect(ref.send('add', 1)).rejects.toBeInstanceOf(ClosedError);
    });

    it('client.close() during an enqueue rejects the call with a RedgrainError; nothing is left unhandled', async () => {
      const closing = await connect({ redis: inject('redisUrl'), keyPrefix });
      const ref = closing.getGrain(Target, 'closing');
      const calls = [ref.ask('add', 1), ref.send('add', 1), ref.ask('add', 1)].map((call) => call.catch((e: unknown) => e));
      await closing.close();
      // Each call either completed before the close or rejected with a RedgrainError (ClosedError).
      const outcomes = await Promise.all(calls);
      expect(outcomes.filter((o) => !(o === undefined || typeof o === 'number' || o instanceof RedgrainError))).toEqual([]);
    });
  });

  describe('errors handlers throw', () => {
    it('a plain error named and coded like a framework error reaches the caller as a handler error', async () => {
      const error = await client
        .getGrain(Target, 'errors')
        .ask('spoof')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteGrainError);
      expect(error).not.toBeInstanceOf(MailboxFullError);
      expect(error).toMatchObject({ name: 'MailboxFullError', code: 'HANDLER_ERROR', message: 'not really full' });
    });

    it('an error whose name, message and stack getters throw fails its ask at once, and the activation stays', async () => {
      const target = client.getGrain(Target, 'booby');
      await target.ask('add', 1);
      const activations = Target.activations.get('booby');
      const started = Date.now();
      const error = await target
        .with({ timeoutMs: 5_000 })
        .ask('booby')
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(error).toBeInstanceOf(RemoteGrainError);
      expect(error).toMatchObject({ code: 'HANDLER_ERROR' });
      expect(await target.ask('add', 1)).toBe(2);
      expect(Target.activations.get('booby')).toBe(activations);
      log.expectQuiet([/handler failed/]);
    });

    it('a handler that does not await a send the runtime refuses: the turn goes on, nothing is sent, no rejection is left unhandled', async () => {
      expect(await client.getGrain(Target, 'floating').ask('floatingBadSend')).toBe('returned');
      expect(await redis.exists(`${keyPrefix}:q:{Target/floating-target}:id`)).toBe(0);
      // afterEach fails the test on any unhandled rejection (it would end a silo process).
    });

    it('an application error class registered with the client comes back as itself, with its fields', async () => {
      const error = await client
        .getGrain(Target, 'errors')
        .ask('refuse', 42)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InsufficientFunds);
      expect(error).toMatchObject({ name: 'InsufficientFunds', message: '42 more needed', needed: 42 });
    });
  });

  describe('state property names', () => {
    const rows: [string, string, RegExp][] = [
      [
        'a name the runtime reserves',
        '~pack',
        /^Cannot serialize state field "~pack" of Target\/fields: names starting with "~" are reserved$/,
      ],
      ['a lone surrogate', 'lone\uD800', /^Cannot serialize state field "lone\\ud800" of Target\/fields: .*lone surrogate/],
    ];
    it.each(rows)('%s: the turn fails with SerializationError and the state is unchanged', async (_, name, message) => {
      const target = client.getGrain(Target, 'fields');
      const before = await target.ask('get');
      const error = await untyped('fields')
        .ask('setField', name, 'data')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SerializationError);
      expect((error as Error).message).toMatch(message);
      expect(await target.ask('setField', 'fine', 1)).toBe(2);
      expect((await redis.hkeys(`${keyPrefix}:g:{Target/fields}:state`)).sort()).toEqual(['fine', 'n']);
      expect(await target.ask('get')).toBe(before);
    });
  });

  describe('raw jobs written into a mailbox', () => {
    const envelope = { v: 1, a: '{"json":[5]}', c: 'raw', t: 0 };
    const rows: [string, string, Record<string, unknown>, string][] = [
      [
        'a fractional idempotency window',
        'add',
        { ...envelope, m: 'add', i: { k: 'once', w: 1.5 } },
        'malformed message: not a redgrain envelope',
      ],
      [
        'a negative idempotency window',
        'add',
        { ...envelope, m: 'add', i: { k: 'once', w: -5 } },
        'malformed message: not a redgrain envelope',
      ],
      ['a method name of 1 MB', 'add', { ...envelope, m: 'x'.repeat(1_000_000) }, 'malformed message: not a redgrain envelope'],
      [
        'a correlation id of 1 MB',
        'add',
        { ...envelope, m: 'add', c: 'c'.repeat(1_000_000) },
        'malformed message: not a redgrain envelope',
      ],
      [
        'a synchronous method',
        'peek',
        { ...envelope, m: 'peek', a: '{"json":[]}' },
        'UnknownMethodError: Grain type "Target" has no handler "peek"',
      ],
      [
        'arguments that are not an array',
        'add',
        { ...envelope, m: 'add', a: '{"json":5}' },
        'TypeError: message arguments must be an array',
      ],
    ];
    it.each(rows)('%s: failed with its reason, the handler does not run, the grain goes on', async (_, name, data, reason) => {
      const key = `raw-${name}-${rows.findIndex((row) => row[2] === data)}`;
      await rawJob(key, name, data);
      expect(await client.getGrain(Target, key).ask('add', 1)).toBe(1);
      expect(await failedReasons(key)).toEqual([reason]);
    });

    it('a pack: each message is its own turn, a malformed one fails alone, and an empty or oversized pack does not wedge the grain', async () => {
      const good = { ...envelope, m: 'add' };
      await rawJob('pack-mixed', 'pack:2', { v: 1, p: [{ nonsense: true }, good] });
      expect(await client.getGrain(Target, 'pack-mixed').ask('add', 1)).toBe(6);
      expect(await failedReasons('pack-mixed')).toEqual(['message 1 of the pack (pack:2): malformed message: not a redgrain envelope']);
      await rawJob('pack-empty', 'pack:0', { v: 1, p: [] });
      expect(await client.getGrain(Target, 'pack-empty').ask('add', 1)).toBe(1);
      await rawJob('pack-huge', 'pack:1001', { v: 1, p: Array.from({ length: 1_001 }, () => good) });
      expect(await client.getGrain(Target, 'pack-huge').ask('add', 1)).toBe(1);
      expect(await failedReasons('pack-huge')).toEqual(['malformed message: not a redgrain envelope']);
    });
  });

  describe('raw state fields', () => {
    it('a field that is not superjson: ask gets ActivationFailedError naming the field within 5 s; the grain recovers once it is fixed', async () => {
      const state = `${keyPrefix}:g:{Target/state}:state`;
      await redis.hset(state, 'n', 'not superjson {');
      const started = Date.now();
      const error = await client
        .getGrain(Target, 'state')
        .with({ timeoutMs: 5_000 })
        .ask('get')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActivationFailedError);
      expect((error as Error).message).toContain('state field "n" cannot be read');
      expect(Date.now() - started).toBeLessThan(5_000);
      await redis.hset(state, 'n', '{"json":7}');
      expect(
        await waitFor('the grain to activate again', () =>
          client
            .getGrain(Target, 'state')
            .with({ timeoutMs: 1_000 })
            .ask('get')
            .catch(() => undefined),
        ),
      ).toBe(7);
    });
  });

  describe('raw inbox entries', () => {
    it('a 5 MB entry, malformed tags, a bare mark and an unknown type are ignored; no silo stops', async () => {
      const inbox = `${keyPrefix}:s:{${silo.id}}:inbox`;
      await redis.lpush(inbox, 'x'.repeat(5_000_000), '%E0%A4%A', '!', '/', 'Target/', 'Nobody/x');
      await inboxDrained(silo.id);
      const ignored = log.problems().filter((e) => e.message === 'ignored a malformed wake-up');
      expect(ignored.length).toBeGreaterThanOrEqual(4);
      log.entries.length = 0;
    });

    it('a non-canonical tag for an active grain is ignored, not a second activation: onActivate runs once', async () => {
      expect(await client.getGrain(Target, 'c1').ask('add', 1)).toBe(1);
      expect(Target.activations.get('c1')).toBe(1);
      await redis.lpush(`${keyPrefix}:s:{${silo.id}}:inbox`, 'Target/%63%31', 'Target/c%31', '%54arget/c1');
      await inboxDrained(silo.id);
      expect(log.problems().map((e) => e.message)).toEqual(Array(3).fill('ignored a malformed wake-up'));
      log.entries.length = 0;
      expect(await client.getGrain(Target, 'c1').ask('add', 1)).toBe(2);
      expect(Target.activations.get('c1')).toBe(1);
      expect(silo.activationCount).toBe(new Set([...Target.activations.keys(), 'control']).size);
    });
  });

  describe('raw directory entries', () => {
    it('an entry naming a live silo that does not host the type: the grain answers within 5 s', async () => {
      await redis.hset(`${keyPrefix}:g:{Target/misdirected}:dir`, { silo: other.id, epoch: '7', since: '0' });
      expect(await client.getGrain(Target, 'misdirected').with({ timeoutMs: 5_000 }).ask('add', 1)).toBe(1);
    });

    it('an entry with an epoch that is not a number: the grain answers within 5 s', async () => {
      await redis.hset(`${keyPrefix}:g:{Target/bad-epoch}:dir`, { silo: 'long-gone', epoch: 'abc', since: '0' });
      expect(await client.getGrain(Target, 'bad-epoch').with({ timeoutMs: 5_000 }).ask('add', 1)).toBe(1);
    });
  });

  describe('raw membership entries', () => {
    it('a silo whose own record is deleted registers again within 3 heartbeats, and its types stay reachable', async () => {
      const info = `${keyPrefix}:s:{${silo.id}}:info`;
      await redis.del(info);
      const record = await waitFor(
        'the record to be back',
        async () => {
          const hash = await redis.hgetall(info);
          return hash.status === undefined ? undefined : hash;
        },
        { timeoutMs: 600 + 1_000 },
      );
      expect(record).toMatchObject({ id: silo.id, status: 'active', types: 'Target,Counter' });
      expect(await redis.sismember(`${keyPrefix}:silos`, silo.id)).toBe(1);
      expect(await client.getGrain(Target, 'after-rejoin').ask('add', 1)).toBe(1);
      expect(log.problems().map((e) => e.message)).toEqual(['this silo found its membership record missing and registered again']);
      log.entries.length = 0;
    });

    it('a bogus silo record with a heartbeat that is not a number is declared dead within 3 s', async () => {
      await redis.hset(`${keyPrefix}:s:{bogus}:info`, { id: 'bogus', status: 'active', heartbeatAt: 'soon', types: 'Target' });
      await redis.sadd(`${keyPrefix}:silos`, 'bogus');
      await waitFor(
        'the bogus silo to be declared dead and forgotten',
        async () => ((await redis.sismember(`${keyPrefix}:silos`, 'bogus')) === 0 ? true : undefined),
        {
          timeoutMs: 3_000,
        },
      );
      expect(await redis.hget(`${keyPrefix}:s:{bogus}:info`, 'status')).toBe('dead');
      log.entries.length = 0;
    });
  });
});
