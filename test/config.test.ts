import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { connect, InvalidOptionError, Silo } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';

const run = promisify(execFile);

/** Malformed configuration fails at start, naming what to fix, in code and in the silo process. */
describe('configuration at start', () => {
  it('the silo process refuses REDGRAIN_LOG_LEVEL=WARN, a fractional window, a port past 65535 and a database that is no number, naming the variable, before it starts', async () => {
    const silo = (env: Record<string, string>) =>
      run(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'silo', '--grains', 'grains/counter.ts'], {
        env: { ...process.env, REDIS_URL: inject('redisUrl'), REDGRAIN_PREFIX: freshPrefix('config'), ...env },
      }).catch((error: unknown) => error as { code: number; stdout: string; stderr: string });
    const [level, window, port, db] = await Promise.all([
      silo({ REDGRAIN_LOG_LEVEL: 'WARN' }),
      silo({ REDGRAIN_IDEMPOTENCY_WINDOW_MS: '0.5' }),
      silo({ REDIS_CLUSTER: 'redis://127.0.0.1:99999' }),
      silo({ REDIS_URL: 'redis://127.0.0.1:7390/abc' }),
    ]);
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
    expect(port).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'redgrain: REDIS_CLUSTER is "redis://127.0.0.1:99999": must have a port from 1 to 65535\n',
    });
    expect(db).toMatchObject({
      code: 1,
      stdout: '',
      stderr:
        'redgrain: REDIS_URL is "redis://127.0.0.1:7390/abc": must name its database as a whole number from 0 to 2147483647, not "abc"\n',
    });
  });

  it('Silo.start and connect refuse malformed options before opening a connection', async () => {
    const keyPrefix = freshPrefix('config');
    await expect(Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Counter], idempotencyWindowMs: 1.5 })).rejects.toThrow(
      new InvalidOptionError('Silo option idempotencyWindowMs', '1.5', 'must be a whole number of ms, at least 1'),
    );
    // A lock under a second expired between its renewals: messages were dead-lettered twice.
    await expect(Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Counter], lockDurationMs: 5 })).rejects.toThrow(
      new InvalidOptionError('Silo option lockDurationMs', '5', 'must be a whole number of ms, from 1000 to 2147483647'),
    );
    await expect(connect({ redis: inject('redisUrl'), keyPrefix, redisTimeoutMs: Number.NaN })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      option: 'connect option redisTimeoutMs',
      message: 'connect option redisTimeoutMs is NaN: must be a whole number of ms, from 1 to 2147483647',
    });
  });
});
