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
    // Heartbeats stretched to a minute, so the window sees the cost of grains, not the silo's own
    // fixed beat (a heartbeat and a membership check every interval, whatever the grain count).
    const silo = await Silo.start({
      redis: server.url,
      grains: [Counter],
      keyPrefix: 'scale',
      logLevel: 'error',
      heartbeatIntervalMs: 60_000,
    });
    const client = await connect({ redis: server.url, keyPrefix: 'scale' });
    try {
      // Idle: nothing is sent. Count what Redis executes over a window (the window is the
      // measurement itself), first with no grain, then with 2,000 live activations.
      const idleRate = async (): Promise<number> => {
        const windowMs = 5_000;
        const before = await commandsExecuted(observer);
        await new Promise((resolve) => setTimeout(resolve, windowMs));
        const after = await commandsExecuted(observer);
        return (after - before - 1) / (windowMs / 1_000); // minus the INFO that read "before"
      };
      const baseline = await idleRate();

      const grains = Array.from({ length: 2_000 }, (_, i) => client.getGrain(Counter, `g${i}`));
      for (let i = 0; i < grains.length; i += 200) {
        await Promise.all(grains.slice(i, i + 200).map((g) => g.ask('add', 1)));
      }
      expect(silo.activationCount).toBe(2_000);

      const clients = (await observer.client('LIST')) as string;
      const siloConnections = clients.split('\n').filter((line) => line.includes(`name=redgrain:silo:${silo.id}`));
      expect(siloConnections.length).toBeGreaterThan(0);
      expect(siloConnections.length).toBeLessThanOrEqual(10);

      const withGrains = await idleRate();
      expect(silo.activationCount).toBe(2_000);
      process.stdout.write(
        `[scale] idle commands/s: ${baseline.toFixed(2)} with no grain, ${withGrains.toFixed(2)} with 2000 active grains; ` +
          `${siloConnections.length} silo connections\n`,
      );
      // Left: the blocking inbox read, re-issued every 10 s. An idle activation costs nothing.
      expect(withGrains).toBeLessThan(1);
      expect(withGrains - baseline).toBeLessThan(0.5);
    } finally {
      await client.close();
      await silo.stop();
      observer.disconnect();
      await server.stop();
    }
  });
});
