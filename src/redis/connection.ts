import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { coalesceWrites } from './write-coalescing.ts';

/**
 * A Redis Cluster: its startup nodes (`redis://` / `rediss://` URLs, whose credentials and TLS
 * apply to every node, or `{ host, port }`) and any ioredis cluster options.
 */
export interface RedisClusterInput extends ClusterOptions {
  cluster: (string | { host: string; port: number })[];
}

/**
 * How to reach Redis: a `redis://` / `rediss://` URL, ioredis options (Sentinel included:
 * `{ sentinels, name }`), or a Redis Cluster.
 */
export type RedisConnectionInput = string | RedisOptions | RedisClusterInput;

/** A connection to one Redis (possibly found through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export function isClusterInput(input: RedisConnectionInput): input is RedisClusterInput {
  return typeof input === 'object' && Array.isArray((input as Partial<RedisClusterInput>).cluster);
}

/** ioredis options equal to a `redis://` / `rediss://` URL (host, port, user, password, db). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    ...(db === '' ? {} : { db: Number(db) }),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Longest a command may go unanswered before it fails. Needed because commands in flight when a
 * connection drops are neither re-sent (see below) nor failed by ioredis: without a timeout they
 * would wait for ever. A command that timed out may still have run; every write is fenced or
 * reported as uncertain by its caller.
 */
export const COMMAND_TIMEOUT_MS = 5_000;

/** What a connection is for: plain commands, one blocking read at a time, or pub/sub. */
export type ConnectionKind = 'command' | { blockingSeconds: number } | 'subscriber';

/** Opens one ioredis connection (to each master it needs, on a cluster). */
export function openRedis(input: RedisConnectionInput, name: string, kind: ConnectionKind = 'command'): RedisClient {
  const base: RedisOptions = {
    connectionName: name,
    enableAutoPipelining: false,
    // A command whose reply was lost in a disconnect is not sent again after the reconnect:
    // sent again, an enqueue could land twice. It fails by the command timeout instead.
    autoResendUnfulfilledCommands: false,
    ...(kind === 'command' ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    ...(typeof kind === 'object' ? { maxRetriesPerRequest: null, commandTimeout: kind.blockingSeconds * 1_000 + COMMAND_TIMEOUT_MS } : {}),
    ...(kind === 'subscriber' ? { maxRetriesPerRequest: null } : {}),
  };
  const redis = isClusterInput(input)
    ? openCluster(input, base, kind)
    : typeof input === 'string'
      ? new Redis(input, base)
      : new Redis({ ...input, ...base });
  // ioredis reconnects by itself; a lost connection surfaces as failed commands, which callers
  // handle. Without a listener, each failed reconnect would be an unhandled 'error' event.
  redis.on('error', () => undefined);
  coalesceWrites(redis);
  settleDroppedCommands(redis);
  return redis;
}

/**
 * Settles the commands a dropped connection leaves behind, on `redis` and on the copies BullMQ
 * makes of it (`duplicate`, for its blocking reads).
 *
 * A command in flight when its connection dropped is never sent again (see
 * `autoResendUnfulfilledCommands`), and ioredis never fails it either: it waits for its command
 * timeout (65 s for a reminder worker's blocking read), while its caller waits on it and its
 * timer keeps the process alive. Measured before this: a reminder worker stalled that long after
 * a Redis restart (its repeating reminders with it), and a silo stopped after a restart took 5 s
 * and left the process alive 55 s more. Here such commands fail as soon as the connection is back
 * (their reply is lost for good then; they may have run), or when it is disconnected for good
 * while it waits to reconnect: then it also ends (status `end`), where ioredis would leave it
 * `reconnecting`.
 */
function settleDroppedCommands(redis: Redis | Cluster): void {
  if (redis instanceof Cluster) redis.on('+node', settleNodeCommands);
  else settleNodeCommands(redis);
  const duplicate = redis.duplicate.bind(redis) as (...args: unknown[]) => Redis | Cluster;
  (redis as { duplicate: unknown }).duplicate = (...args: unknown[]): Redis | Cluster => {
    const copy = duplicate(...args);
    settleDroppedCommands(copy);
    return copy;
  };
}

/** ioredis' queue of commands awaiting replies (a Denque), as its close handler keeps it. */
interface CommandQueue {
  shift(): { command: { reject(error: Error): void } } | undefined;
}

function settleNodeCommands(redis: Redis): void {
  const internals = redis as unknown as {
    prevCommandQueue: CommandQueue | null;
    setStatus(status: string): void;
    flushQueue(error: Error): void;
  };
  let dropped: CommandQueue | undefined;
  // ioredis keeps them (prevCommandQueue) from the drop until the connection is ready again.
  redis.on('close', () => {
    dropped = internals.prevCommandQueue ?? dropped;
  });
  redis.on('ready', () => {
    const lost = dropped;
    dropped = undefined;
    for (let item = lost?.shift(); item !== undefined; item = lost?.shift()) {
      item.command.reject(new Error('Connection lost before the reply came (the command may have run)'));
    }
  });
  const disconnect = redis.disconnect.bind(redis);
  redis.disconnect = (reconnect = false): void => {
    disconnect(reconnect);
    if (reconnect || redis.status !== 'reconnecting') return;
    internals.setStatus('end');
    internals.flushQueue(new Error('Connection is closed.'));
  };
}

function openCluster(input: RedisClusterInput, base: RedisOptions, kind: ConnectionKind): Cluster {
  const { cluster, redisOptions, ...clusterOptions } = input;
  const nodes = cluster.map((node) => (typeof node === 'string' ? redisOptionsFromUrl(node) : node));
  // Credentials, database and TLS of the first URL apply to every node the cluster reports.
  const first: RedisOptions = nodes[0] ?? {};
  const { host: _host, port: _port, db: _db, ...shared } = first;
  return new Cluster(
    nodes.map(({ host, port }) => ({ host: host ?? '127.0.0.1', port: port ?? 6379 })),
    {
      // Reads go to masters: a replica may lag behind what a turn just committed.
      scaleReads: 'master',
      // A master that died answers nothing (no MOVED to follow): reading the slots every second
      // finds its promoted replica soon after the failover.
      slotsRefreshInterval: 1_000,
      ...clusterOptions,
      enableAutoPipelining: false,
      ...(kind === 'command' ? {} : { enableOfflineQueue: true }),
      // Replies and direct read-only calls travel by sharded pub/sub on a cluster (see channels.ts).
      ...(kind === 'subscriber' ? { shardedSubscribers: true } : {}),
      redisOptions: { ...shared, ...redisOptions, ...base },
    },
  );
}

/** The addresses a connection goes to, for messages: never the password. */
export function describeTarget(redis: RedisClient): string {
  if (redis instanceof Cluster)
    return `${startupNodes(redis)
      .map(({ host, port }) => `${host}:${port}`)
      .join(',')} (cluster)`;
  const { path, host, port } = redis.options;
  if (path !== undefined && path !== '') return path;
  const name = host ?? '127.0.0.1';
  return `${name.includes(':') ? `[${name}]` : name}:${port ?? 6379}`;
}

/** The nodes a cluster connection was given to start from. */
export function startupNodes(cluster: Cluster): { host: string; port: number }[] {
  const nodes = (cluster as unknown as { startupNodes: (string | number | { host?: string; port?: number })[] }).startupNodes;
  return nodes.map((node) => {
    if (typeof node === 'object') return { host: node.host ?? '127.0.0.1', port: node.port ?? 6379 };
    if (typeof node === 'number') return { host: '127.0.0.1', port: node };
    const [host = '127.0.0.1', port = '6379'] = node.split(':');
    return { host, port: Number(port) };
  });
}

/** Closes a connection, waiting for its queued replies when it is healthy, dropping it otherwise. */
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await redis.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  redis.disconnect();
}

/** Resolves once the connection is ready to take commands. */
export async function waitReady(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      redis.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      redis.off('ready', onReady);
      reject(new Error('Redis connection ended before it was ready'));
    };
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}
