import { OPTIONS, resolveOption, resolveRedis, type Environment } from '../config/options-schema.ts';
import { closeRedis, openRedis, type RedisConnectionInput } from '../redis/connection.ts';
import { openRuntime } from '../redis/runtime.ts';
import type { PlacementStrategy } from '../placement/placement.ts';
import { ErrorClassRegistry } from '../errors/error-converter.ts';
import type { ErrorClass } from '../grain/grain.ts';
import { GrainClient } from './grain-client.ts';

export const DEFAULT_ASK_TIMEOUT_MS = OPTIONS.askTimeoutMs.default;
export const DEFAULT_CONNECT_TIMEOUT_MS = OPTIONS.connectTimeoutMs.default;
export const DEFAULT_REDIS_TIMEOUT_MS = OPTIONS.redisTimeoutMs.default;
export const DEFAULT_MAX_PAYLOAD_BYTES = OPTIONS.maxPayloadBytes.default;
export const DEFAULT_LOCK_DURATION_MS = OPTIONS.lockDurationMs.default;
export const DEFAULT_MEMBERSHIP_REFRESH_MS = 1_000;
/** How long the outcome of a message sent with an idempotency key is kept: 24 hours. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = OPTIONS.idempotencyWindowMs.default;

/**
 * Options of `connect`. Every one has a default, and each one not given is read from its
 * environment variable when set (`REDIS_URL`, `REDGRAIN_PREFIX`, `REDGRAIN_ASK_TIMEOUT_MS`, ...;
 * see src/config/options-schema.ts).
 */
export interface ConnectOptions {
  /** Redis URL (`redis://`, `rediss://` for TLS) or ioredis options. Default: `REDIS_URL`, else redis://127.0.0.1:6379. */
  redis?: RedisConnectionInput | undefined;
  /** Prefix of every Redis key; silos and clients of one application share it. Default: `REDGRAIN_PREFIX`, else `redgrain`. */
  keyPrefix?: string | undefined;
  /** Default `ask` timeout in ms (30 000). */
  askTimeoutMs?: number | undefined;
  /** How long to wait for Redis at connect before failing with RedisUnavailableError (10 000 ms). */
  connectTimeoutMs?: number | undefined;
  /** How long `send` / `ask` wait for Redis before rejecting with RedisUnavailableError (10 000 ms). */
  redisTimeoutMs?: number | undefined;
  /** Largest serialized arguments of one message, in bytes (1 MiB); larger ones reject with PayloadTooLargeError. */
  maxPayloadBytes?: number | undefined;
  /**
   * Most messages to one grain that travel as one BullMQ job (a pack): while an enqueue to a grain
   * is in flight, the messages this client sends it meanwhile wait and then go together (never
   * waiting for more to arrive). Each is still its own turn, reply and dead letter. 1 turns
   * packing off. Default 64.
   */
  maxPackMessages?: number | undefined;
  /** Largest pack, counting its messages' bytes as its job holds them (256 KiB). */
  maxPackBytes?: number | undefined;
  /** How long a message's outcome is kept for its idempotency key, in ms (24 h). */
  idempotencyWindowMs?: number | undefined;
  /**
   * Replicas that must acknowledge each enqueue (Redis WAIT) before `send` resolves, so a failover
   * to a replica keeps every acknowledged message. Default: `REDGRAIN_REPLICAS`, else 0 (no wait).
   */
  replicas?: number | undefined;
  /** Where new activations go when this client's message is the first to reach a grain (random). */
  placement?: PlacementStrategy | undefined;
  /**
   * Your own error classes: when a handler throws one, `ask` rejects with an instance of it (found
   * by its `name`, with its message, code and primitive fields) instead of RemoteGrainError. A grain
   * class's `static errors` are registered too when you call `getGrain` with it.
   */
  errors?: readonly ErrorClass[] | undefined;
}

/**
 * Connects a client to a redgrain cluster.
 *
 * ```ts
 * const client = await connect({ redis: 'redis://127.0.0.1:6379' });
 * await client.getGrain(Counter, 'c1').send('add', 5);
 * await client.close();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<GrainClient> {
  const resolved = resolveConnectOptions(options);
  const input = resolved.redis;
  const errorClasses = new ErrorClassRegistry();
  errorClasses.register(resolved.errors);
  const runtime = await openRuntime({
    input,
    keyPrefix: resolved.keyPrefix,
    connectionName: 'redgrain:client',
    placement: resolved.placement,
    localSiloId: undefined,
    lockDurationMs: DEFAULT_LOCK_DURATION_MS,
    connectTimeoutMs: resolved.connectTimeoutMs,
    membershipRefreshMs: DEFAULT_MEMBERSHIP_REFRESH_MS,
  });
  return new GrainClient({
    redis: runtime.redis,
    keys: runtime.keys,
    mailboxRoot: runtime.mailboxRoot,
    locator: runtime.locator,
    membership: runtime.membership,
    deadLetters: runtime.deadLetters,
    subscriptions: runtime.subscriptions,
    askTimeoutMs: resolved.askTimeoutMs,
    redisTimeoutMs: resolved.redisTimeoutMs,
    maxPayloadBytes: resolved.maxPayloadBytes,
    pack: { messages: resolved.maxPackMessages, bytes: resolved.maxPackBytes },
    idempotencyWindowMs: resolved.idempotencyWindowMs,
    replicas: resolved.replicas,
    errorClasses,
    openSubscriber: () => openRedis(input, 'redgrain:client:replies', 'subscriber'),
    dispose: () => closeRedis(runtime.redis),
  });
}

/**
 * `connect`'s options resolved through the options schema: each given in code, else its
 * environment variable, else its default. A refused value throws InvalidOptionError naming it.
 */
export function resolveConnectOptions(options: ConnectOptions, env: Environment = process.env) {
  const get = <
    N extends
      | 'keyPrefix'
      | 'askTimeoutMs'
      | 'connectTimeoutMs'
      | 'redisTimeoutMs'
      | 'maxPayloadBytes'
      | 'maxPackMessages'
      | 'maxPackBytes'
      | 'idempotencyWindowMs'
      | 'replicas'
      | 'placement'
      | 'errors',
  >(
    name: N,
  ) => resolveOption(name, options[name], env, `connect option ${name}`);
  return {
    redis: resolveRedis(options.redis, env, 'connect option redis'),
    keyPrefix: get('keyPrefix'),
    askTimeoutMs: get('askTimeoutMs'),
    connectTimeoutMs: get('connectTimeoutMs'),
    redisTimeoutMs: get('redisTimeoutMs'),
    maxPayloadBytes: get('maxPayloadBytes'),
    maxPackMessages: get('maxPackMessages'),
    maxPackBytes: get('maxPackBytes'),
    idempotencyWindowMs: get('idempotencyWindowMs'),
    replicas: get('replicas'),
    placement: get('placement'),
    errors: get('errors'),
  };
}
