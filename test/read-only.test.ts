import { describe, expect, it } from 'vitest';
import { connect, Grain, InvalidGrainClassError, ReadOnlyHandlerError, readOnly, Silo, stateMachine, StateMachineGrain } from 'redgrain';
import { MachineOperator } from '../grains/machine-operator.ts';
import { Gauge, held } from './grains/read-only-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { freshPrefix } from './support/prefix.ts';
import { rawRedis, testRedis } from './support/redis.ts';

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => undefined as void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Read-only handlers: answered beside the turn in progress, from the committed state; they change nothing. */
describe('read-only handlers', () => {
  const cluster = inProcessSilo('read-only', [Gauge, MachineOperator]);
  const redis = rawRedis();

  it('answers an ask from the committed state while an exclusive turn holds the grain, and several at once', async () => {
    const writer = cluster.client;
    const gauge = writer.getGrain(Gauge, 'busy');
    expect(await gauge.ask('set', 5)).toBe(5);
    const release = gate();
    held.set('busy', release.promise);
    const settled: string[] = [];
    const holding = gauge.ask('hold', 9).then((level) => settled.push(`hold ${level}`));
    // Queued behind the held turn: exclusive messages wait for it.
    const queued = gauge.ask('set', 11).then((level) => settled.push(`set ${level}`));
    // Another client, with nothing of its own queued for the grain: its reads go straight to the activation.
    const reader = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
    try {
      const reads = await Promise.all(Array.from({ length: 5 }, () => reader.getGrain(Gauge, 'busy').ask('read')));
      settled.push(`reads ${reads.join(',')}`);
      release.open();
      await Promise.all([holding, queued]);
      expect(settled).toEqual(['reads 5,5,5,5,5', 'hold 9', 'set 11']);
      expect(await reader.getGrain(Gauge, 'busy').ask('read')).toBe(11);
    } finally {
      await reader.close();
      held.delete('busy');
    }
  });

  it("waits behind the caller's own queued messages: a caller reads its own writes", async () => {
    const gauge = cluster.client.getGrain(Gauge, 'own');
    const release = gate();
    held.set('own', release.promise);
    const holding = gauge.ask('hold', 3);
    await gauge.send('set', 4);
    const settled: string[] = [];
    const read = gauge.ask('read').then((level) => settled.push(`read ${level}`));
    const hold = holding.then((level) => settled.push(`hold ${level}`));
    // Had it gone straight to the activation, the read would be answered before another client's
    // direct read made after it (one silo answers its queries in order); through the mailbox it
    // waits for hold and set.
    const other = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
    try {
      expect(await other.getGrain(Gauge, 'own').ask('read')).toBe(0);
    } finally {
      await other.close();
    }
    expect(settled).toEqual([]);
    release.open();
    await Promise.all([read, hold]);
    expect(settled).toEqual(['hold 3', 'read 4']);
    held.delete('own');
  });

  it('activates a grain that is not active, through its mailbox, and answers', async () => {
    const fresh = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
    try {
      expect(await fresh.getGrain(Gauge, 'cold').ask('read')).toBe(0);
    } finally {
      await fresh.close();
    }
  });

  it.each([
    ['poke', 'change the state'],
    ['leak', 'send a message'],
    ['leakUnawaited', 'send a message'],
    ['shout', 'publish'],
    ['nag', 'register a reminder'],
    ['tick', 'set a timer'],
  ] as const)(
    'refuses %s (it would %s) with ReadOnlyHandlerError, directly and through the mailbox; nothing changes',
    async (method, attempted) => {
      const key = `refuse-${method}`;
      const direct = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
      try {
        const gauge = cluster.client.getGrain(Gauge, key);
        expect(await gauge.ask('set', 1)).toBe(1); // active, and this client's messages all processed
        // Directly (nothing of this client queued) and through the mailbox (a send queued first).
        const directError = await direct
          .getGrain(Gauge, key)
          .ask(method)
          .catch((error: unknown) => error);
        await gauge.send('set', 2);
        const queuedError = await gauge.ask(method).catch((error: unknown) => error);
        for (const error of [directError, queuedError]) {
          expect(error).toBeInstanceOf(ReadOnlyHandlerError);
          expect(error).toMatchObject({
            code: 'READ_ONLY_HANDLER',
            grainType: 'Gauge',
            method,
            message: `Gauge.${method} is read-only and cannot ${attempted}; nothing was changed`,
          });
        }
        expect(await gauge.ask('set', 7)).toBe(7);
        expect(await redis.hget(`${cluster.keyPrefix}:g:{Gauge/${key}}:state`, 'reads')).toBe('{"json":0}');
        expect(await redis.exists(`${cluster.keyPrefix}:g:{Gauge/${key}-other}:state`)).toBe(0);
        expect(await redis.exists(`${cluster.keyPrefix}:g:{Gauge/${key}}:reminders`)).toBe(0);
      } finally {
        await direct.close();
      }
    },
  );

  it('may ask other grains', async () => {
    const gauges = cluster.client;
    expect(await gauges.getGrain(Gauge, 'source').ask('set', 42)).toBe(42);
    expect(await gauges.getGrain(Gauge, 'asker').ask('set', 0)).toBe(0);
    const direct = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
    try {
      expect(await direct.getGrain(Gauge, 'asker').ask('readOther', 'source')).toBe(42);
    } finally {
      await direct.close();
    }
  });

  it('answers the machine operator’s status query during a job, then the signals move it to DONE', async () => {
    const operator = cluster.client.getGrain(MachineOperator, 'press');
    await operator.send('setUp', 'ann');
    expect(await operator.ask('status')).toEqual({ status: 'UP', jobs: 0, transitions: 1 });
    const job = operator.ask('runJob', 1_000);
    const watcher = await connect({ redis: testRedis(), keyPrefix: cluster.keyPrefix });
    try {
      let jobDone = false;
      void job.then(() => (jobDone = true));
      const during = await watcher.getGrain(MachineOperator, 'press').ask('status');
      expect([during, jobDone]).toEqual([{ status: 'UP', jobs: 0, transitions: 1 }, false]);
      expect(await job).toBe(1);
      await operator.send('tearDown', 'ann');
      await operator.send('complete', 'bob');
      expect(await operator.ask('status')).toEqual({ status: 'DONE', jobs: 1, transitions: 4 });
    } finally {
      await watcher.close();
    }
  });
});

describe('read-only declarations', () => {
  it('refuse a name that is not a handler, and a read-only handler the state machine moves on', async () => {
    class Wrong extends Grain<object> {
      static readonly type = 'WrongReadOnly';
      static readonly readOnly = ['nope'];
      initialState() {
        return {};
      }
      async get() {
        return 1;
      }
    }
    class Moving extends StateMachineGrain<{ status: 'A' | 'B'; history: [] }> {
      static readonly type = 'MovingReadOnly';
      static readonly machine = stateMachine<Moving>()({ initial: 'A', states: { A: { go: 'B' }, B: {} } });
      static readonly readOnly = readOnly<Moving>('go');
      initialState() {
        return { status: 'A' as const, history: [] as [] };
      }
      async go() {}
    }
    const start = (grains: Parameters<typeof Silo.start>[0]['grains']) =>
      Silo.start({ redis: testRedis(), keyPrefix: freshPrefix('ro-bad'), grains, logLevel: 'silent' });
    await expect(start([Wrong])).rejects.toThrow(
      new InvalidGrainClassError('WrongReadOnly.readOnly names "nope", which is not a handler of the class'),
    );
    await expect(start([Moving])).rejects.toThrow(
      new InvalidGrainClassError('MovingReadOnly.go is read-only, so it cannot be a transition of the state machine'),
    );
  });
});
