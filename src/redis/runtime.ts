import type { RedisQueueBackend } from 'bullmq';
import { createConnection } from 'node:net';
import { Cluster } from 'ioredis';
import { GrainDirectory } from '../directory/grain-directory.ts';
import { GrainLocator } from '../directory/grain-locator.ts';
import { RedisUnavailableError, describeError } from '../errors/errors.ts';
import { DeadLetterStore } from '../mailbox/dead-letters.ts';
import { createMailboxBackend } from '../mailbox/mailbox-backend.ts';
import { MembershipTable } from '../membership/membership-table.ts';
import { MembershipView } from '../membership/membership-view.ts';
import type { PlacementStrategy } from '../placement/placement.ts';
import {
  closeRedis,
  describeTarget,
  openRedis,
  startupNodes,
  waitReady,
  type RedisClient,
  type RedisConnectionInput,
} from './connection.ts';
import { RedisKeys } from './keys.ts';
import { SubscriptionTable } from '../pubsub/subscription-table.ts';
import { registerScripts, type ScriptCommands } from './scripts.ts';

/** Everything a client or a silo builds on one command connection. */
export interface RedisRuntime {
  input: RedisConnectionInput;
  redis: RedisClient & ScriptCommands;
  keys: RedisKeys;
  mailboxRoot: RedisQueueBackend;
  directory: GrainDirectory;
  membership: MembershipTable;
  membershipView: MembershipView;
  locator: GrainLocator;
  deadLetters: DeadLetterStore;
  subscriptions: SubscriptionTable;
}

export interface RuntimeOptions {
  input: RedisConnectionInput;
  keyPrefix: string;
  connectionName: string;
  placement: PlacementStrategy;
  localSiloId: string | undefined;
  lockDurationMs: number;
  connectTimeoutMs: number;
  membershipRefreshMs: number;
}

/** Opens the command connection and builds the Redis-backed parts on it. */
export async function openRuntime(options: RuntimeOptions): Promise<RedisRuntime> {
  const keys = new RedisKeys(options.keyPrefix);
  const redis = registerScripts(openRedis(options.input, options.connectionName));
  await readyWithin(redis, options.connectTimeoutMs);
  try {
    const mailboxRoot = await createMailboxBackend(redis, keys, { lockDurationMs: options.lockDurationMs });
    const directory = new GrainDirectory(redis, keys);
    const membership = new MembershipTable(redis, keys);
    const membershipView = new MembershipView(membership, options.membershipRefreshMs);
    const locator = new GrainLocator(redis, keys, directory, membershipView, options.placement, options.localSiloId);
    const deadLetters = new DeadLetterStore(redis, keys);
    const subscriptions = new SubscriptionTable(redis, keys);
    return { input: options.input, redis, keys, mailboxRoot, directory, membership, membershipView, locator, deadLetters, subscriptions };
  } catch (error) {
    await closeRedis(redis);
    throw error;
  }
}

/**
 * Waits for a new connection, failing with RedisUnavailableError instead of retrying for ever.
 * Causes that waiting does not heal (connection refused, unknown host, TLS verification, wrong
 * credentials) fail at once; the message names host:port and the cause, never the password.
 */
export async function readyWithin(redis: RedisClient, timeoutMs: number): Promise<void> {
  try {
    await waitReadyWithin(redis, timeoutMs, true);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}

/**
 * Waits up to `timeoutMs` for the connection to be ready; it keeps reconnecting either way.
 * With `failFast`, a cause that waiting does not heal fails at once (for a connection being
 * opened); without it only wrong credentials do (a running client waits out a restart of Redis).
 */
export async function waitReadyWithin(redis: RedisClient, timeoutMs: number, failFast = false): Promise<void> {
  if (redis.status === 'ready') return;
  const address = describeTarget(redis);
  let timer: NodeJS.Timeout | undefined;
  let onError: ((error: Error) => void) | undefined;
  let last: RedisFailure | undefined;
  const failure = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = last === undefined ? 'no answer' : `last error: ${last.cause}`;
      reject(new RedisUnavailableError(`Redis at ${address} not reachable within ${timeoutMs} ms (${why})`, last?.error));
    }, timeoutMs);
    let probing = false;
    onError = (error: Error) => {
      last = explainRedisError(error);
      if (last.kind === 'credentials' || (failFast && last.kind === 'final')) {
        reject(new RedisUnavailableError(`Redis at ${address} is unavailable: ${last.cause}`, error));
      }
      // A cluster that reached none of its startup nodes says only "Failed to refresh slots
      // cache." (ioredis swallows the nodes' own errors): ask the nodes why, once at a time.
      if (failFast && redis instanceof Cluster && !probing) {
        probing = true;
        void unreachable(startupNodes(redis)).then((nodes) => {
          probing = false;
          if (nodes === undefined) return;
          last = nodes;
          reject(new RedisUnavailableError(`Redis at ${address} is unavailable: ${nodes.cause}`, nodes.error));
        });
      }
    };
    redis.on('error', onError);
  });
  try {
    await Promise.race([waitReady(redis), failure]);
  } catch (error) {
    throw error instanceof RedisUnavailableError ? error : new RedisUnavailableError(`Redis at ${address}: ${describeError(error)}`, error);
  } finally {
    clearTimeout(timer);
    if (onError !== undefined) redis.off('error', onError);
  }
}

/**
 * Why none of a cluster's startup nodes can be reached, when every one fails for a cause that
 * waiting does not heal (refused, unknown host); undefined when any accepts a connection or only
 * times out (one node down while another answers is no failure).
 */
async function unreachable(nodes: { host: string; port: number }[]): Promise<RedisFailure | undefined> {
  const failures = await Promise.all(nodes.map((node) => probe(node)));
  return failures.every((failure) => failure?.kind === 'final') ? failures[0] : undefined;
}

/** Opens and closes a plain TCP connection to a node: its error, if it has one. */
function probe({ host, port }: { host: string; port: number }): Promise<RedisFailure | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (failure: RedisFailure | undefined) => {
      socket.destroy();
      resolve(failure);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(undefined));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error) => done(explainRedisError(error)));
  });
}

/** How long a probe of a cluster node waits for its TCP connection. */
const PROBE_TIMEOUT_MS = 1_000;

/** A connection error read for a person: what went wrong, and whether waiting can heal it. */
export interface RedisFailure {
  error: Error;
  cause: string;
  /** `credentials` and `final` do not heal by waiting; `transient` may. */
  kind: 'credentials' | 'final' | 'transient';
}

/** TLS errors that mean the server's certificate could not be verified against the trusted CAs. */
const TLS_VERIFICATION_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function explainRedisError(error: Error): RedisFailure {
  const code = (error as NodeJS.ErrnoException).code;
  const text = error.message || code || error.name;
  if (/^(WRONGPASS|ERR invalid password)/.test(text) || /invalid username-password/i.test(text)) {
    return { error, kind: 'credentials', cause: `it refused the credentials (${text})` };
  }
  if (/^NOAUTH/.test(text)) {
    // Only the code: Redis 7's NOAUTH reply to HELLO is a paragraph about the HELLO command.
    return {
      error,
      kind: 'credentials',
      cause: 'it needs a user and password (NOAUTH); put them in the URL: redis://user:password@host:port',
    };
  }
  if (/^NOPERM/.test(text)) {
    return { error, kind: 'credentials', cause: `the user lacks a permission redgrain needs (${text}); see the README's Security section` };
  }
  if (/^ERR DB index is out of range/.test(text)) {
    // ioredis would go on, on database 0: another application's keys, or an empty database.
    return {
      error,
      kind: 'final',
      cause: `it has no such database (SELECT: ${text}); the URL's database must be below the server's \`databases\` setting (16 by default)`,
    };
  }
  if (code === 'ECONNREFUSED') return { error, kind: 'final', cause: 'connection refused (ECONNREFUSED): nothing listens there' };
  if (code === 'ENOTFOUND') return { error, kind: 'final', cause: `host not found (ENOTFOUND: ${text})` };
  if (code !== undefined && TLS_VERIFICATION_CODES.has(code)) {
    return {
      error,
      kind: 'final',
      cause: `TLS verification failed (${code}: ${text}); trust the CA that signed the server certificate with REDIS_TLS_CA_FILE or tls: { ca } in the redis options`,
    };
  }
  return { error, kind: 'transient', cause: code !== undefined && !text.includes(code) ? `${code}: ${text}` : text };
}
