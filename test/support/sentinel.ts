import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServer } from 'redgrain/testing';
import { launch, terminate } from '../../src/testing/redis-server.ts';
import { waitFor } from './wait-for.ts';

/** A master, its replicas and one Sentinel watching them, all private loopback processes. */
export interface SentinelGroup {
  /** The master group's name, as `redis: { sentinels, name }` takes it. */
  readonly name: string;
  readonly sentinels: { host: string; port: number }[];
  readonly master: RedisServer;
  readonly replicas: RedisServer[];
  /** Asks the Sentinel which address it now serves as the master (`host:port`). */
  masterAddress(): Promise<string>;
  /** Stops every process by pid and removes their directories. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * Starts a master, `replicas` replicas of it, and one Sentinel (quorum 1) that declares the
 * master down after `downAfterMs` without answers and then promotes a replica. Resolves once the
 * Sentinel monitors the master and sees every replica in sync.
 */
export async function startSentinelGroup({ replicas = 2, downAfterMs = 1_000 } = {}): Promise<SentinelGroup> {
  const name = 'redgrain';
  // A replica's first sync starts at once, not after the default 5 s wait for more replicas.
  const fast = ['--repl-diskless-sync-delay', '0'];
  const master = await startRedisServer({ args: fast });
  const started: RedisServer[] = [];
  let sentinel: Awaited<ReturnType<typeof launch>> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'redgrain-sentinel-'));
  const stop = async () => {
    if (sentinel !== undefined) await terminate(sentinel, 'SIGTERM');
    await Promise.all([...started, master].map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < replicas; i++) started.push(await startRedisServer({ args: [...fast, '--replicaof', HOST, String(master.port)] }));
    const port = await freePort();
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        `sentinel monitor ${name} ${HOST} ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} 5000`,
        '',
      ].join('\n'),
    );
    sentinel = await launch([config, '--sentinel'], '+monitor master');
    const probe = new Redis({ host: HOST, port, lazyConnect: true });
    try {
      await waitFor(
        'the Sentinel to see every replica in sync',
        async () => {
          const seen = (await probe.call('SENTINEL', 'REPLICAS', name)) as string[][];
          const healthy = seen.filter((fields) => fieldOf(fields, 'flags') === 'slave' && fieldOf(fields, 'master-link-status') === 'ok');
          return healthy.length === replicas ? true : undefined;
        },
        { timeoutMs: 30_000, everyMs: 100 },
      );
    } finally {
      probe.disconnect();
    }
    return {
      name,
      sentinels: [{ host: HOST, port }],
      master,
      replicas: started,
      async masterAddress() {
        const asker = new Redis({ host: HOST, port, lazyConnect: true });
        try {
          const [host, masterPort] = (await asker.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
          return `${host}:${masterPort}`;
        } finally {
          asker.disconnect();
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function fieldOf(fields: string[], field: string): string | undefined {
  const at = fields.indexOf(field);
  return at < 0 ? undefined : fields[at + 1];
}

/**
 * Waits until `replicas` replicas of the master at `masterUrl` have everything written so far,
 * then stops them (SIGSTOP) and has the master drop its links to them: from then on the master
 * goes on alone, as it does when its replicas lag. (SIGSTOP alone is not enough: the kernel keeps
 * what the master writes in the stopped replica's socket, and it reads that once it runs again.)
 */
export async function cutOffReplicas(masterUrl: string, replicas: readonly { pid: number }[]): Promise<void> {
  const master = new Redis(masterUrl);
  try {
    const synced = await master.wait(replicas.length, 10_000);
    if (synced !== replicas.length) throw new Error(`only ${synced} of ${replicas.length} replicas caught up`);
    for (const replica of replicas) process.kill(replica.pid, 'SIGSTOP');
    await master.call('CLIENT', 'KILL', 'TYPE', 'replica');
  } finally {
    master.disconnect();
  }
}
