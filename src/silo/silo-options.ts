import { DEFAULT_ASK_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_IDEMPOTENCY_WINDOW_MS, positiveOption, DEFAULT_LOCK_DURATION_MS, DEFAULT_MEMBERSHIP_REFRESH_MS } from '../client/connect.ts';
import { DEFAULT_SUPERVISION, type SupervisionSettings } from '../catalog/activation-supervisor.ts';
import type { ErrorClass, GrainClass } from '../grain/grain.ts';
import { randomPlacement, type PlacementStrategy } from '../placement/placement.ts';
import { DEFAULT_REDIS_URL, type RedisConnectionInput } from '../redis/connection.ts';
import { DEFAULT_KEY_PREFIX } from '../redis/keys.ts';
import { parseLogLevel, type Logger, type LogLevel } from '../telemetry/logger.ts';

export const DEFAULT_COLLECTION_AGE_MS = 15 * 60_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;
export const DEFAULT_MISSED_HEARTBEATS_LIMIT = 5;
export const DEFAULT_MAX_MESSAGE_ATTEMPTS = 3;
export const DEFAULT_TURN_BATCH_SIZE = 16;

/** Options of `Silo.start`. Only `grains` is required. */
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
  supervision: SupervisionSettings;
  heartbeatIntervalMs: number;
  missedHeartbeatsLimit: number;
  askTimeoutMs: number;
  connectTimeoutMs: number;
  maxPayloadBytes: number;
  idempotencyWindowMs: number;
  membershipRefreshMs: number;
  logLevel: LogLevel;
  logger: Logger | undefined;
  errors: readonly ErrorClass[];
}

export function resolveSiloOptions(options: SiloOptions): ResolvedSiloOptions {
  if (!Array.isArray(options.grains) || options.grains.length === 0) {
    throw new TypeError('Silo.start needs at least one grain class in options.grains');
  }
  if (options.siloId !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(options.siloId)) {
    throw new TypeError(`Silo id ${JSON.stringify(options.siloId)} must be 1-100 letters, digits, '.', '_' or '-'`);
  }
  return {
    grains: options.grains,
    redis: options.redis ?? (process.env.REDIS_URL || DEFAULT_REDIS_URL),
    keyPrefix: options.keyPrefix ?? (process.env.REDGRAIN_PREFIX || DEFAULT_KEY_PREFIX),
    collectionAgeMs: positive('collectionAgeMs', options.collectionAgeMs ?? DEFAULT_COLLECTION_AGE_MS),
    siloId: options.siloId,
    placement: options.placement ?? randomPlacement,
    lockDurationMs: positive('lockDurationMs', options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS),
    supervision: resolveSupervision(options.supervision ?? {}),
    maxMessageAttempts: positive('maxMessageAttempts', options.maxMessageAttempts ?? DEFAULT_MAX_MESSAGE_ATTEMPTS),
    turnBatchSize: batchSize(options.turnBatchSize ?? DEFAULT_TURN_BATCH_SIZE),
    heartbeatIntervalMs: positive('heartbeatIntervalMs', options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS),
    missedHeartbeatsLimit: positive('missedHeartbeatsLimit', options.missedHeartbeatsLimit ?? DEFAULT_MISSED_HEARTBEATS_LIMIT),
    askTimeoutMs: positive('askTimeoutMs', options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    maxPayloadBytes: positive('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES),
    idempotencyWindowMs: positive('idempotencyWindowMs', options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS),
    membershipRefreshMs: DEFAULT_MEMBERSHIP_REFRESH_MS,
    logLevel: options.logLevel ?? parseLogLevel(process.env.REDGRAIN_LOG_LEVEL, 'info'),
    logger: options.logger,
    errors: options.errors ?? [],
  };
}

function positive(name: string, value: number): number {
  return positiveOption(`Silo option ${name}`, value);
}

/** A batch of 1 to 1,000 messages: a MULTI of more holds Redis for too long. */
function batchSize(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 1_000) {
    throw new TypeError(`Silo option turnBatchSize must be an integer from 1 to 1000, got ${String(value)}`);
  }
  return value;
}

function resolveSupervision(given: Partial<SupervisionSettings>): SupervisionSettings {
  const merged = { ...DEFAULT_SUPERVISION, ...given };
  for (const [name, value] of Object.entries(merged)) positive(`supervision.${name}`, value);
  return merged;
}
