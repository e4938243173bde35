/**
 * The many-grains scenario on one Redis and on a 3-master Redis Cluster, each private to the run:
 * messages/s, Redis CPU per message on each master (from INFO cpu), and how evenly commands spread
 * over the masters (from INFO commandstats). On this machine every master shares the same cores
 * with the silo and the client, so the absolute gain is bounded; the CPU per message per master is
 * what sets the ceiling on real hardware.
 */
import { Redis } from 'ioredis';
import { connect, Silo, type ConnectOptions } from 'redgrain';
import { startRedisCluster, startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { since } from './stats.ts';

type Record = (key: string, measure: string, value: number, unit: string, ratio?: { to: number; label: string }) => void;

const GRAINS = 10_000;

interface MasterUsage {
  cpuSeconds: number;
  commands: number;
}

async function usage(url: string): Promise<MasterUsage> {
  const redis = new Redis(url);
  try {
    const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')]);
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
    const commands = [...stats.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    return { cpuSeconds: field('used_cpu_sys') + field('used_cpu_user'), commands };
  } finally {
    redis.disconnect();
  }
}

/** 10,000 grains × (1 send + 1 ask) through one silo; returns messages/s and each master's usage. */
async function run(redis: NonNullable<ConnectOptions['redis']>, masters: string[], keyPrefix: string) {
  const client = await connect({ redis, keyPrefix });
  const parking = await Silo.start({ redis, grains: [Counter], keyPrefix, logLevel: 'error' });
  await parking.stop();
  const refs = Array.from({ length: GRAINS }, (_, i) => client.getGrain(Counter, `g${i}`));
  const before = await Promise.all(masters.map(usage));
  const start = performance.now();
  for (let i = 0; i < refs.length; i += 500) await Promise.all(refs.slice(i, i + 500).map((r) => r.send('add', 1)));
  const silo = await Silo.start({ redis, grains: [Counter], keyPrefix, logLevel: 'error', heartbeatIntervalMs: 60_000 });
  for (let i = 0; i < refs.length; i += 500) await Promise.all(refs.slice(i, i + 500).map((r) => r.ask('get')));
  const seconds = since(start) / 1_000;
  const after = await Promise.all(masters.map(usage));
  await client.close();
  await silo.stop();
  const messages = GRAINS * 2;
  const perMaster = after.map((a, i) => ({
    cpuUsPerMessage: ((a.cpuSeconds - (before[i]?.cpuSeconds ?? 0)) * 1e6) / messages,
    commands: a.commands - (before[i]?.commands ?? 0),
  }));
  return { rate: messages / seconds, perMaster };
}

export async function measureScaleOut(record: Record): Promise<void> {
  const server = await startRedisServer();
  let single: Awaited<ReturnType<typeof run>>;
  try {
    single = await run(server.url, [server.url], 'scale1');
  } finally {
    await server.stop();
  }
  const cpuOne = single.perMaster[0]?.cpuUsPerMessage ?? Number.NaN;
  record('scaleOneRedisPerSec', `${GRAINS} grains × (1 send + 1 ask), one Redis`, single.rate, 'msg/s');
  record('scaleOneRedisCpuUs', 'Redis CPU per message, one Redis', cpuOne, 'µs');
  record('scaleOneRedisCeiling', 'messages/s one Redis core can carry at that cost', 1e6 / cpuOne, 'msg/s');

  const cluster = await startRedisCluster({ masters: 3 });
  try {
    const masters = cluster.nodes.filter((node) => node.role === 'master').map((node) => node.url);
    const spread = await run({ cluster: cluster.urls }, masters, 'scale3');
    record('scaleClusterPerSec', `${GRAINS} grains × (1 send + 1 ask), 3-master cluster`, spread.rate, 'msg/s', {
      to: single.rate,
      label: 'one Redis (same 2 cores)',
    });
    spread.perMaster.forEach((master, i) => {
      record(`scaleClusterCpuUs_${i + 1}`, `Redis CPU per message (of all messages), master ${i + 1} of 3`, master.cpuUsPerMessage, 'µs', {
        to: cpuOne,
        label: 'one Redis',
      });
    });
    const total = spread.perMaster.reduce((sum, master) => sum + master.cpuUsPerMessage, 0);
    record('scaleClusterCpuUsTotal', 'Redis CPU per message, all 3 masters together', total, 'µs', { to: cpuOne, label: 'one Redis' });
    const busiest = Math.max(...spread.perMaster.map((master) => master.cpuUsPerMessage));
    record(
      'scaleClusterCeiling',
      'messages/s the cluster can carry, one core per master (busiest master sets it)',
      1e6 / busiest,
      'msg/s',
      {
        to: 1e6 / cpuOne,
        label: 'one Redis core',
      },
    );
    const commands = spread.perMaster.map((master) => master.commands);
    record(
      'scaleClusterSpread',
      'commands on the busiest master ÷ the least busy (1.00 = even)',
      Math.max(...commands) / Math.min(...commands),
      '×',
    );
  } finally {
    await cluster.stop();
  }
}
