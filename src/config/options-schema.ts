import { readFileSync } from 'node:fs';
import type { SupervisionSettings } from '../catalog/activation-supervisor.ts';
import { InvalidOptionError } from '../errors/errors.ts';
import type { ErrorClass } from '../grain/grain.ts';
import { randomPlacement, type PlacementStrategy } from '../placement/placement.ts';
import { isClusterInput, redisOptionsFromUrl, type RedisConnectionInput } from '../redis/connection.ts';
import { LOG_LEVELS, type Logger, type LogLevel } from '../telemetry/logger.ts';

/**
 * One configuration option: its name in code, its environment variable, its default, how a value
 * is checked (given in code) or parsed (read from the environment), and its README line. `connect`,
 * `Silo.start`, the silo process and the CLIs all resolve their options through these specs, and a
 * test holds the README's option tables to them.
 */
export interface OptionSpec<T> {
  /** The option's name in code; empty for settings of the silo process alone. */
  readonly name: string;
  /** The environment variable read when the option is not given in code. */
  readonly env?: string;
  /** The default, or a function making it (only called when needed). */
  readonly default: T | (() => T);
  /** The default as the README shows it. */
  readonly defaultText: string;
  /** Checks a value given in code; throws a reason (a sentence fragment) when it is refused. */
  readonly check: (value: unknown) => T;
  /** Parses the environment variable's text; throws a reason when it is refused. */
  readonly parse?: (text: string) => T;
  /** The silo command's flag for it, for an option given on the command line rather than in the environment. */
  readonly flag?: string;
  /** Whether the value may be shown in an error message (false for anything holding a password). */
  readonly secret?: boolean;
  /** The README's "meaning" column, in short. */
  readonly doc: string;
}

/** The largest delay Node's timers take: longer ones fire at once (with a warning). */
export const MAX_TIMER_MS = 2_147_483_647;

/** Default of the silo process's event-loop watchdog. */
export const DEFAULT_WATCHDOG_MS = 60_000;

/** A refusal inside a spec; the resolver turns it into an InvalidOptionError naming the source. */
class Refused extends Error {}

function refuse(reason: string): never {
  throw new Refused(reason);
}

/** A whole number from `min` to `max`; the reason names the unit so "1.5" reads as wrong at once. */
function wholeNumber(min: number, max: number, unit: string): (value: unknown) => number {
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
  return (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      refuse(`must be a whole number of ${unit}, ${range}`);
    }
    return value;
  };
}

/** Parses environment text as a number, refusing what `Number()` would quietly accept (`''`, `0x10`, ` 5`). */
function numberText(check: (value: unknown) => number): (text: string) => number {
  return (text) => {
    if (!/^-?\d+(\.\d+)?(e\d+)?$/i.test(text)) return check(Number.NaN);
    return check(Number(text));
  };
}

/** A numeric option: its default is a plain number. */
type NumberSpec = OptionSpec<number> & { readonly default: number };

function numberSpec(spec: {
  name: string;
  env?: string;
  default: number;
  defaultText?: string;
  min?: number;
  max?: number;
  unit: string;
  doc: string;
}): NumberSpec {
  const check = wholeNumber(spec.min ?? 1, spec.max ?? Number.MAX_SAFE_INTEGER, spec.unit);
  return {
    name: spec.name,
    ...(spec.env === undefined ? {} : { env: spec.env, parse: numberText(check) }),
    default: spec.default,
    defaultText: spec.defaultText ?? `\`${spec.default}\``,
    check,
    doc: spec.doc,
  };
}

const ms = (name: string, env: string | undefined, value: number, doc: string, defaultText?: string, max = MAX_TIMER_MS): NumberSpec =>
  numberSpec({
    name,
    ...(env === undefined ? {} : { env }),
    default: value,
    ...(defaultText === undefined ? {} : { defaultText }),
    max,
    unit: 'ms',
    doc,
  });

/** The largest database number SELECT takes (a C int); Redis refuses larger ones as malformed. */
const MAX_DB = 2_147_483_647;

function checkRedisUrl(value: string): string {
  if (value.trim() === '') refuse('must be a Redis URL such as redis://127.0.0.1:6379');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme !== undefined && !/^rediss?$/i.test(scheme)) refuse(`must be a redis:// or rediss:// URL, not ${scheme}://`);
  if (scheme !== undefined) checkUrlParts(value);
  return value;
}

/**
 * Refuses a redis:// URL whose port or database would fail later, less clearly: a port outside
 * 1-65535 (`new URL` throws a bare "Invalid URL" at connect), or a database that is not a whole
 * number (ioredis would SELECT NaN). A database the server does not have is refused at connect.
 */
function checkUrlParts(value: string): void {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(value)?.[1] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const port = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort)?.[1];
  if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65_535)) {
    refuse('must have a port from 1 to 65535');
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return refuse('must be a valid URL such as redis://127.0.0.1:6379');
  }
  const path = parsed.pathname.replace(/^\//, '');
  const queryDb = parsed.searchParams.get('db');
  for (const db of queryDb === null ? [path] : [path, queryDb]) {
    if (db !== '' && !(/^\d{1,10}$/.test(db) && Number(db) <= MAX_DB)) {
      refuse(`must name its database as a whole number from 0 to ${MAX_DB}, not ${JSON.stringify(db.slice(0, 40))}`);
    }
  }
}

function checkRedis(value: unknown): RedisConnectionInput {
  if (typeof value === 'string') return checkRedisUrl(value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    if ('cluster' in value) checkClusterNodes(value.cluster, 'cluster');
    if ('sentinels' in value) checkSentinels(value);
    return value;
  }
  return refuse('must be a Redis URL (redis://, rediss://), ioredis options, or { cluster: [...] }');
}

function checkClusterNodes(nodes: unknown, what: string): void {
  if (!Array.isArray(nodes) || nodes.length === 0) refuse(`${what} must list at least one node (redis:// URLs or { host, port })`);
  for (const node of nodes as unknown[]) {
    if (typeof node === 'string') {
      checkRedisUrl(node);
      if (!/^rediss?:\/\//i.test(node)) refuse(`${what}: ${JSON.stringify(node)} is not a redis:// or rediss:// URL`);
      // Not ignored in silence: the data would be in database 0 all the same.
      if (Number(new URL(node).pathname.slice(1) || 0) !== 0) refuse(`${what}: a Redis Cluster has database 0 only`);
      continue;
    }
    const { host, port } = (node ?? {}) as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535) {
      refuse(`${what}: each node is a redis:// URL or { host, port }`);
    }
  }
}

function checkSentinels(value: { sentinels: unknown; name?: unknown }): void {
  if (!Array.isArray(value.sentinels) || value.sentinels.length === 0) refuse('sentinels must list at least one { host, port }');
  if (typeof value.name !== 'string' || value.name === '') refuse('with sentinels, name (the master group name) is required');
}

/** `redis://host:port,...` (or `host:port,...`) from the environment, as URLs. */
function clusterUrls(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(item) ? item : `redis://${item}`));
}

/** `host:port,host:port` (or redis:// URLs) from the environment, as cluster nodes or sentinels. */
function parseNodeList(text: string): { host: string; port: number }[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => {
      const url = /^rediss?:\/\//i.test(item) ? item : `redis://${item}`;
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return refuse(`${JSON.stringify(item)} is not host:port`);
      }
      const port = parsed.port === '' ? 6379 : Number(parsed.port);
      return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port };
    });
}

function checkPrefix(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64 || /[{}\s]/.test(value)) {
    refuse('must be 1-64 characters without braces or whitespace');
  }
  return value;
}

function checkLogLevel(value: unknown): LogLevel {
  if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
    refuse(`must be one of ${LOG_LEVELS.join(', ')} (lower case)`);
  }
  return value as LogLevel;
}

function checkSiloId(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(value)) refuse("must be 1-100 letters, digits, '.', '_' or '-'");
  return value;
}

function checkPlacement(value: unknown): PlacementStrategy {
  if (typeof value !== 'object' || value === null || typeof (value as PlacementStrategy).pick !== 'function') {
    refuse('must be a PlacementStrategy (an object with a pick method)');
  }
  return value as PlacementStrategy;
}

function checkCaFile(value: unknown): string {
  if (typeof value !== 'string' || value === '') refuse('must be the path of a PEM file');
  return value;
}

/** Every option, by name. Defaults here are the only ones; the constants below are read from them. */
export const OPTIONS = {
  redis: {
    name: 'redis',
    env: 'REDIS_URL',
    default: 'redis://127.0.0.1:6379',
    defaultText: '`redis://127.0.0.1:6379`',
    check: checkRedis,
    parse: checkRedis,
    secret: true,
    doc: 'Redis URL (`redis://user:pass@host:port/db`, `rediss://` for TLS) or ioredis options',
  } satisfies OptionSpec<RedisConnectionInput>,
  redisCluster: {
    name: '',
    env: 'REDIS_CLUSTER',
    default: '',
    defaultText: '(none)',
    check: (value: unknown) => String(value),
    parse: (text: string) => {
      checkClusterNodes(clusterUrls(text), 'REDIS_CLUSTER');
      return text;
    },
    secret: true,
    doc: 'Redis Cluster startup nodes, comma-separated URLs (`redis://host:port,...`); wins over `REDIS_URL`',
  } satisfies OptionSpec<string>,
  redisSentinels: {
    name: '',
    env: 'REDIS_SENTINELS',
    default: '',
    defaultText: '(none)',
    check: (value: unknown) => String(value),
    parse: (text: string) => {
      parseNodeList(text);
      return text;
    },
    doc: 'Sentinels, comma-separated `host:port`, with `REDIS_SENTINEL_NAME`; wins over `REDIS_URL`',
  } satisfies OptionSpec<string>,
  redisSentinelName: {
    name: '',
    env: 'REDIS_SENTINEL_NAME',
    default: 'mymaster',
    defaultText: '`mymaster`',
    check: (value: unknown) => String(value),
    parse: (text: string) => text,
    doc: 'The master group name the sentinels watch',
  } satisfies OptionSpec<string>,
  tlsCaFile: {
    name: '',
    env: 'REDIS_TLS_CA_FILE',
    default: '',
    defaultText: '(system CAs)',
    check: checkCaFile,
    parse: checkCaFile,
    doc: 'PEM file of the CA that signed the Redis server certificate, for `rediss://` URLs',
  } satisfies OptionSpec<string>,
  keyPrefix: {
    name: 'keyPrefix',
    env: 'REDGRAIN_PREFIX',
    default: 'redgrain',
    defaultText: '`redgrain`',
    check: checkPrefix,
    parse: checkPrefix,
    doc: 'prefix of every key; silos and clients of one application must share it',
  } satisfies OptionSpec<string>,
  askTimeoutMs: ms('askTimeoutMs', 'REDGRAIN_ASK_TIMEOUT_MS', 30_000, 'default timeout of `ask` calls'),
  connectTimeoutMs: ms('connectTimeoutMs', 'REDGRAIN_CONNECT_TIMEOUT_MS', 10_000, 'how long to wait for Redis at start'),
  redisTimeoutMs: ms('redisTimeoutMs', 'REDGRAIN_REDIS_TIMEOUT_MS', 10_000, 'how long `send` / `ask` wait for Redis'),
  maxPayloadBytes: numberSpec({
    name: 'maxPayloadBytes',
    env: 'REDGRAIN_MAX_PAYLOAD_BYTES',
    default: 1_048_576,
    max: 512 * 1_048_576,
    unit: 'bytes',
    doc: 'largest serialized arguments of one message',
  }),
  maxPackMessages: numberSpec({
    name: 'maxPackMessages',
    env: 'REDGRAIN_MAX_PACK_MESSAGES',
    default: 64,
    max: 1_000,
    unit: 'messages',
    doc: 'most messages to one grain that travel as one BullMQ job (a pack) when a sender has several queued at once (`1` turns packing off)',
  }),
  maxPackBytes: numberSpec({
    name: 'maxPackBytes',
    env: 'REDGRAIN_MAX_PACK_BYTES',
    default: 262_144,
    max: 512 * 1_048_576,
    unit: 'bytes',
    doc: "largest pack, counting its messages' bytes as its job holds them (a larger message travels alone)",
  }),
  // A Redis expiry (PX): Lua refuses a fractional one, so a whole number is required.
  idempotencyWindowMs: ms(
    'idempotencyWindowMs',
    'REDGRAIN_IDEMPOTENCY_WINDOW_MS',
    86_400_000,
    'how long the outcome of a message sent with an idempotency key is kept',
    '`86400000` (24 h)',
    Number.MAX_SAFE_INTEGER,
  ),
  placement: {
    name: 'placement',
    default: randomPlacement,
    defaultText: '`randomPlacement`',
    check: checkPlacement,
    doc: 'where a grain goes when a message from here is the first to reach it',
  } satisfies OptionSpec<PlacementStrategy>,
  collectionAgeMs: ms(
    'collectionAgeMs',
    'REDGRAIN_COLLECTION_AGE_MS',
    15 * 60_000,
    'idle time after which an activation is deactivated',
    '`900000` (15 min)',
  ),
  // A lock shorter than a second expires between its renewals under ordinary load: the message
  // is then taken for stalled, counted again and dead-lettered while its turn is still running.
  lockDurationMs: numberSpec({
    name: 'lockDurationMs',
    env: 'REDGRAIN_LOCK_DURATION_MS',
    default: 30_000,
    min: 1_000,
    max: MAX_TIMER_MS,
    unit: 'ms',
    doc: 'lock on the message being processed (at least 1000)',
  }),
  heartbeatIntervalMs: ms('heartbeatIntervalMs', 'REDGRAIN_HEARTBEAT_INTERVAL_MS', 2_000, 'membership heartbeat'),
  missedHeartbeatsLimit: numberSpec({
    name: 'missedHeartbeatsLimit',
    env: 'REDGRAIN_MISSED_HEARTBEATS_LIMIT',
    default: 5,
    max: 1_000,
    unit: 'heartbeats',
    doc: 'silent intervals before a silo is declared dead',
  }),
  maxMessageAttempts: numberSpec({
    name: 'maxMessageAttempts',
    env: 'REDGRAIN_MAX_MESSAGE_ATTEMPTS',
    default: 3,
    max: 1_000,
    unit: 'attempts',
    doc: 'attempts before a message becomes a dead letter',
  }),
  replicas: numberSpec({
    name: 'replicas',
    env: 'REDGRAIN_REPLICAS',
    default: 0,
    min: 0,
    max: 16,
    unit: 'replicas',
    doc: 'replicas that must acknowledge (WAIT) an enqueue before `send` resolves, and a commit before its replies and effects go out',
  }),
  // A MULTI of more than 1,000 takes holds Redis for too long.
  turnBatchSize: numberSpec({
    name: 'turnBatchSize',
    env: 'REDGRAIN_TURN_BATCH_SIZE',
    default: 16,
    max: 1_000,
    unit: 'messages',
    doc: 'most messages a busy grain takes and commits in one round trip',
  }),
  supervision: {
    name: 'supervision',
    default: { maxRestarts: 5, restartWindowMs: 60_000, baseDelayMs: 100, maxDelayMs: 10_000 },
    defaultText: '5 restarts in 60 s, 100 ms to 10 s backoff',
    check: checkSupervision,
    doc: 'retries of a grain whose activation fails',
  } satisfies OptionSpec<SupervisionSettings>,
  watchdogMs: {
    ...ms('', 'REDGRAIN_WATCHDOG_MS', DEFAULT_WATCHDOG_MS, 'silo process only: event-loop watchdog deadline'),
    check: wholeNumber(0, MAX_TIMER_MS, 'ms (0 turns it off)'),
    parse: numberText(wholeNumber(0, MAX_TIMER_MS, 'ms (0 turns it off)')),
  },
  siloId: {
    name: 'siloId',
    env: 'REDGRAIN_SILO_ID',
    default: '',
    defaultText: '`<host>-<pid>-<random>`',
    check: checkSiloId,
    parse: checkSiloId,
    doc: "the silo's id in the membership table; must be unique",
  } satisfies OptionSpec<string>,
  logLevel: {
    name: 'logLevel',
    env: 'REDGRAIN_LOG_LEVEL',
    default: 'info',
    defaultText: '`info`',
    check: checkLogLevel,
    parse: checkLogLevel,
    doc: 'level of the built-in JSON logger',
  } satisfies OptionSpec<LogLevel>,
  grains: {
    name: 'grains',
    flag: '--grains <module>',
    default: (): never => refuse('is required: give at least one grain class'),
    defaultText: '(required)',
    check: (value: unknown) => {
      if (!Array.isArray(value) || value.length === 0) refuse('must hold at least one grain class');
      return value as readonly unknown[];
    },
    doc: 'grain classes this silo hosts',
  } satisfies OptionSpec<readonly unknown[]>,
  logger: {
    name: 'logger',
    // None: the silo then builds its own JSON logger at `logLevel`.
    default: undefined as Logger | undefined,
    defaultText: 'built-in',
    check: (value: unknown): Logger | undefined => {
      const methods = ['debug', 'info', 'warn', 'error', 'child'] as const;
      if (typeof value !== 'object' || value === null || methods.some((m) => typeof (value as Record<string, unknown>)[m] !== 'function')) {
        refuse('must be a Logger (debug, info, warn, error and child methods)');
      }
      return value as Logger;
    },
    doc: 'your own `Logger` instead of the built-in JSON one',
  } satisfies OptionSpec<Logger | undefined>,
  errors: {
    name: 'errors',
    default: [] as readonly ErrorClass[],
    defaultText: '`[]`',
    check: (value: unknown): readonly ErrorClass[] => {
      if (!Array.isArray(value)) refuse('must be an array of error classes');
      const notClass = value.find(
        (cls: unknown) => typeof cls !== 'function' || !((cls as { prototype?: unknown }).prototype instanceof Error),
      );
      if (notClass !== undefined) refuse('must hold error classes (classes extending Error) only');
      return value as readonly ErrorClass[];
    },
    doc: 'your own error classes: `ask` rejects with an instance of one when a handler throws it (see Errors)',
  } satisfies OptionSpec<readonly ErrorClass[]>,
} as const;

export type OptionName = keyof typeof OPTIONS;
type ValueOf<N extends OptionName> = ReturnType<(typeof OPTIONS)[N]['check']>;

/** The options `connect` takes, in the README's order. */
export const CONNECT_OPTIONS = [
  'redis',
  'keyPrefix',
  'askTimeoutMs',
  'connectTimeoutMs',
  'redisTimeoutMs',
  'maxPayloadBytes',
  'maxPackMessages',
  'maxPackBytes',
  'idempotencyWindowMs',
  'replicas',
  'placement',
  'errors',
  'redisCluster',
  'redisSentinels',
  'redisSentinelName',
  'tlsCaFile',
] as const satisfies readonly OptionName[];

/** The options `Silo.start` takes (and the silo process settings), in the README's order. */
export const SILO_OPTIONS = [
  'grains',
  'redis',
  'keyPrefix',
  'collectionAgeMs',
  'lockDurationMs',
  'heartbeatIntervalMs',
  'missedHeartbeatsLimit',
  'maxMessageAttempts',
  'turnBatchSize',
  'replicas',
  'supervision',
  'watchdogMs',
  'askTimeoutMs',
  'connectTimeoutMs',
  'maxPayloadBytes',
  'maxPackMessages',
  'maxPackBytes',
  'idempotencyWindowMs',
  'siloId',
  'placement',
  'logLevel',
  'logger',
  'errors',
  'redisCluster',
  'redisSentinels',
  'redisSentinelName',
  'tlsCaFile',
] as const satisfies readonly OptionName[];

function checkSupervision(value: unknown): SupervisionSettings {
  if (typeof value !== 'object' || value === null) refuse('must be an object');
  const merged = { ...OPTIONS.supervision.default, ...(value as Partial<SupervisionSettings>) };
  for (const [field, n] of Object.entries(merged)) {
    if (!(field in OPTIONS.supervision.default)) refuse(`has an unknown field ${field}`);
    const whole = typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_TIMER_MS;
    if (!whole) refuse(`${field} must be a whole number of at least 1`);
  }
  return merged;
}

/** Where option values come from: what the caller passed in code, then the environment. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Resolves one option: the value given in code, else its environment variable (when set and not
 * empty), else its default. A refused value throws InvalidOptionError naming where it came from:
 * `givenAs` (such as `Silo option askTimeoutMs` or `--prefix`) for a given value, the variable's
 * name for the environment.
 */
export function resolveOption<N extends OptionName>(name: N, given: unknown, env: Environment, givenAs: string): ValueOf<N> {
  const spec = OPTIONS[name] as unknown as OptionSpec<ValueOf<N>>;
  const shown = (value: unknown): string =>
    spec.secret === true ? redactedText(value) : typeof value === 'string' ? JSON.stringify(value) : describeValue(value);
  if (given !== undefined) {
    return guard(() => spec.check(given), givenAs, shown(given));
  }
  const text = spec.env === undefined ? undefined : env[spec.env];
  if (spec.env !== undefined && spec.parse !== undefined && text !== undefined && text !== '') {
    const parse = spec.parse;
    return guard(() => parse(text), spec.env, shown(text));
  }
  return typeof spec.default === 'function' ? guard(() => (spec.default as () => ValueOf<N>)(), givenAs, 'missing') : spec.default;
}

function guard<T>(run: () => T, source: string, shown: string): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof Refused) throw new InvalidOptionError(source, shown, error.message);
    throw error;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return 'an object';
    }
  }
  return typeof value;
}

/** A Redis URL or options object with any password replaced by `***`, for messages and reports. */
export function redactedText(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUrl(value));
  if (typeof value === 'object' && value !== null) {
    const { password, ...rest } = value as Record<string, unknown>;
    return describeValue(password === undefined ? rest : { ...rest, password: '***' });
  }
  return describeValue(value);
}

/** `redis://user:secret@host` as `redis://user:***@host`; anything else unchanged. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}

/**
 * The Redis connection from the `redis` option, `REDIS_URL` or the default. With
 * `REDIS_TLS_CA_FILE` set, a `rediss://` URL becomes ioredis options trusting that CA, so every
 * connection (commands, blocking reads, subscribers, BullMQ's) verifies the server against it.
 */
export function resolveRedis(given: unknown, env: Environment, givenAs: string): RedisConnectionInput {
  const input =
    given === undefined
      ? (redisFromTopologyEnv(env) ?? resolveOption('redis', undefined, env, givenAs))
      : resolveOption('redis', given, env, givenAs);
  const caFile = resolveOption('tlsCaFile', undefined, env, OPTIONS.tlsCaFile.env);
  if (caFile === '') return input;
  if (isClusterInput(input)) {
    if (!input.cluster.some((node) => typeof node === 'string' && /^rediss:\/\//i.test(node))) return input;
    return { ...input, redisOptions: { ...input.redisOptions, tls: { ...input.redisOptions?.tls, ca: readCaFile(caFile) } } };
  }
  if (typeof input !== 'string' || !/^rediss:\/\//i.test(input)) return input;
  return { ...redisOptionsFromUrl(input), tls: { ca: readCaFile(caFile) } };
}

/** A cluster from `REDIS_CLUSTER`, or a master found through `REDIS_SENTINELS`; they win over `REDIS_URL`. */
function redisFromTopologyEnv(env: Environment): RedisConnectionInput | undefined {
  const cluster = resolveOption('redisCluster', undefined, env, 'REDIS_CLUSTER');
  if (cluster !== '') {
    return { cluster: clusterUrls(cluster) };
  }
  const sentinels = resolveOption('redisSentinels', undefined, env, 'REDIS_SENTINELS');
  if (sentinels !== '') {
    const name = resolveOption('redisSentinelName', undefined, env, 'REDIS_SENTINEL_NAME');
    return { sentinels: guard(() => parseNodeList(sentinels), 'REDIS_SENTINELS', JSON.stringify(sentinels)), name };
  }
  return undefined;
}

function readCaFile(caFile: string): Buffer {
  let ca: Buffer;
  try {
    ca = readFileSync(caFile);
  } catch (error) {
    throw new InvalidOptionError(
      'REDIS_TLS_CA_FILE',
      JSON.stringify(caFile),
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  return ca;
}

/** The silo process's own settings (beyond `Silo.start`'s), read from its environment. */
export function siloProcessSettings(env: Environment = process.env): { watchdogMs: number } {
  return { watchdogMs: resolveOption('watchdogMs', undefined, env, 'silo process') };
}
