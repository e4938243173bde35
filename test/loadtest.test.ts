import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import type { LoadTestResult } from '../src/cli/load-test.ts';
import { onCluster } from './support/redis.ts';

const dir = mkdtempSync(join(tmpdir(), 'redgrain-loadtest-'));

/**
 * The suite's Redis: `--redis <url>` on one Redis; on a Redis Cluster, `REDIS_CLUSTER` in the
 * environment (the flag takes one URL).
 */
const redisFlag = onCluster() ? [] : ['--redis', inject('redisUrl')];
/** How the result's plan names that Redis. */
const redisShown = onCluster() ? `cluster ${inject('redisClusterUrls').join(',')}` : inject('redisUrl');

beforeAll(() => {
  if (onCluster()) vi.stubEnv('REDIS_CLUSTER', inject('redisClusterUrls').join(','));
});
afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

async function loadtest(...args: string[]): Promise<{ code: number; result: LoadTestResult }> {
  const lines: string[] = [];
  const code = await main(['loadtest', ...args, ...redisFlag, '--json'], (text) => lines.push(text));
  return { code, result: JSON.parse(lines.join('\n')) as LoadTestResult };
}

describe('redgrain loadtest', () => {
  it('drives one hot Counter with asks and checks every message ran exactly once', async () => {
    const report = join(dir, 'hot.html');
    const { code, result } = await loadtest(
      '-m',
      'grains/counter.ts',
      '--method',
      'add',
      '--args',
      '[1]',
      '--keys',
      '1',
      '--mode',
      'ask',
      '--concurrency',
      '8',
      '--messages',
      '400',
      '--report',
      report,
    );
    expect(code).toBe(0);
    expect(result.plan.type).toBe('Counter');
    expect(result.plan.redis).toBe(redisShown);
    expect(result.acknowledged).toBe(400);
    expect(result.errorsByType).toEqual({});
    expect(result.exactlyOnce).toMatchObject({ checked: true, processed: 400, expected: 400, lost: 0, duplicated: 0 });
    expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50);
    const html = readFileSync(report, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).toContain('exactly once');
  }, 60_000);

  it('spreads one-way Campaign messages over 10,000 keys at a fixed rate', async () => {
    const { code, result } = await loadtest(
      '-m',
      'grains/campaign.ts',
      '--type',
      'Campaign',
      '--method',
      'get',
      '--keys',
      '10000',
      '--distribution',
      'zipf',
      '--mode',
      'send',
      '--rate',
      '2000',
      '--messages',
      '3000',
      '--silos',
      '2',
      '--no-report',
    );
    expect(code).toBe(0);
    expect(result.plan.redis).toBe(redisShown);
    expect(result.acknowledged).toBe(3000);
    expect(result.exactlyOnce).toMatchObject({ checked: true, processed: 3000, lost: 0, duplicated: 0, pending: 0 });
    expect(result.timeline.length).toBeGreaterThan(0);
  }, 120_000);

  it('exits with code 4 when every call failed (here: no silo ever hosted the type)', async () => {
    const run = promisify(execFile);
    const failed = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/bin.ts',
        'loadtest',
        '-m',
        'grains/counter.ts',
        '--method',
        'add',
        '--args',
        '[1]',
        '--prefix',
        `loadtest-none-${Date.now().toString(36)}`,
        '--silos',
        '0',
        '--concurrency',
        '4',
        '--messages',
        '20',
        '--no-report',
        '--json',
        ...redisFlag,
      ],
      { env: onCluster() ? { ...process.env, REDIS_CLUSTER: inject('redisClusterUrls').join(',') } : process.env },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (error: unknown) => error as { code: number; stdout: string },
    );
    expect(failed.code).toBe(4);
    const result = JSON.parse(failed.stdout) as LoadTestResult;
    expect({ acknowledged: result.acknowledged, errors: result.errorsByType }).toEqual({
      acknowledged: 0,
      errors: { GrainTypeNotRegisteredError: 20 },
    });
  });

  it('refuses a plan that does not say how hard or how long', async () => {
    const lines: string[] = [];
    const errors: string[] = [];
    const code = await main(
      ['loadtest', '-m', 'grains/counter.ts', '--method', 'add', ...redisFlag, '--report', join(dir, 'none.html')],
      (t) => lines.push(t),
      (t) => errors.push(t),
    );
    expect(code).toBe(1);
    expect(errors.join('')).toContain('give exactly one of --rate and --concurrency');
    expect(lines).toEqual([]);
    expect(existsSync(join(dir, 'none.html'))).toBe(false);
  });
});
