import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './connection.ts';
import { RedisUnavailableError } from '../errors/errors.ts';

/** A command by name (a Redis command, or a script defined on the connection), its key first. */
export type Command = [name: string, key: string, ...args: (string | number | Buffer)[]];

/** A reply as a pipeline gives it: the error, or null and the value. */
export type Reply = [Error | null, unknown];

/**
 * Runs independent commands in one round trip, replies in the order given. On one Redis they go
 * as one pipeline; a cluster refuses a pipeline whose keys span slots, so there each command is
 * sent on its own, all at once (ioredis writes them to each master's connection back to back).
 * Not a transaction: use it for reads, and for writes that stand alone.
 */
export async function execEach(redis: RedisClient, commands: readonly Command[]): Promise<Reply[]> {
  if (commands.length === 0) return [];
  if (!(redis instanceof Cluster)) return (await redis.pipeline(commands.map((command) => [...command])).exec()) ?? [];
  const callable = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  return Promise.all(
    commands.map(([name, ...args]) => {
      const run = callable[name];
      if (run === undefined) return Promise.resolve<Reply>([new Error(`unknown command ${name}`), null]);
      return run.apply(redis, args).then(
        (value): Reply => [null, value],
        (error: unknown): Reply => [error instanceof Error ? error : new Error(String(error)), null],
      );
    }),
  );
}

/** The nodes that hold data: the masters of a cluster, or the one Redis. */
export function dataNodes(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** Every key matching a glob pattern, on every master, in batches. */
export async function* scanKeys(redis: RedisClient, match: string, count: number): AsyncGenerator<string[]> {
  for (const node of dataNodes(redis)) {
    for await (const batch of node.scanStream({ match, count }) as AsyncIterable<string[]>) yield batch;
  }
}

/**
 * Waits until `replicas` replicas acknowledged every write this connection made so far to the
 * master that holds `key` (Redis WAIT, which speaks for its own connection and master only). Throws
 * RedisUnavailableError when fewer did within `timeoutMs`: the write stands on the master, but a
 * failover now could lose it.
 */
export async function waitForReplicas(redis: RedisClient, replicas: number, timeoutMs: number, key: string): Promise<void> {
  if (replicas <= 0) return;
  const master = redis instanceof Cluster ? masterOf(redis, key) : redis;
  // While the cluster's map is being refreshed the master is not known: every master answers for it.
  const nodes = master === undefined ? dataNodes(redis) : [master];
  const acknowledged = await Promise.all(nodes.map((node) => node.wait(replicas, timeoutMs)));
  const fewest = Math.min(...acknowledged);
  if (fewest < replicas) {
    throw new RedisUnavailableError(
      `only ${fewest} of ${replicas} required replicas acknowledged the write within ${timeoutMs} ms; it is on the master, but a failover now could lose it`,
    );
  }
}

/** The connection to the master that serves `key`'s slot, as the cluster client last mapped it. */
function masterOf(cluster: Cluster, key: string): Redis | undefined {
  // ioredis keeps its slot map as `slots[slot] = [master "host:port", ...replicas]`.
  const address = (cluster as unknown as { slots: (string[] | undefined)[] }).slots[calculateSlot(key)]?.[0];
  return cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === address);
}
