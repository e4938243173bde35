import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from 'redgrain/testing';
import { openRedis, type RedisClient } from '../src/redis/connection.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * A command in flight when its connection drops is never sent again (a resent enqueue could land
 * twice), and ioredis never fails it either: it waited for its command timeout (35 s for this
 * blocking read, 65 s for a reminder worker's), holding up its caller and keeping the process
 * alive. It fails once the connection is back, or at once when the connection is disconnected
 * for good while it waits to reconnect.
 */
describe('commands lost with their connection', () => {
  let server: RedisServer | undefined;
  let redis: RedisClient | undefined;
  afterEach(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  /** A blocking read in flight on a fresh connection; `read` says how it settled (its error's message). */
  const blockingRead = async (name: string) => {
    server = await startRedisServer();
    redis = openRedis(server.url, name, { blockingSeconds: 30 });
    await redis.ping();
    const read = redis.blpop('nothing-comes', 30).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    // Redis has it once it counts a blocked client.
    const watcher = new Redis(server.url);
    try {
      await waitFor('the read to block', async () => (/blocked_clients:1\r?\n/.test(await watcher.info('clients')) ? true : undefined));
    } finally {
      watcher.disconnect();
    }
    return { read };
  };

  it('fails once the connection is back after a Redis restart', async () => {
    const { read } = await blockingRead('dropped-restart');
    await server?.kill();
    await server?.restart();
    const began = Date.now();
    expect(await read).toBe('Connection lost before the reply came (the command may have run)');
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(await redis?.ping()).toBe('PONG');
  });

  it('fails at once, and the connection ends, when it is disconnected while Redis is gone', async () => {
    const { read } = await blockingRead('dropped-gone');
    await server?.kill();
    await new Promise<void>((resolve) => redis?.once('reconnecting', () => resolve()));
    const began = Date.now();
    redis?.disconnect();
    expect(await read).toBe('Connection is closed.');
    expect(Date.now() - began).toBeLessThan(1_000);
    expect(redis?.status).toBe('end');
  });
});
