import { DEFAULT_MEMBERSHIP_REFRESH_MS } from '../client/connect.ts';
import type { SupervisionSettings } from '../catalog/activation-supervisor.ts';
import { OPTIONS, resolveOption, resolveRedis, type Environment, type SILO_OPTIONS } from '../config/options-schema.ts';
import type { ErrorClass, GrainClass } from '../grain/grain.ts';
import type { PlacementStrategy } from '../placement/placement.ts';
import type { RedisConnectionInput } from '../redis/connection.ts';
import type { Logger, LogLevel } from '../telemetry/logger.ts';

export const DEFAULT_COLLECTION_AGE_MS = OPTIONS.collectionAgeMs.default;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = OPTIONS.heartbeatIntervalMs.default;
export const DEFAULT_MISSED_HEARTBEATS_LIMIT = OPTIONS.missedHeartbeatsLimit.default;
export const DEFAULT_MAX_MESSAGE_ATTEMPTS = OPTIONS.maxMessageAttempts.default;
export const DEFAULT_TURN_BATCH_SIZE = OPTIONS.turnBatchSize.default;

/**
 * Options of `Silo.start`. Only `grains` is required; each other option not given is read from its
 * environment variable when set (`REDGRAIN_TURN_BATCH_SIZE`, ...; see src/config/options-schema.ts).
 */
export interface SiloOptions {
  /** The grain classes this silo hosts. */
  grains: readonly GrainClass[];
  /** Redis URL or ioredis options. Default: `REDIS_URL`, else redis://127.0.0.1:6379. */
  redis?: RedisConnectionInput | undefined;
  /** Prefix of every Redis key. Default: `REDGRAIN_PREFIX`, else `redgrain`. */
  keyPrefix?: string | undefined;
  /** Idle time after which an activation is deactivated (ms). A grain class may override it with `static collectionAgeMs`. Default 15 minutes. */
  collectionAgeMs?: number | undefined;
  /** This silo's id in the membership table; must be unique. Default: host-pid-random. */
  siloId?: string | undefined;
  /** Where grains first reached from this silo are placed. Default random. */
  placement?: PlacementStrategy | undefined;
  /** Message lock duration (ms); locks of longer turns are renewed. Default 30 000. */
  lockDurationMs?: number | undefined;
  /** Retries of a grain whose activation fails (onActivate throws, state cannot be loaded): exponential backoff from `baseDelayMs` to `maxDelayMs`; past `maxRestarts` failures within `restartWindowMs` the grain is suspended for a window and `ask` callers get ActivationFailedError. Defaults 5 in 60 s, 100 ms to 10 s. */
  supervision?: Partial<SupervisionSettings> | undefined;
  /** Attempts a message gets when its processing kills or hangs its activation, before it is dead-lettered. Default 3. */
  maxMessageAttempts?: number | undefined;
  /**
   * Most messages a busy grain takes and commits in one step (one Redis round trip). Each message
   * is still its own turn, run alone and in order; their state changes and acknowledgements commit
   * together, and replies go out after the commit. A grain with nothing queued behind a message
   * takes just that one. 1 turns batching off. Default 16.
   */
  turnBatchSize?: number | undefined;
  /**
   * Replicas that must acknowledge (Redis WAIT) a turn's commit before its replies go out and its
   * effects are forwarded, and each enqueue of a grain's `send`. Default: `REDGRAIN_REPLICAS`, else 0.
   */
  replicas?: number | undefined;
  /** Membership heartbeat interval (ms). Default 2 000. */
  heartbeatIntervalMs?: number | undefined;
  /** Heartbeats a silo may miss before the others declare it dead and take its grains over. Default 5 (10 s). */
  missedHeartbeatsLimit?: number | undefined;
  /** Default timeout of `ask` calls made by grains (ms). Default 30 000. */
  askTimeoutMs?: number | undefined;
  /** How long to wait for Redis at start, and how long grains' `send` / `ask` wait for it (ms). Default 10 000. */
  connectTimeoutMs?: number | undefined;
  /** Largest serialized arguments of a message sent by a grain, in bytes. Default 1 MiB. */
  maxPayloadBytes?: number | undefined;
  /** Most messages a grain's turns send to one grain that travel as one job (see `connect`). 1 turns packing off. Default 64. */
  maxPackMessages?: number | undefined;
  /** Largest pack a grain sends, counting its messages' bytes as its job holds them (256 KiB). */
  maxPackBytes?: number | undefined;
  /** How long the outcome of a message a grain sends with an idempotency key is kept (ms, 24 h). */
  idempotencyWindowMs?: number | undefined;
  /** Log level of the built-in JSON logger. Default: `REDGRAIN_LOG_LEVEL`, else `info`. */
  logLevel?: LogLevel | undefined;
  /** A logger to use instead of the built-in one. */
  logger?: Logger | undefined;
  /** Your own error classes, rebuilt as themselves when a grain's `ask` gets one (see `connect`). */
  errors?: readonly ErrorClass[] | undefined;
}

export interface ResolvedSiloOptions {
  grains: readonly GrainClass[];
  redis: RedisConnectionInput;
  keyPrefix: string;
  collectionAgeMs: number;
  siloId: string | undefined;
  placement: PlacementStrategy;
  lockDurationMs: number;
  maxMessageAttempts: number;
  turnBatchSize: number;
  replicas: number;
  supervision: SupervisionSettings;
  heartbeatIntervalMs: number;
  missedHeartbeatsLimit: number;
  askTimeoutMs: number;
  connectTimeoutMs: number;
  maxPayloadBytes: number;
  maxPackMessages: number;
  maxPackBytes: number;
  idempotencyWindowMs: number;
  membershipRefreshMs: number;
  logLevel: LogLevel;
  logger: Logger | undefined;
  errors: readonly ErrorClass[];
}

/**
 * Resolves `Silo.start`'s options through the options schema: each option given in code, else its
 * environment variable, else its default. A refused value throws InvalidOptionError naming it.
 */
export function resolveSiloOptions(options: SiloOptions, env: Environment = process.env): ResolvedSiloOptions {
  const given = (options ?? {}) as Partial<SiloOptions>;
  const get = <N extends (typeof SILO_OPTIONS)[number]>(name: N) =>
    resolveOption(name, given[name as keyof SiloOptions], env, `Silo option ${name}`);
  const siloId = get('siloId');
  return {
    grains: get('grains') as readonly GrainClass[],
    redis: resolveRedis(given.redis, env, 'Silo option redis'),
    keyPrefix: get('keyPrefix'),
    collectionAgeMs: get('collectionAgeMs'),
    siloId: siloId === '' ? undefined : siloId,
    placement: get('placement'),
    lockDurationMs: get('lockDurationMs'),
    supervision: get('supervision'),
    maxMessageAttempts: get('maxMessageAttempts'),
    turnBatchSize: get('turnBatchSize'),
    replicas: get('replicas'),
    heartbeatIntervalMs: get('heartbeatIntervalMs'),
    missedHeartbeatsLimit: get('missedHeartbeatsLimit'),
    askTimeoutMs: get('askTimeoutMs'),
    connectTimeoutMs: get('connectTimeoutMs'),
    maxPayloadBytes: get('maxPayloadBytes'),
    maxPackMessages: get('maxPackMessages'),
    maxPackBytes: get('maxPackBytes'),
    idempotencyWindowMs: get('idempotencyWindowMs'),
    membershipRefreshMs: DEFAULT_MEMBERSHIP_REFRESH_MS,
    logLevel: get('logLevel'),
    logger: get('logger'),
    errors: get('errors'),
  };
}
