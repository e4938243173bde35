import { Redis } from 'ioredis';
import { startDashboard } from 'redgrain';
import { MembershipTable } from '../src/membership/membership-table.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { registerScripts } from '../src/redis/scripts.ts';
import { median } from './stats.ts';

/**
 * The dashboard's API latency with the cluster it is pointed at: `silos` membership records in
 * all (the running silo plus records written through the membership table, heartbeating with
 * stats as a silo does) and whatever grains the running silos hold. Medians of `rounds` requests.
 */
export async function measureDashboard(
  redisUrl: string,
  keyPrefix: string,
  silos: number,
  rounds = 20,
): Promise<{ overviewMs: number; grainsPageMs: number; listedSilos: number }> {
  const redis = registerScripts(new Redis(redisUrl, { maxRetriesPerRequest: null }));
  const table = new MembershipTable(redis, new RedisKeys(keyPrefix));
  const existing = (await table.readAll()).length;
  for (let i = existing; i < silos; i++) {
    const id = `bench-silo-${i}`;
    const now = Date.now();
    await table.join({
      id,
      status: 'active',
      host: 'bench',
      pid: i,
      types: ['Counter'],
      startedAt: now,
      heartbeatAt: now,
      activations: 100,
      heartbeatIntervalMs: 60_000,
    });
    await table.heartbeat(id, 100, {
      processed: 1_000 * i,
      failed: 0,
      deadLettered: 0,
      turnP50Ms: 1,
      turnP99Ms: 5,
      activationsByType: { Counter: 100 },
      mailboxDepth: 0,
    });
  }
  // The shortest sample interval: the dashboard reads the deepest mailboxes again at most once
  // per interval, so each timed request below, made after it, pays for a full read.
  const sampleMs = 100;
  const dashboard = await startDashboard({ redis: redisUrl, keyPrefix, port: 0, sampleMs });
  try {
    const time = async (path: string): Promise<number> => {
      const samples: number[] = [];
      for (let i = 0; i < rounds; i++) {
        await new Promise((resolve) => setTimeout(resolve, sampleMs + 10));
        const start = performance.now();
        const response = await fetch(`${dashboard.url}${path}`);
        if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
        await response.text();
        samples.push(performance.now() - start);
      }
      return median(samples);
    };
    const overview = (await (await fetch(`${dashboard.url}api/overview`)).json()) as { silos: unknown[] };
    return { overviewMs: await time('api/overview'), grainsPageMs: await time('api/grains?limit=20'), listedSilos: overview.silos.length };
  } finally {
    await dashboard.close();
    redis.disconnect();
  }
}
