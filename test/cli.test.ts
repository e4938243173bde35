import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { Counter } from '../grains/counter.ts';
import { Silo, type QueueDepth, type SiloView } from 'redgrain';
import { startRedisServer, TestCluster } from 'redgrain/testing';
import { main } from '../src/cli/main.ts';
import type { LoadTestResult } from '../src/cli/load-test.ts';
import { niceTicks } from '../src/cli/load-test-report.ts';
import { Ledger } from './grains/test-grains.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

/** Runs the `redgrain` command in this process: exit code, stdout lines, stderr lines. */
async function redgrain(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (t) => out.push(t),
    (t) => err.push(t),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('redgrain inspect, as a new user meets it', () => {
  it('shows a silo that stopped heartbeating as suspect before it is declared dead, and the mailbox it left as the deepest', async () => {
    const keyPrefix = freshPrefix('cli-dead');
    const fast = { REDGRAIN_HEARTBEAT_INTERVAL_MS: '200', REDGRAIN_MISSED_HEARTBEATS_LIMIT: '15' }; // declared dead after 3 s of silence
    const cluster = await TestCluster.start({
      grains: ['grains/counter.ts'],
      silos: 1,
      redisUrl: inject('redisUrl'),
      keyPrefix,
      env: fast,
    });
    const inspect = async <T>(...args: string[]): Promise<T> => {
      const { code, out, err } = await redgrain('inspect', ...args, '--redis', inject('redisUrl'), '--prefix', keyPrefix, '--json');
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
        redis: inject('redisUrl'),
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
      const top = await inspect<QueueDepth[]>('top', '--limit', '5');
      expect(top[0]).toMatchObject({ grain: 'Counter/orphan', waiting: 3 });
      expect(top).toHaveLength(1); // the idle grain of the dead silo was not woken: nothing waits for it

      // A misspelt type is an unknown type, with the known ones listed.
      expect(await redgrain('inspect', 'grain', 'Countr', 'warm', '--redis', inject('redisUrl'), '--prefix', keyPrefix)).toEqual({
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

describe('redgrain command errors and help', () => {
  it('prints one line "redgrain: <message>" and exits 1, without an error class name', async () => {
    expect(await redgrain('inspect', 'top', '--limit', 'lots')).toEqual({
      code: 1,
      out: '',
      err: 'redgrain: --limit must be a positive whole number, got "lots"',
    });
    expect(await redgrain('loadtest', '-m', 'grains/counter.ts', '--method', 'add', '--redis', inject('redisUrl'), '--no-report')).toEqual({
      code: 1,
      out: '',
      err: 'redgrain: give exactly one of --rate and --concurrency; give exactly one of --duration and --messages',
    });
    expect(
      await redgrain(
        'loadtest',
        '-m',
        'grains/counter.ts',
        '--method',
        'nope',
        '-n',
        '1',
        '-c',
        '1',
        '--redis',
        inject('redisUrl'),
        '--no-report',
      ),
    ).toEqual({
      code: 1,
      out: '',
      err: 'redgrain: Counter has no handler "nope"',
    });
    const prefix = await redgrain('inspect', 'silos', '--redis', inject('redisUrl'), '--prefix', 'has space');
    expect(prefix).toEqual({
      code: 1,
      out: '',
      err: 'redgrain: keyPrefix is "has space": must be 1-64 characters without braces or whitespace',
    });
  });

  it('--help says which options are required', async () => {
    const help = await redgrain('loadtest', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/-m, --module <path> +\(required\) module exporting the grain class/);
    expect(help.out).toMatch(/--method <name> +\(required\) handler to call/);
    expect(help.out).toMatch(/-r, --rate <n> +fixed rate, messages per second \(open loop\); this or\s+--concurrency is required/);
    expect(help.out.match(/\(required\)/g)).toHaveLength(2);
  });
});

describe('redgrain loadtest against a Redis with a password', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redgrain-cli-'));

  it('never prints the password, leaves no key behind, and keeps the warm-up out of its figures', async () => {
    const server = await startRedisServer({ args: ['--requirepass', 'lt-s3cret-pw'] });
    const admin = new Redis({ port: server.port, password: 'lt-s3cret-pw' });
    try {
      const url = `redis://:lt-s3cret-pw@127.0.0.1:${server.port}`;
      await admin.set('mine:keep', 'untouched');
      const report = join(dir, 'report.html');
      // A prefix made for the run: every key under it goes afterwards.
      const own = await redgrain(
        'loadtest',
        '-m',
        'grains/counter.ts',
        '--method',
        'add',
        '--args',
        '[1]',
        '-k',
        '4',
        '-c',
        '8',
        '-n',
        '400',
        '--redis',
        url,
        '--json',
        '--report',
        report,
      );
      expect(own.err).toBe('');
      expect(own.code).toBe(0);
      const result = JSON.parse(own.out) as LoadTestResult;
      expect(result.plan.redis).toBe(`redis://:***@127.0.0.1:${server.port}`);
      expect(result.exactlyOnce).toMatchObject({ checked: true, processed: 400, lost: 0, duplicated: 0 });
      expect(result.warmup.messages).toBe(40);
      expect(result.measured).toBe(360);
      expect(result.cleanup.removedKeys).toBeGreaterThan(0);
      const html = readFileSync(report, 'utf8');
      for (const text of [own.out, html]) expect(text).not.toContain('lt-s3cret-pw');
      expect(await admin.keys('*')).toEqual(['mine:keep']);

      // Readable charts: gridlines with labelled round values, axis titles, the warm-up shaded.
      expect(html.match(/<svg /g)).toHaveLength(3);
      expect(html.match(/class="warmup"/g)).toHaveLength(3);
      expect(html.match(/seconds since start/g)).toHaveLength(3);
      for (const title of ['messages / s', 'latency (ms)', 'messages waiting']) expect(html).toContain(`>${title}</text>`);
      expect(html.match(/<line class="grid"/g)?.length).toBeGreaterThanOrEqual(3 * 3);
      expect(html).toContain('<text class="y-tick" x="58" y="220.0" font-size="11" text-anchor="end">0</text>');
      expect(html).toContain('warm-up (left out below)');

      // A prefix the user gave may hold other grains: only this run's keys go.
      await admin.set('mine:grain-of-someone-else', 'x');
      const shared = await redgrain(
        'loadtest',
        '-m',
        'grains/counter.ts',
        '--method',
        'add',
        '--args',
        '[1]',
        '-k',
        '2',
        '-r',
        '200',
        '-n',
        '100',
        '--warmup',
        '30',
        '--redis',
        url,
        '--prefix',
        'mine',
        '--no-report',
      );
      expect(shared.code).toBe(0);
      expect(shared.out).not.toContain('lt-s3cret-pw');
      expect(shared.out).toMatch(/warm-up \(left out below\) +first 30 messages, /);
      expect((await admin.keys('*')).sort()).toEqual(['mine:grain-of-someone-else', 'mine:keep']);
    } finally {
      admin.disconnect();
      await server.stop();
    }
  }, 90_000);

  it('labels chart axes with round values', () => {
    expect(niceTicks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(1234)).toEqual([0, 500, 1000, 1500]);
    expect(niceTicks(0.8)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });
});
