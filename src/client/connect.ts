import { DEFAULT_KEY_PREFIX } from '../redis/keys.ts';
import { closeRedis, DEFAULT_REDIS_URL, openRedis, type RedisConnectionInput } from '../redis/connection.ts';
import { openRuntime } from '../redis/runtime.ts';
import { randomPlacement, type PlacementStrategy } from '../placement/placement.ts';
import { ErrorClassRegistry } from '../errors/error-converter.ts';
import type { ErrorClass } from '../grain/grain.ts';
import { GrainClient } from './grain-client.ts';

export const DEFAULT_ASK_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REDIS_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576;
export const DEFAULT_LOCK_DURATION_MS = 30_000;
export const DEFAULT_MEMBERSHIP_REFRESH_MS = 1_000;
/** How long the outcome of a message sent with an idempotency key is kept: 24 hours. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 86_400_000;

/** `REDIS_URL` when set (and not empty), else redis://127.0.0.1:6379. */
export function defaultRedis(): string {
  return process.env.REDIS_URL || DEFAULT_REDIS_URL;
}

/** `REDGRAIN_PREFIX` when set (and not empty), else `redgrain`. */
export function defaultKeyPrefix(): string {
  return process.env.REDGRAIN_PREFIX || DEFAULT_KEY_PREFIX;
}

/** Options of `connect`. Every one has a default. */
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
  /** How long a message's outcome is kept for its idempotency key, in ms (24 h). */
  idempotencyWindowMs?: number | undefined;
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
  const input = options.redis ?? defaultRedis();
  const errorClasses = new ErrorClassRegistry();
  errorClasses.register(options.errors);
  const runtime = await openRuntime({
    input,
    keyPrefix: options.keyPrefix ?? defaultKeyPrefix(),
    connectionName: 'redgrain:client',
    placement: options.placement ?? randomPlacement,
    localSiloId: undefined,
    lockDurationMs: DEFAULT_LOCK_DURATION_MS,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
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
    askTimeoutMs: options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS,
    redisTimeoutMs: options.redisTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    idempotencyWindowMs: positiveOption('idempotencyWindowMs', options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS),
    errorClasses,
    openSubscriber: () => openRedis(input, 'redgrain:client:replies', 'subscriber'),
    dispose: () => closeRedis(runtime.redis),
  });
}

/** Checks a numeric option: a positive, finite number. */
export function positiveOption(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}
