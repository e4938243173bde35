import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer } from 'redgrain/testing';
import type { LoadTestResult } from '../src/cli/load-test.ts';
import { niceTicks } from '../src/cli/load-test-report.ts';
import { redgrain } from './support/cli.ts';

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
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
