import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterInspector, connect, RedisUnavailableError, Silo } from 'redgrain';
import { startRedisServer, type RedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { generateTlsFiles, type TlsFiles } from './support/tls-certificates.ts';

const run = promisify(execFile);

/** The README's recommended ACL for an application whose key prefix is `prefix`. */
const recommendedAcl = (prefix: string, password: string) => [
  'on',
  `>${password}`,
  'resetkeys',
  `~${prefix}:*`,
  'resetchannels',
  `&${prefix}:*`,
  '+@all',
  '-@admin',
  '-@dangerous',
  '+info',
];

describe('least-privilege ACL users (the README recommendation)', () => {
  let server: RedisServer;
  let admin: Redis;
  let appA: Redis;
  let appB: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url);
    await admin.call('ACL', 'SETUSER', 'shop', ...recommendedAcl('shop', 'shop-secret'));
    await admin.call('ACL', 'SETUSER', 'blog', ...recommendedAcl('blog', 'blog-secret'));
    appA = new Redis(`redis://shop:shop-secret@127.0.0.1:${server.port}`);
    appB = new Redis(`redis://blog:blog-secret@127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    appA?.disconnect();
    appB?.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it('is enough for a silo, a client and the inspector', async () => {
    const url = `redis://shop:shop-secret@127.0.0.1:${server.port}`;
    const silo = await Silo.start({ redis: url, grains: [Counter], keyPrefix: 'shop', logLevel: 'warn' });
    const client = await connect({ redis: url, keyPrefix: 'shop' });
    const inspector = await ClusterInspector.open({ redis: url, keyPrefix: 'shop' });
    try {
      await client.getGrain(Counter, 'till').send('add', 2);
      expect(await client.getGrain(Counter, 'till').ask('add', 3)).toBe(5);
      expect((await inspector.silos()).map((s) => [s.id, s.status])).toEqual([[silo.id, 'active']]);
      expect(await inspector.grain('Counter', 'till')).toMatchObject({ state: { count: 5 } });
    } finally {
      await inspector.close();
      await client.close();
      await silo.stop();
    }
    expect(await admin.hget('shop:g:{Counter/till}:state', 'count')).not.toBeNull();
  });

  it.each([
    ['ACL SETUSER (widening itself to every key)', ['ACL', 'SETUSER', 'shop', '~*']],
    ['ACL LIST', ['ACL', 'LIST']],
    ['FLUSHALL', ['FLUSHALL']],
    ['FLUSHDB', ['FLUSHDB']],
    ['KEYS', ['KEYS', '*']],
    ['CONFIG GET', ['CONFIG', 'GET', 'requirepass']],
    ['CONFIG SET', ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru']],
    ['CLIENT LIST', ['CLIENT', 'LIST']],
    ['SWAPDB', ['SWAPDB', '0', '1']],
    ['SHUTDOWN', ['SHUTDOWN', 'NOSAVE']],
  ])('refuses the application user %s with NOPERM', async (_label, command) => {
    const [name, ...args] = command as [string, ...string[]];
    await expect(appA.call(name, ...args)).rejects.toThrow(/^NOPERM /);
  });

  it("keeps a second application's user away from the first's keys and channels", async () => {
    await appA.hset('shop:g:{Counter/kept}:state', 'count', '"41"');
    const key = 'shop:g:{Counter/kept}:state';
    // Redis words a refused key inside a script differently from a refused command.
    const scriptDenied = /^ERR The user executing the script can't access at least one of the keys/;
    const denied: [() => Promise<unknown>, RegExp][] = [
      [() => appB.hgetall(key), /^NOPERM /],
      [() => appB.del(key), /^NOPERM /],
      [() => appB.rename(key, 'blog:stolen'), /^NOPERM /],
      [() => appB.copy(key, 'blog:copy'), /^NOPERM /],
      [() => appB.eval("return redis.call('HGETALL', KEYS[1])", 1, key), /^NOPERM /],
      [() => appB.eval("return redis.call('DEL', 'shop:g:{Counter/kept}:state')", 0), scriptDenied],
      [() => appB.publish('shop:reply:someone', 'forged reply'), /^NOPERM /],
    ];
    for (const [attempt, refusal] of denied) await expect(attempt()).rejects.toThrow(refusal);
    const subscriber = new Redis(`redis://blog:blog-secret@127.0.0.1:${server.port}`);
    try {
      await expect(subscriber.subscribe('shop:reply:someone')).rejects.toThrow(/^NOPERM /);
    } finally {
      subscriber.disconnect();
    }
    expect(await admin.hgetall(key)).toEqual({ count: '"41"' });
    // Its own prefix works as usual.
    expect(await appB.set('blog:ok', '1')).toBe('OK');
  });
});

describe('Redis over TLS', () => {
  let tls: TlsFiles;
  let server: RedisServer;

  beforeAll(async () => {
    tls = generateTlsFiles();
    server = await startRedisServer({ tls });
  });
  afterAll(async () => {
    await server?.stop();
    tls?.remove();
  });

  it('runs a silo and a client with the CA passed as tls: { ca } in the redis options', async () => {
    expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
    const redis = { host: '127.0.0.1', port: server.port, tls: { ca: readFileSync(tls.caFile) } };
    const silo = await Silo.start({ redis, grains: [Counter], keyPrefix: 'tls', logLevel: 'warn' });
    const client = await connect({ redis, keyPrefix: 'tls' });
    try {
      expect(await client.getGrain(Counter, 'secure').ask('add', 7)).toBe(7);
    } finally {
      await client.close();
      await silo.stop();
    }
  });

  it('reads REDIS_TLS_CA_FILE for a rediss:// REDIS_URL (here in the redgrain command)', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'inspect', 'silos', '--prefix', 'tls'], {
      env: { ...process.env, REDIS_URL: server.url, REDIS_TLS_CA_FILE: tls.caFile },
    });
    expect(stdout).toBe('No silos in the membership table (wrong --prefix or --redis?).\n');
  });

  it('without the CA, fails at once saying TLS verification failed at host:port', async () => {
    const started = Date.now();
    const error = await connect({ redis: server.url, keyPrefix: 'tls', connectTimeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toBe(
      `Redis at 127.0.0.1:${server.port} is unavailable: TLS verification failed (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain); ` +
        'trust the CA that signed the server certificate with REDIS_TLS_CA_FILE or tls: { ca } in the redis options',
    );
    const cli = await run(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'inspect', 'silos', '--redis', server.url]).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(cli).toMatchObject({ code: 1, stderr: `redgrain: ${(error as Error).message}\n` });
  });
});
