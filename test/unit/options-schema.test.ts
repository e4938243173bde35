import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, randomPlacement } from 'redgrain';
import {
  CONNECT_OPTIONS,
  OPTIONS,
  SILO_OPTIONS,
  redactUrl,
  resolveRedis,
  siloProcessSettings,
  type OptionSpec,
} from '../../src/config/options-schema.ts';
import { resolveConnectOptions } from '../../src/client/connect.ts';
import { resolveSiloOptions } from '../../src/silo/silo-options.ts';
import { Counter } from '../../grains/counter.ts';

/** The rows of the first Markdown table after `heading`, as arrays of trimmed cells. */
function tableAfter(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(heading);
  expect(start, `README heading ${heading}`).toBeGreaterThanOrEqual(0);
  const lines = markdown.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    ); // no cell of these tables holds a pipe
  }
  return rows;
}

/** What the schema says a README row must hold: option, env (or flag), and how the default starts. */
function expectedRows(names: readonly (keyof typeof OPTIONS)[]): { option: string; env: string; defaultText: string }[] {
  return names.map((name) => {
    const spec = OPTIONS[name] as OptionSpec<unknown>;
    const env = spec.env ?? spec.flag;
    return {
      option: spec.name === '' ? '' : `\`${spec.name}\``,
      env: env === undefined ? '' : `\`${env}\``,
      defaultText: spec.defaultText,
    };
  });
}

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const byOption = (rows: { option: string; env: string }[]) =>
  [...rows].sort((a, b) => `${a.option}${a.env}`.localeCompare(`${b.option}${b.env}`));

describe('the options schema', () => {
  it("matches the README's connect table: names, variables and defaults", () => {
    const rows = tableAfter(readme, '### `connect(options?)');
    expect(rows.map((r) => r.length)).toEqual(rows.map(() => 4));
    const readmeRows = rows.map(([option, env, defaultText]) => ({
      option: option as string,
      env: env as string,
      defaultText: defaultText as string,
    }));
    const expected = expectedRows(CONNECT_OPTIONS);
    expect(byOption(readmeRows).map((r) => [r.option, r.env])).toEqual(byOption(expected).map((r) => [r.option, r.env]));
    for (const row of expected) {
      const found = readmeRows.find((r) => r.option === row.option && r.env === row.env);
      expect(
        found?.defaultText.startsWith(row.defaultText),
        `default of ${row.option || row.env}: README "${found?.defaultText}", schema "${row.defaultText}"`,
      ).toBe(true);
    }
  });

  it("matches the README's Silo.start table: names, variables and defaults", () => {
    const rows = tableAfter(readme, '### `Silo.start(options)');
    expect(rows.map((r) => r.length)).toEqual(rows.map(() => 4));
    const readmeRows = rows.map(([option, env, defaultText]) => ({
      option: option as string,
      env: env as string,
      defaultText: defaultText as string,
    }));
    const expected = expectedRows(SILO_OPTIONS);
    expect(byOption(readmeRows).map((r) => [r.option, r.env])).toEqual(byOption(expected).map((r) => [r.option, r.env]));
    for (const row of expected) {
      const found = readmeRows.find((r) => r.option === row.option && r.env === row.env);
      expect(
        found?.defaultText.startsWith(row.defaultText),
        `default of ${row.option || row.env}: README "${found?.defaultText}", schema "${row.defaultText}"`,
      ).toBe(true);
    }
  });

  it('takes a value given in code over its variable, and the variable over the default', () => {
    const env = { REDGRAIN_ASK_TIMEOUT_MS: '2500', REDIS_URL: 'redis://10.0.0.7:6380', REDGRAIN_PREFIX: 'shop' };
    expect(resolveConnectOptions({ askTimeoutMs: 900 }, env)).toMatchObject({
      askTimeoutMs: 900,
      redis: 'redis://10.0.0.7:6380',
      keyPrefix: 'shop',
      redisTimeoutMs: 10_000,
    });
    expect(resolveConnectOptions({}, env).askTimeoutMs).toBe(2500);
    expect(resolveConnectOptions({}, {})).toEqual({
      redis: 'redis://127.0.0.1:6379',
      keyPrefix: 'redgrain',
      askTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      redisTimeoutMs: 10_000,
      maxPayloadBytes: 1_048_576,
      maxPackMessages: 64,
      maxPackBytes: 262_144,
      idempotencyWindowMs: 86_400_000,
      replicas: 0,
      placement: randomPlacement,
      errors: [],
    });
    const silo = resolveSiloOptions(
      { grains: [Counter] },
      {
        REDGRAIN_TURN_BATCH_SIZE: '4',
        REDGRAIN_LOG_LEVEL: 'debug',
        REDGRAIN_SILO_ID: 'web-1',
        REDGRAIN_HEARTBEAT_INTERVAL_MS: '',
        REDGRAIN_REPLICAS: '1',
        REDGRAIN_MAX_PACK_MESSAGES: '1',
      },
    );
    expect(silo).toMatchObject({
      turnBatchSize: 4,
      maxPackMessages: 1,
      replicas: 1,
      logLevel: 'debug',
      siloId: 'web-1',
      heartbeatIntervalMs: 2_000,
      collectionAgeMs: 900_000,
    });
    expect(siloProcessSettings({})).toEqual({ watchdogMs: 60_000 });
    expect(siloProcessSettings({ REDGRAIN_WATCHDOG_MS: '0' })).toEqual({ watchdogMs: 0 });
  });

  it.each([
    [{ REDGRAIN_LOG_LEVEL: 'WARN' }, 'REDGRAIN_LOG_LEVEL is "WARN": must be one of debug, info, warn, error, silent (lower case)'],
    [{ REDGRAIN_IDEMPOTENCY_WINDOW_MS: '1500.5' }, 'REDGRAIN_IDEMPOTENCY_WINDOW_MS is "1500.5": must be a whole number of ms, at least 1'],
    [{ REDGRAIN_TURN_BATCH_SIZE: '0' }, 'REDGRAIN_TURN_BATCH_SIZE is "0": must be a whole number of messages, from 1 to 1000'],
    [
      { REDGRAIN_HEARTBEAT_INTERVAL_MS: '-5' },
      'REDGRAIN_HEARTBEAT_INTERVAL_MS is "-5": must be a whole number of ms, from 1 to 2147483647',
    ],
    [{ REDGRAIN_COLLECTION_AGE_MS: '15min' }, 'REDGRAIN_COLLECTION_AGE_MS is "15min": must be a whole number of ms, from 1 to 2147483647'],
    [{ REDGRAIN_ASK_TIMEOUT_MS: '0x10' }, 'REDGRAIN_ASK_TIMEOUT_MS is "0x10": must be a whole number of ms, from 1 to 2147483647'],
    [{ REDGRAIN_SILO_ID: 'web 1' }, "REDGRAIN_SILO_ID is \"web 1\": must be 1-100 letters, digits, '.', '_' or '-'"],
    [{ REDGRAIN_PREFIX: 'my app' }, 'REDGRAIN_PREFIX is "my app": must be 1-64 characters without braces or whitespace'],
    [
      { REDIS_URL: 'http://u:hunter2@cache:6379' },
      'REDIS_URL is "http://u:***@cache:6379": must be a redis:// or rediss:// URL, not http://',
    ],
    [{ REDIS_URL: 'redis://127.0.0.1:99999' }, 'REDIS_URL is "redis://127.0.0.1:99999": must have a port from 1 to 65535'],
    [
      { REDIS_URL: 'redis://u:hunter2@127.0.0.1:7390/abc' },
      'REDIS_URL is "redis://u:***@127.0.0.1:7390/abc": must name its database as a whole number from 0 to 2147483647, not "abc"',
    ],
    [{ REDIS_CLUSTER: 'redis://127.0.0.1:99999' }, 'REDIS_CLUSTER is "redis://127.0.0.1:99999": must have a port from 1 to 65535'],
    [
      { REDIS_CLUSTER: 'a:7000,b:7001/abc' },
      'REDIS_CLUSTER is "a:7000,b:7001/abc": must name its database as a whole number from 0 to 2147483647, not "abc"',
    ],
    [{ REDIS_CLUSTER: 'a:7000/2' }, 'REDIS_CLUSTER is "a:7000/2": REDIS_CLUSTER: a Redis Cluster has database 0 only'],
  ])('refuses the malformed environment %o at start, naming the variable', (env, message) => {
    const error = (() => {
      try {
        resolveSiloOptions({ grains: [Counter] }, env);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', option: Object.keys(env)[0], message });
  });

  it.each([
    [{ idempotencyWindowMs: 1.5 }, 'Silo option idempotencyWindowMs is 1.5: must be a whole number of ms, at least 1'],
    [{ askTimeoutMs: Number.NaN }, 'Silo option askTimeoutMs is NaN: must be a whole number of ms, from 1 to 2147483647'],
    [{ lockDurationMs: -1 }, 'Silo option lockDurationMs is -1: must be a whole number of ms, from 1000 to 2147483647'],
    [{ collectionAgeMs: 30 * 86_400_000 }, 'Silo option collectionAgeMs is 2592000000: must be a whole number of ms, from 1 to 2147483647'],
    [{ logLevel: 'verbose' }, 'Silo option logLevel is "verbose": must be one of debug, info, warn, error, silent (lower case)'],
    [{ supervision: { maxRestarts: 0 } }, 'Silo option supervision is {"maxRestarts":0}: maxRestarts must be a whole number of at least 1'],
    [{ grains: [] }, 'Silo option grains is an array of 0: must hold at least one grain class'],
    [{ errors: [Date] }, 'Silo option errors is an array of 1: must hold error classes (classes extending Error) only'],
    [{ redis: 6379 }, 'Silo option redis is 6379: must be a Redis URL (redis://, rediss://), ioredis options, or { cluster: [...] }'],
    [
      { redis: 'https://app:hunter2@cache' },
      'Silo option redis is "https://app:***@cache": must be a redis:// or rediss:// URL, not https://',
    ],
    [{ redis: 'redis://127.0.0.1:99999' }, 'Silo option redis is "redis://127.0.0.1:99999": must have a port from 1 to 65535'],
    [{ redis: 'redis://127.0.0.1:0' }, 'Silo option redis is "redis://127.0.0.1:0": must have a port from 1 to 65535'],
    [{ redis: 'redis://127.0.0.1:6379x' }, 'Silo option redis is "redis://127.0.0.1:6379x": must have a port from 1 to 65535'],
    [
      { redis: 'redis://127.0.0.1:7390/-1' },
      'Silo option redis is "redis://127.0.0.1:7390/-1": must name its database as a whole number from 0 to 2147483647, not "-1"',
    ],
    [
      { redis: 'rediss://cache/1.5' },
      'Silo option redis is "rediss://cache/1.5": must name its database as a whole number from 0 to 2147483647, not "1.5"',
    ],
    [
      { redis: 'redis://cache/3000000000' },
      'Silo option redis is "redis://cache/3000000000": must name its database as a whole number from 0 to 2147483647, not "3000000000"',
    ],
    [
      { redis: 'redis://cache:6379?db=two' },
      'Silo option redis is "redis://cache:6379?db=two": must name its database as a whole number from 0 to 2147483647, not "two"',
    ],
    [
      { redis: { cluster: ['redis://a:7000', 'redis://b:70001'] } },
      'Silo option redis is {"cluster":["redis://a:7000","redis://b:70001"]}: must have a port from 1 to 65535',
    ],
    [
      { redis: { cluster: ['redis://a:7000/3'] } },
      'Silo option redis is {"cluster":["redis://a:7000/3"]}: cluster: a Redis Cluster has database 0 only',
    ],
  ])('refuses the malformed option %o given in code, naming it', (options, message) => {
    expect(() => resolveSiloOptions({ grains: [Counter], ...options } as never, {})).toThrow(InvalidOptionError);
    expect(() => resolveSiloOptions({ grains: [Counter], ...options } as never, {})).toThrow(message);
  });

  it('refuses a fractional window passed to connect, and a bad watchdog deadline of the silo process', () => {
    expect(() => resolveConnectOptions({ idempotencyWindowMs: 60_000.5 }, {})).toThrow(
      'connect option idempotencyWindowMs is 60000.5: must be a whole number of ms, at least 1',
    );
    expect(() => siloProcessSettings({ REDGRAIN_WATCHDOG_MS: '-1' })).toThrow(
      'REDGRAIN_WATCHDOG_MS is "-1": must be a whole number of ms (0 turns it off), from 0 to 2147483647',
    );
  });

  it('never shows a password: URLs in messages are redacted, and REDIS_TLS_CA_FILE must be readable', () => {
    expect(redactUrl('rediss://app:s3cret@cache.internal:6380/2')).toBe('rediss://app:***@cache.internal:6380/2');
    expect(redactUrl('redis://cache:6379')).toBe('redis://cache:6379');
    expect(() =>
      resolveRedis(undefined, { REDIS_URL: 'rediss://app:s3cret@cache:6380', REDIS_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'redis'),
    ).toThrow('REDIS_TLS_CA_FILE is "/nonexistent/ca.pem": cannot be read (ENOENT)');
    // Without a CA file, a URL passes through unchanged; with one it becomes ioredis options.
    expect(resolveRedis(undefined, { REDIS_URL: 'rediss://app:s3cret@cache:6380/2' }, 'redis')).toBe('rediss://app:s3cret@cache:6380/2');
    const withCa = resolveRedis(
      'rediss://app:s3cret@cache:6380/2',
      { REDIS_TLS_CA_FILE: new URL('../../package.json', import.meta.url).pathname },
      'redis',
    );
    expect(withCa).toMatchObject({
      host: 'cache',
      port: 6380,
      username: 'app',
      password: 's3cret',
      db: 2,
      tls: { ca: expect.any(Buffer) },
    });
  });

  it('reads a Redis Cluster from REDIS_CLUSTER and Sentinel from REDIS_SENTINELS, both winning over REDIS_URL, and checks them', () => {
    expect(resolveRedis(undefined, { REDIS_CLUSTER: 'redis://a:7000, b:7001', REDIS_URL: 'redis://elsewhere' }, 'redis')).toEqual({
      cluster: ['redis://a:7000', 'redis://b:7001'],
    });
    expect(
      resolveRedis(undefined, { REDIS_SENTINELS: 's1:26379,s2', REDIS_SENTINEL_NAME: 'orders', REDIS_URL: 'redis://x' }, 'redis'),
    ).toEqual({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 6379 },
      ],
      name: 'orders',
    });
    // The option given in code wins over every variable.
    expect(resolveRedis({ cluster: ['redis://c:7000'] }, { REDIS_CLUSTER: 'redis://a:7000' }, 'redis')).toEqual({
      cluster: ['redis://c:7000'],
    });
    expect(() => resolveRedis(undefined, { REDIS_CLUSTER: 'https://a:7000' }, 'redis')).toThrow(
      'REDIS_CLUSTER is "https://a:7000": must be a redis:// or rediss:// URL, not https://',
    );
    expect(() => resolveSiloOptions({ grains: [Counter], redis: { cluster: [] } }, {})).toThrow(
      'Silo option redis is {"cluster":[]}: cluster must list at least one node (redis:// URLs or { host, port })',
    );
    expect(() => resolveSiloOptions({ grains: [Counter], redis: { sentinels: [{ host: 's', port: 26379 }] } }, {})).toThrow(
      'with sentinels, name (the master group name) is required',
    );
  });
});
