import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { launch, terminate } from './redis-server.ts';

export interface RedisClusterOptions {
  /** Master nodes, each serving a share of the 16384 slots; at least 3 (`redis-cli --cluster create` needs 3). Default 3. */
  masters?: number | undefined;
  /** Replicas of each master. Default 0. */
  replicasPerMaster?: number | undefined;
  /** Persist every node with AOF (`appendfsync always`). */
  appendOnly?: boolean | undefined;
}

/** One `redis-server` of a {@link RedisCluster}. */
export interface RedisClusterNode {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its current process (a new one after {@link restart}). */
  readonly pid: number;
  /** Its role when the cluster was started (a failover later does not change it). */
  readonly role: 'master' | 'replica';
  /** Kills it with SIGKILL (a crash), keeping its directory. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port and directory (after {@link kill}; a running node is stopped
   * with SIGTERM first). It rejoins with the slots its `nodes.conf` records, and with its data
   * when the cluster was started with `appendOnly`. Resolves once it accepts connections, which
   * may be before the cluster sees it again: commands to its slots can fail until then.
   */
  restart(): Promise<void>;
}

/** A private Redis Cluster of `redis-server` child processes on free loopback ports. */
export interface RedisCluster {
  /** Every node's `redis://127.0.0.1:<port>`, in the order of {@link nodes}. */
  readonly urls: string[];
  /** Masters first, then replicas, each in port order. */
  readonly nodes: RedisClusterNode[];
  /** For `new Cluster(startupNodes)` (ioredis). */
  readonly startupNodes: { host: string; port: number }[];
  /** Stops every node by pid (SIGTERM, then SIGKILL after 5 s) and removes their directories. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
/** A node's cluster bus listens on its port plus this. */
const BUS_OFFSET = 10_000;
const SLOTS = 16_384;
const READY_TIMEOUT_MS = 20_000;

/**
 * Starts a Redis Cluster bound to 127.0.0.1 only: `masters` nodes sharing the slots, each with
 * `replicasPerMaster` replicas, with `noeviction` and no RDB snapshots, each node in its own
 * temporary directory. Resolves once every node reports `cluster_state:ok`, all of them agree on
 * who serves each of the 16384 slots and which node replicates which, and every replica's link
 * to its master is up (so a replica can take over when its master is killed). Nodes left running
 * are killed when this process exits.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 0;
  if (!Number.isInteger(masters) || masters < 3) {
    throw new RangeError(
      `startRedisCluster: masters must be an integer of at least 3 (redis-cli --cluster create needs 3), not ${masters}`,
    );
  }
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) {
    throw new RangeError(`startRedisCluster: replicasPerMaster must be a non-negative integer, not ${replicasPerMaster}`);
  }
  const count = masters * (1 + replicasPerMaster);
  const started: Started[] = [];
  try {
    const taken = new Set<number>();
    for (let i = 0; i < count; i++) started.push(await startNode(options.appendOnly === true, taken));
    await createCluster(
      started.map((node) => node.port),
      replicasPerMaster,
    );
    const roles = await waitUntilReady(
      started.map((node) => node.port),
      masters,
      replicasPerMaster,
    );
    const nodes = started
      .map((node) => makeNode(node, roles.get(node.port) ?? 'master'))
      .sort((a, b) => (a.role === b.role ? a.port - b.port : a.role === 'master' ? -1 : 1));
    return {
      urls: nodes.map((node) => node.url),
      nodes,
      startupNodes: nodes.map((node) => ({ host: HOST, port: node.port })),
      async stop() {
        await stopAll(started);
      },
    };
  } catch (error) {
    await stopAll(started);
    throw error;
  }
}

interface Started {
  port: number;
  dir: string;
  /** Its `redis-server` arguments, to start it again. */
  args: string[];
  child: ChildProcess;
}

function makeNode(node: Started, role: 'master' | 'replica'): RedisClusterNode {
  return {
    port: node.port,
    url: `redis://${HOST}:${node.port}`,
    get pid() {
      return node.child.pid ?? -1;
    },
    role,
    async kill() {
      await terminate(node.child, 'SIGKILL');
    },
    async restart() {
      await terminate(node.child, 'SIGTERM');
      node.child = await launch(node.args);
    },
  };
}

async function stopAll(nodes: Started[]): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      await terminate(node.child, 'SIGTERM');
      rmSync(node.dir, { recursive: true, force: true });
    }),
  );
}

/** Starts one cluster-enabled node on a port whose bus port is free too; another port when either is taken meanwhile. */
async function startNode(appendOnly: boolean, taken: Set<number>): Promise<Started> {
  for (let attempt = 1; ; attempt++) {
    const port = await freeClusterPort(taken);
    const dir = mkdtempSync(join(tmpdir(), 'redgrain-redis-cluster-'));
    const args = [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      appendOnly ? 'yes' : 'no',
      ...(appendOnly ? ['--appendfsync', 'always'] : []),
      '--maxmemory-policy',
      'noeviction',
      // A replica's first sync starts at once, not after the default 5 s wait for more replicas.
      '--repl-diskless-sync-delay',
      '0',
    ];
    try {
      return { port, dir, args, child: await launch(args) };
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      if (attempt < 5 && error instanceof Error && error.message.includes('Address already in use')) continue;
      throw error;
    }
  }
}

/**
 * A port P such that P and P + 10000 (its cluster bus) are both free on 127.0.0.1 and not in
 * `taken`; it adds both to `taken`. P is drawn from 20000-45000, preferring ports where neither P
 * nor P + 10000 is in the kernel's ephemeral range, which outgoing connections and `freePort()`
 * draw from.
 */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  const [ephemeralLow, ephemeralHigh] = ephemeralRange();
  const ephemeral = (port: number) => port >= ephemeralLow && port <= ephemeralHigh;
  const all: number[] = [];
  for (let port = 20_000; port <= 45_000; port++) all.push(port);
  const outside = all.filter((port) => !ephemeral(port) && !ephemeral(port + BUS_OFFSET));
  const pool = outside.length >= 1_000 ? outside : all;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = pool[Math.floor(Math.random() * pool.length)]!;
    if (taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if (await canBind([port, port + BUS_OFFSET])) {
      taken.add(port);
      taken.add(port + BUS_OFFSET);
      return port;
    }
  }
  throw new Error('startRedisCluster: found no free pair of ports P and P + 10000 on 127.0.0.1 in 200 tries');
}

/** The kernel's ephemeral port range (Linux), else the IANA one. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return [low, high];
  } catch {
    // Not Linux.
  }
  return [49_152, 65_535];
}

/** True when every port can be listened on on 127.0.0.1 (all at once; they are closed again). */
async function canBind(ports: number[]): Promise<boolean> {
  const servers: Server[] = [];
  try {
    for (const port of ports) {
      const server = createServer();
      server.unref();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, HOST, () => resolve());
      });
      servers.push(server);
    }
    return true;
  } catch {
    return false;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** `redis-cli --cluster create`: assigns the slots to the first nodes and makes the others their replicas. */
async function createCluster(ports: number[], replicasPerMaster: number): Promise<void> {
  const args = [
    '--cluster',
    'create',
    ...ports.map((port) => `${HOST}:${port}`),
    '--cluster-replicas',
    String(replicasPerMaster),
    '--cluster-yes',
  ];
  const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-cli --cluster create did not finish within ${READY_TIMEOUT_MS / 1000} s:\n${output}`));
    }, READY_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error('redis-cli is not installed (apt-get install -y redis-tools, or brew install redis)')
          : error,
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`redis-cli --cluster create exited with code ${code}:\n${output}`));
    });
  });
}

/** One node's line of `CLUSTER NODES`. */
interface NodeLine {
  port: number;
  id: string;
  flags: string[];
  masterId: string;
  linkState: string;
  slots: [number, number][];
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', masterId = '', , , , linkState = '', ...slots] = line.split(' ');
      return {
        id,
        port: Number(/:(\d+)@/.exec(address)?.[1] ?? Number.NaN),
        flags: flags.split(','),
        masterId,
        linkState,
        slots: slots
          .filter((slot) => !slot.startsWith('['))
          .map((slot): [number, number] => {
            const [from = '', to = from] = slot.split('-');
            return [Number(from), Number(to)];
          }),
      };
    });
}

/**
 * Why this node's view is not (yet) that of a ready cluster, or its summary (each node's port,
 * role, master and slots) when it is: ready when every node's summary is the same.
 */
async function viewOf(client: Redis, count: number, masters: number): Promise<{ summary: string } | { notReady: string }> {
  const info = String(await client.call('CLUSTER', 'INFO'));
  if (!info.includes('cluster_state:ok')) return { notReady: /cluster_state:\w+/.exec(info)?.[0] ?? 'no cluster_state' };
  const lines = parseClusterNodes(String(await client.call('CLUSTER', 'NODES')));
  if (lines.length !== count) return { notReady: `knows ${lines.length} of ${count} nodes` };
  const unwell = lines.find(
    (line) =>
      line.linkState !== 'connected' || line.flags.some((flag) => ['fail', 'fail?', 'handshake', 'noaddr', 'noflags'].includes(flag)),
  );
  if (unwell !== undefined) return { notReady: `sees ${unwell.port} as ${unwell.flags.join(',')} ${unwell.linkState}` };
  const owners = new Array<number | undefined>(SLOTS).fill(undefined);
  for (const line of lines) {
    if (!line.flags.includes('master')) continue;
    for (const [from, to] of line.slots) {
      for (let slot = from; slot <= to; slot++) {
        if (owners[slot] !== undefined) return { notReady: `sees slot ${slot} served by ${owners[slot]} and ${line.port}` };
        owners[slot] = line.port;
      }
    }
  }
  const uncovered = owners.filter((owner) => owner === undefined).length;
  if (uncovered > 0) return { notReady: `sees ${uncovered} of ${SLOTS} slots unserved` };
  const servingMasters = lines.filter((line) => line.flags.includes('master') && line.slots.length > 0).length;
  if (servingMasters !== masters) return { notReady: `sees ${servingMasters} masters serving slots, not ${masters}` };
  const portOf = new Map(lines.map((line) => [line.id, line.port]));
  const summary = lines
    .map((line) =>
      line.flags.includes('master')
        ? `${line.port} master ${line.slots.map(([from, to]) => `${from}-${to}`).join(',')}`
        : `${line.port} replica of ${portOf.get(line.masterId) ?? line.masterId}`,
    )
    .sort()
    .join('\n');
  if (/replica of/.test(summary)) {
    // A replica that has not synced once may not take over from its master (its data is too old).
    const myself = lines.find((line) => line.flags.includes('myself'));
    if (myself !== undefined && myself.flags.includes('slave')) {
      const replication = String(await client.call('INFO', 'replication'));
      if (!replication.includes('master_link_status:up')) return { notReady: 'replica whose link to its master is not up' };
    }
  }
  return { summary };
}

/** Waits until every node sees the same ready cluster; returns each node's role in it. */
async function waitUntilReady(ports: number[], masters: number, replicasPerMaster: number): Promise<Map<number, 'master' | 'replica'>> {
  const clients = ports.map(
    (port) => new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: () => 200 }),
  );
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  try {
    for (;;) {
      const views = await Promise.all(
        clients.map((client, index) =>
          viewOf(client, ports.length, masters).then(
            (view) => ({ port: ports[index]!, ...view }),
            (error: unknown) => ({ port: ports[index]!, notReady: `failed: ${(error as Error).message}` }),
          ),
        ),
      );
      const waiting = views.flatMap((view) => ('notReady' in view ? [`${view.port}: ${view.notReady}`] : []));
      const summaries = new Set(views.flatMap((view) => ('summary' in view ? [view.summary] : [])));
      if (waiting.length === 0 && summaries.size === 1) {
        const [summary = ''] = summaries;
        const roles = new Map<number, 'master' | 'replica'>();
        for (const line of summary.split('\n')) {
          const [port = '', role = ''] = line.split(' ');
          roles.set(Number(port), role === 'master' ? 'master' : 'replica');
        }
        const replicas = [...roles.values()].filter((role) => role === 'replica').length;
        if (replicas !== masters * replicasPerMaster) {
          throw new Error(
            `startRedisCluster: the cluster formed with ${replicas} replicas, not ${masters * replicasPerMaster}:\n${summary}`,
          );
        }
        return roles;
      }
      last = waiting.length > 0 ? waiting.join('\n') : `the nodes disagree:\n${[...summaries].join('\n--\n')}`;
      if (Date.now() >= deadline) {
        throw new Error(`startRedisCluster: the cluster was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${last}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    for (const client of clients) client.disconnect();
  }
}
