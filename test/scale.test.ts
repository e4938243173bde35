import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { connect, Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';

/** Total commands Redis has executed, from INFO commandstats. */
async function commandsExecuted(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let total = 0;
  for (const match of info.matchAll(/calls=(\d+)/g)) total += Number(match[1]);
  return total;
}

describe('the mailbox engine does not grow with the number of grains', () => {
  it('holds 2,000 active grains on one silo with a constant number of connections and no idle commands', async () => {
    // Its own server: INFO commandstats counts every client of the server.
    const server = await startRedisServer();
    const observer = new Redis(server.url, { connectionName: 'observer' });
    const silo = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: 'scale', logLevel: 'error' });
    const client = await connect({ redis: server.url, keyPrefix: 'scale' });
    try {
      const grains = Array.from({ length: 2_000 }, (_, i) => client.getGrain(Counter, `g${i}`));
      for (let i = 0; i < grains.length; i += 200) {
        await Promise.all(grains.slice(i, i + 200).map((g) => g.ask('add', 1)));
      }
      expect(silo.activationCount).toBe(2_000);

      const clients = (await observer.client('LIST')) as string;
      const siloConnections = clients.split('\n').filter((line) => line.includes(`name=redgrain:silo:${silo.id}`));
      expect(siloConnections.length).toBeGreaterThan(0);
      expect(siloConnections.length).toBeLessThanOrEqual(10);

      // Idle: nothing is sent, every activation stays live. Count what Redis executes over 5 s.
      const windowMs = 5_000;
      const before = await commandsExecuted(observer);
      await new Promise((resolve) => setTimeout(resolve, windowMs)); // the measurement window itself
      const after = await commandsExecuted(observer);
      const perSecond = (after - before - 1) / (windowMs / 1_000); // minus the INFO that read "before"
      expect(silo.activationCount).toBe(2_000);
      process.stdout.write(
        `[scale] 2000 active grains: ${siloConnections.length} silo connections, ${perSecond.toFixed(2)} idle commands/s\n`,
      );
      // Per silo, not per grain: a blocking inbox read every 10 s and a heartbeat every 5 s.
      expect(perSecond).toBeLessThan(1);
    } finally {
      await client.close();
      await silo.stop();
      observer.disconnect();
      await server.stop();
    }
  });
});
