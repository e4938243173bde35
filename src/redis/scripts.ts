import { readFileSync } from 'node:fs';
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
  notifySilo: new URL('../membership/lua/notifySilo-2.lua', import.meta.url),
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
