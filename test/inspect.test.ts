import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { connect, Silo, type GrainClient, type QueueDepth, type SiloView } from 'redgrain';
import { TestCluster } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { main } from '../src/cli/main.ts';
import { Ledger } from './grains/test-grains.ts';
import { freshPrefix } from './support/prefix.ts';
import { onCluster, rawRedis, testClusterRedis, testRedis, testRedisEnv } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';
import { redgrain } from './support/cli.ts';

const runBin = promisify(execFile);

/**
 * How the tools are pointed at the suite's Redis: `--redis <url>` on one Redis; on a Redis
 * Cluster, `REDIS_CLUSTER` in the environment (the flag takes one URL).
 */
const redisFlag = onCluster() ? [] : ['--redis', inject('redisUrl')];

beforeAll(() => {
  if (onCluster()) vi.stubEnv('REDIS_CLUSTER', inject('redisClusterUrls').join(','));
});
afterAll(() => {
  vi.unstubAllEnvs();
});

/** `redgrain inspect` against a live silo: what an operator asks while something is stuck. */
describe('redgrain inspect', () => {
  const keyPrefix = freshPrefix('inspect');
  let silo: Silo;
  let client: GrainClient;

  const inspect = async (...args: string[]): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    const code = await main(['inspect', ...args, ...redisFlag, '--prefix', keyPrefix], (text) => lines.push(text));
    return { code, text: lines.join('\n') };
  };
  const inspectJson = async <T>(...args: string[]): Promise<T> => {
    const { code, text } = await inspect(...args, '--json');
    expect(code).toBe(0);
    return JSON.parse(text) as T;
  };

  beforeAll(async () => {
    silo = await Silo.start({ redis: testRedis(), keyPrefix, grains: [Ledger], logLevel: 'silent' });
    client = await connect({ redis: testRedis(), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
  });

  it('lists silos with status, heartbeat age, activations and types', async () => {
    await client.getGrain(Ledger, 'warm').ask('credit', 'a', 1);
    const silos = await inspectJson<{ id: string; status: string; heartbeatAgeMs: number; types: string[] }[]>('silos');
    expect(silos).toHaveLength(1);
    expect(silos[0]).toMatchObject({ id: silo.id, status: 'active', types: ['Ledger'] });
    expect(silos[0]?.heartbeatAgeMs).toBeLessThan(10_000);
    const { text } = await inspect('silos');
    expect(text).toMatch(
      new RegExp(`^SILO +STATUS +HEARTBEAT +ACTIVATIONS +HOST +TYPES\\n${silo.id} +active +[\\d.]+ m?s ago +\\d+ .* Ledger$`),
    );
  });

  it('shows a busy grain: owner, waiting messages in order, failed messages, state; and ranks it first', async () => {
    const ledger = client.getGrain(Ledger, 'busy').with({ correlationId: 'ops-1' });
    await ledger.ask('credit', 'first', 5);
    await expect(ledger.ask('failPlain', 'bad input')).rejects.toThrow('bad input');
    // A slow turn holds the mailbox while three more messages wait behind it.
    const slow = ledger.ask('slow', 3_000);
    slow.catch(() => undefined); // awaited at the end; a failed assertion must not leave it unhandled
    await waitFor('the slow turn to start', async () =>
      (await inspectJson<{ mailbox: { active: number } }>('grain', 'Ledger', 'busy')).mailbox.active === 1 ? true : undefined,
    );
    for (const id of ['w1', 'w2', 'w3']) await ledger.send('credit', id, 1);

    const grain = await inspectJson<{
      owner: { silo: string; epoch: string };
      mailbox: { waiting: number; active: number; failed: number };
      waiting: { id: string; method: string; correlationId: string; sentAt: string }[];
      failed: { method: string; reason: string }[];
      state: { balance: string; entries: Record<string, unknown> };
    }>('grain', 'Ledger', 'busy');
    expect(grain.owner.silo).toBe(silo.id);
    expect(Number(grain.owner.epoch)).toBeGreaterThan(0);
    expect(grain.mailbox).toMatchObject({ waiting: 3, active: 1, failed: 1 });
    expect(grain.waiting.map((m) => m.method)).toEqual(['credit', 'credit', 'credit']);
    expect(grain.waiting.every((m) => m.correlationId === 'ops-1')).toBe(true);
    const sent = grain.waiting.map((m) => Date.parse(m.sentAt));
    expect(sent).toEqual([...sent].sort((a, b) => a - b)); // oldest first, the order they run in
    expect(grain.failed).toEqual([expect.objectContaining({ method: 'failPlain', reason: 'TypeError: bad input' })]);
    expect(grain.state.balance).toBe('5');
    expect(Object.keys(grain.state.entries)).toEqual(['first']);

    const top = await inspectJson<{ grain: string; waiting: number; owner: string }[]>('top', '--limit', '1');
    expect(top).toEqual([{ grain: 'Ledger/busy', type: 'Ledger', key: 'busy', waiting: 3, owner: silo.id, ownerStatus: 'active' }]);
    const { text } = await inspect('grain', 'Ledger', 'busy');
    expect(text).toContain(`owner    ${silo.id} (active), epoch ${grain.owner.epoch}`);
    expect(text).toContain('mailbox  3 waiting, 1 in progress, 1 failed, 0 delayed');
    expect(text).toMatch(/\nstate\n {2}balance = "5"\n {2}entries = \{"first":/);
    expect(text).toMatch(/waiting \(oldest first\)\nID +METHOD +SENT +CORRELATION\n(\d+) +credit .* ops-1\n/);
    await slow;
  });

  it('counts and lists the messages of a pack one by one', async () => {
    const ledger = client.getGrain(Ledger, 'packed');
    await ledger.ask('credit', 'first', 1);
    const slow = ledger.ask('slow', 3_000);
    slow.catch(() => undefined); // awaited at the end; a failed assertion must not leave it unhandled
    await waitFor('the slow turn to start', async () =>
      (await inspectJson<{ mailbox: { active: number } }>('grain', 'Ledger', 'packed')).mailbox.active === 1 ? true : undefined,
    );
    // Sent at once: the first goes alone, the three behind it as one pack.
    await Promise.all(['p1', 'p2', 'p3', 'p4'].map((id) => ledger.send('credit', id, 1)));
    const grain = await inspectJson<{ mailbox: { waiting: number }; waiting: { id: string; method: string }[] }>(
      'grain',
      'Ledger',
      'packed',
    );
    expect(grain.mailbox.waiting).toBe(4);
    const [alone, ...packed] = grain.waiting;
    const pack = packed[0]?.id.split('.')[0];
    expect({ alone: /^\d+$/.test(alone?.id ?? ''), packed: packed.map((m) => m.id) }).toEqual({
      alone: true,
      packed: [`${pack}.0`, `${pack}.1`, `${pack}.2`],
    });
    expect(grain.waiting.map((m) => m.method)).toEqual(['credit', 'credit', 'credit', 'credit']);
    await slow;
    expect([...(await ledger.ask('snapshot')).entries.keys()]).toEqual(['first', 'p1', 'p2', 'p3', 'p4']);
  });

  it('lists the newest dead letters first, as many as asked for', async () => {
    const redis = rawRedis();
    const stream = `${keyPrefix}:deadletters`;
    try {
      for (const method of ['first', 'second', 'third']) {
        await redis.xadd(
          stream,
          '*',
          'grain',
          'Counter/dl',
          'method',
          method,
          'reason',
          'r',
          'attempts',
          '3',
          'silo',
          's',
          'message',
          'null',
        );
      }
      const letters = await inspectJson<{ method: string }[]>('dead-letters', '--limit', '2');
      expect(letters.map((letter) => letter.method)).toEqual(['third', 'second']);
    } finally {
      await redis.del(stream); // the command test below expects none
      redis.disconnect();
    }
  });

  it('runs as the redgrain command, and fails clearly on bad input', async () => {
    // Its Redis from the environment, as an operator's shell gives it.
    const { REDIS_URL: _url, REDIS_CLUSTER: _cluster, REDIS_SENTINELS: _sentinels, ...env } = process.env;
    const { stdout } = await runBin(
      process.execPath,
      ['--import', 'tsx', 'src/cli/bin.ts', 'inspect', 'dead-letters', '--prefix', keyPrefix],
      { env: { ...env, ...testRedisEnv() } },
    );
    expect(stdout.trim()).toBe('No dead letters.');
    const failure = await runBin(process.execPath, [
      '--import',
      'tsx',
      'src/cli/bin.ts',
      'inspect',
      'top',
      '--limit',
      'lots',
      ...redisFlag,
    ]).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failure).toMatchObject({ code: 1, stderr: expect.stringContaining('--limit must be a positive whole number') });
  });
});

describe('redgrain inspect, as a new user meets it', () => {
  it('shows a silo that stopped heartbeating as suspect before it is declared dead, and the mailbox it left as the deepest', async () => {
    const keyPrefix = freshPrefix('cli-dead');
    const fast = { REDGRAIN_HEARTBEAT_INTERVAL_MS: '200', REDGRAIN_MISSED_HEARTBEATS_LIMIT: '15' }; // declared dead after 3 s of silence
    const cluster = await TestCluster.start({
      grains: ['grains/counter.ts'],
      silos: 1,
      ...testClusterRedis(),
      keyPrefix,
      env: fast,
    });
    const inspect = async <T>(...args: string[]): Promise<T> => {
      const { code, out, err } = await redgrain('inspect', ...args, ...redisFlag, '--prefix', keyPrefix, '--json');
      expect(err).toBe('');
      expect(code).toBe(0);
      return JSON.parse(out) as T;
    };
    let monitor: Silo | undefined;
    try {
      const client = await cluster.connect();
      const doomed = cluster.silos[0]!;
      expect(await client.getGrain(Counter, 'warm').ask('add', 1)).toBe(1);
      expect((await inspect<SiloView[]>('silos')).map((s) => [s.id, s.status])).toEqual([[doomed.id, 'active']]);

      doomed.signal('SIGKILL');
      await doomed.exited;
      // Sent while the silo is dead but still listed: the wake-ups land in its inbox, nowhere else.
      for (let i = 0; i < 3; i++) await client.getGrain(Counter, 'orphan').send('add', 1);
      const statuses: string[] = [];
      await waitFor('the dead silo to show as suspect', async () => {
        const status = (await inspect<SiloView[]>('silos')).find((s) => s.id === doomed.id)?.status;
        if (status !== undefined && statuses.at(-1) !== status) statuses.push(status);
        return status === 'suspect' ? true : undefined;
      });
      expect(statuses).toEqual(statuses.includes('active') ? ['active', 'suspect'] : ['suspect']);
      // Never claimed, so no owner: JSON leaves the owner fields out.
      expect(await inspect<QueueDepth[]>('top', '--limit', '5')).toStrictEqual([
        { grain: 'Counter/orphan', type: 'Counter', key: 'orphan', waiting: 3 },
        { grain: 'Counter/warm', type: 'Counter', key: 'warm', waiting: 0, owner: doomed.id, ownerStatus: 'active' },
      ]);

      // A silo of another type declares it dead and takes its grains over; with no Counter host
      // left the orphan waits in the type's pending list, and top still shows it.
      monitor = await Silo.start({
        redis: testRedis(),
        keyPrefix,
        grains: [Ledger],
        heartbeatIntervalMs: 200,
        missedHeartbeatsLimit: 15,
        logLevel: 'silent',
      });
      await waitFor(
        'the dead silo to be declared dead',
        async () => {
          const status = (await inspect<SiloView[]>('silos')).find((s) => s.id === doomed.id)?.status;
          if (status !== undefined && statuses.at(-1) !== status) statuses.push(status);
          return status === undefined || status === 'dead' ? true : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(statuses.slice(0, statuses.indexOf('suspect') + 1).at(-1)).toBe('suspect');
      expect(statuses.filter((s) => s !== 'active' && s !== 'suspect' && s !== 'dead')).toEqual([]);
      // Declared dead, its grains are taken over next (its grain set goes then): wait for that.
      const top = await waitFor('the takeover to finish', async () => {
        const listed = await inspect<QueueDepth[]>('top', '--limit', '5');
        return listed.some((g) => g.grain === 'Counter/warm' && g.owner === doomed.id) ? undefined : listed;
      });
      expect(top[0]).toMatchObject({ grain: 'Counter/orphan', waiting: 3 });
      expect(top).toHaveLength(1); // the idle grain of the dead silo was not woken: nothing waits for it

      // A misspelt type is an unknown type, with the known ones listed.
      expect(await redgrain('inspect', 'grain', 'Countr', 'warm', ...redisFlag, '--prefix', keyPrefix)).toEqual({
        code: 1,
        out: '',
        err: 'redgrain: Grain type "Countr" is not registered: no silo with this key prefix has ever hosted it (registered types: Counter, Ledger)',
      });
    } finally {
      await monitor?.stop();
      await cluster.stop();
    }
  }, 90_000);
});
