import { readFileSync } from 'node:fs';
import { Cluster } from 'ioredis';
import type { RedisClient } from './connection.ts';

/**
 * Registers redgrain's Lua scripts on a connection (ioredis `defineCommand` runs them by EVALSHA
 * and reloads them after a Redis restart). Each script lives in its own file named
 * `verbNoun-<number of keys>.lua` with a header listing its KEYS and ARGV.
 */
const SCRIPTS = {
  claimActivation: new URL('../directory/lua/claimActivation-1.lua', import.meta.url),
  releaseActivation: new URL('../directory/lua/releaseActivation-1.lua', import.meta.url),
  recoverTaken: new URL('../mailbox/lua/recoverTaken-2.lua', import.meta.url),
  tidyMailbox: new URL('../mailbox/lua/tidyMailbox-11.lua', import.meta.url),
  dropOldest: new URL('../mailbox/lua/dropOldest-1.lua', import.meta.url),
  notifySilo: new URL('../membership/lua/notifySilo-2.lua', import.meta.url),
  wakeOwner: new URL('../directory/lua/wakeOwner-3.lua', import.meta.url),
  heartbeat: new URL('../membership/lua/heartbeat-1.lua', import.meta.url),
  takeInbox: new URL('../membership/lua/takeInbox-2.lua', import.meta.url),
  declareDead: new URL('../membership/lua/declareDead-1.lua', import.meta.url),
  subscribePattern: new URL('../pubsub/lua/subscribePattern-2.lua', import.meta.url),
  unsubscribePattern: new URL('../pubsub/lua/unsubscribePattern-2.lua', import.meta.url),
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptArg = string | number | Buffer;

/** The registered scripts, callable on a connection. */
export type ScriptCommands = { [K in ScriptName]: (...keysAndArgs: ScriptArg[]) => Promise<unknown> };

const registered = new WeakSet<RedisClient>();

export function registerScripts(redis: RedisClient): RedisClient & ScriptCommands {
  if (!registered.has(redis)) {
    for (const [name, url] of Object.entries(SCRIPTS)) {
      const numberOfKeys = Number(/-(\d+)\.lua$/.exec(url.pathname)?.[1]);
      redis.defineCommand(name, { numberOfKeys, lua: readFileSync(url, 'utf8') });
    }
    registered.add(redis);
  }
  return redis as RedisClient & ScriptCommands;
}

/**
 * Loads every script defined on a connection into the Redis server (every master of a cluster)
 * again. ioredis marks a script as loaded on a connection once it has sent its EVAL, also when
 * that EVAL sat in a transaction Redis then discarded (EXECABORT, as while a restarted node comes
 * back): from then on it sends EVALSHA, which fails with NOSCRIPT inside every later transaction
 * without ioredis noticing, until the connection is replaced.
 */
export async function reloadScripts(redis: RedisClient): Promise<void> {
  const scripts = Object.values((redis as unknown as { scriptsSet: Record<string, { lua: string }> }).scriptsSet);
  const servers = redis instanceof Cluster ? redis.nodes('master') : [redis];
  await Promise.all(servers.flatMap((server) => scripts.map((script) => server.script('LOAD', script.lua))));
}

/** Whether a reply is Redis's NOSCRIPT error. */
export function isNoScript([error]: [Error | null, unknown]): boolean {
  return error !== null && error.message.startsWith('NOSCRIPT');
}
