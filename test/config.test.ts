import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { connect, InvalidOptionError, Silo } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';

const run = promisify(execFile);

/** Malformed configuration fails at start, naming what to fix, in code and in the silo process. */
describe('configuration at start', () => {
  it('the silo process refuses REDGRAIN_LOG_LEVEL=WARN and a fractional window, naming the variable, before it starts', async () => {
    const silo = (env: Record<string, string>) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'silo', '--grains', 'grains/counter.ts'], {
        env: { ...process.env, REDIS_URL: inject('redisUrl'), REDGRAIN_PREFIX: freshPrefix('config'), ...env },
      }).catch((error: unknown) => error as { code: number; stdout: string; stderr: string });
    const [level, window] = await Promise.all([silo({ REDGRAIN_LOG_LEVEL: 'WARN' }), silo({ REDGRAIN_IDEMPOTENCY_WINDOW_MS: '0.5' })]);
    expect(level).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'redgrain: REDGRAIN_LOG_LEVEL is "WARN": must be one of debug, info, warn, error, silent (lower case)\n',
    });
    expect(window).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'redgrain: REDGRAIN_IDEMPOTENCY_WINDOW_MS is "0.5": must be a whole number of ms, at least 1\n',
    });
  });

  it('Silo.start and connect refuse malformed options before opening a connection', async () => {
    const keyPrefix = freshPrefix('config');
    await expect(Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Counter], idempotencyWindowMs: 1.5 })).rejects.toThrow(
      new InvalidOptionError('Silo option idempotencyWindowMs', '1.5', 'must be a whole number of ms, at least 1'),
    );
    await expect(connect({ redis: inject('redisUrl'), keyPrefix, redisTimeoutMs: Number.NaN })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      option: 'connect option redisTimeoutMs',
      message: 'connect option redisTimeoutMs is NaN: must be a whole number of ms, from 1 to 2147483647',
    });
  });
});
