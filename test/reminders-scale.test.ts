import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterInspector, connect, Silo, type GrainClient } from 'redgrain';
import { startRedisServer, type RedisServer } from 'redgrain/testing';
import { GrainId } from '../src/grain/grain-id.ts';
import { createMailboxBackend } from '../src/mailbox/mailbox-backend.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { ReminderTable } from '../src/reminders/reminder-table.ts';
import { Alarm, type RecordedTick } from './grains/alarm.ts';
import { waitFor } from './support/wait-for.ts';

const REGISTERED = 100_000;
const WINDOW_MS = 2_000;

/**
 * Reminders cost what is due, not what is registered: 100,000 reminders due tomorrow add no
 * Redis work while nothing is due, and one due now still fires. The test owns its Redis, so the
 * command counts are the silo's alone.
 */
describe('100,000 registered reminders', () => {
  const keyPrefix = 'scale';
  let server: RedisServer;
  let redis: Redis;
  let silo: Silo;
  let client: GrainClient;

  /** Commands Redis processed during a fixed window, minus the INFO calls themselves. */
  const commandsDuring = async (ms: number): Promise<number> => {
    const read = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1]);
    const before = await read();
    await new Promise((resolve) => setTimeout(resolve, ms)); // a measurement window, not a wait for an event
    return (await read()) - before - 1;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    silo = await Silo.start({ redis: server.url, keyPrefix, grains: [Alarm], logLevel: 'warn', heartbeatIntervalMs: 60_000 });
    client = await connect({ redis: server.url, keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
    redis?.disconnect();
    await server?.stop();
  });

  it('adds no idle Redis work, and a due reminder still fires', async () => {
    const idleBefore = await commandsDuring(WINDOW_MS);

    // Registered through the same table grains use, many at a time (as many grains would).
    const keys = new RedisKeys(keyPrefix);
    const connection = new Redis(server.url);
    const table = new ReminderTable(connection, keys, await createMailboxBackend(connection, keys, { lockDurationMs: 30_000 }));
    for (let i = 0; i < REGISTERED; i += 1_000) {
      await Promise.all(
        Array.from({ length: 1_000 }, (_, j) =>
          table.register(GrainId.of('Alarm', `idle-${i + j}`), 'daily', { every: 86_400_000 }, 'ring', '{"json":["daily"]}'),
        ),
      );
    }
    await table.close();
    connection.disconnect();

    const idleAfter = await commandsDuring(WINDOW_MS);
    expect(idleAfter).toBeLessThanOrEqual(idleBefore * 1.5 + 10);

    await client.getGrain(Alarm, 'due').ask('set', 'now', { after: 200 });
    const inspector = await ClusterInspector.open({ redis: server.url, keyPrefix });
    try {
      const ticks = await waitFor('the due reminder to fire', async () => {
        const t = ((await inspector.grain('Alarm', 'due')).state.ticks as RecordedTick[] | undefined) ?? [];
        return t.length > 0 ? t : undefined;
      });
      expect(ticks.map((t) => t.label)).toEqual(['now']);
    } finally {
      await inspector.close();
    }
    console.log(`[reminders] idle commands per ${WINDOW_MS} ms: ${idleBefore} with none registered, ${idleAfter} with ${REGISTERED}`);
  }, 120_000);
});
