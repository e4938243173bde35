/**
 * The error base every redgrain error shares: a stable `code` a caller can switch on, and whether
 * retrying the same call may succeed.
 */
export class RedgrainError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** `redgrain migrate-keys` will not run: silos are running, or some keys could not be moved. */
export class KeyMigrationRefusedError extends RedgrainError {
  constructor(reason: string) {
    super('KEY_MIGRATION_REFUSED', reason);
  }
}

/** The grain type was never registered by any silo sharing this key prefix. */
export class GrainTypeNotRegisteredError extends RedgrainError {
  /** `known`, when given, lists the registered types, so a misspelt name is easy to spot. */
  constructor(
    readonly grainType: string,
    known?: readonly string[],
  ) {
    super(
      'GRAIN_TYPE_NOT_REGISTERED',
      `Grain type "${grainType}" is not registered: no silo with this key prefix has ever hosted it` +
        (known === undefined ? '' : ` (registered types: ${known.length === 0 ? 'none' : [...known].sort().join(', ')})`),
    );
  }
}

/**
 * A configuration value was refused: an option passed in code, an environment variable, a
 * command-line flag, or a call option (`idempotencyKey`, `timeoutMs`, `correlationId`). `option` names it as the user wrote it (`idempotencyWindowMs`,
 * `REDGRAIN_LOG_LEVEL`), so the message points at the line to fix.
 */
export class InvalidOptionError extends RedgrainError {
  constructor(
    readonly option: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super('INVALID_OPTION', `${option} is ${value}: ${reason}`);
  }
}

/** A grain class is unusable: it lacks a `static type`, or two classes claim one type name. */
export class InvalidGrainClassError extends RedgrainError {
  constructor(message: string) {
    super('INVALID_GRAIN_CLASS', message);
  }
}

/**
 * A grain module given to the silo command or the load test cannot be used: it exports no Grain
 * subclass, or it is TypeScript and no TypeScript loader (tsx) is installed.
 */
export class InvalidGrainModuleError extends RedgrainError {
  constructor(modulePath: string, reason: string) {
    super('INVALID_GRAIN_MODULE', `Grain module ${modulePath}: ${reason}`);
  }
}

/** The grain key is empty, not a string, or too long. */
export class InvalidGrainKeyError extends RedgrainError {
  constructor(grainType: string, key: unknown, reason: string) {
    const shown = typeof key === 'string' && key.length > 40 ? `${key.slice(0, 40)}…` : String(key);
    super('INVALID_GRAIN_KEY', `Invalid key ${JSON.stringify(shown)} for grain type "${grainType}": ${reason}`);
  }
}

/** The message names a method the grain does not handle (only reachable from untyped callers). */
export class UnknownMethodError extends RedgrainError {
  readonly method: string;

  constructor(
    readonly grainType: string,
    method: unknown,
  ) {
    const name =
      typeof method === 'string' ? (method.length > 100 ? `${method.slice(0, 100)}…` : method) : `(a ${typeof method}, not a method name)`;
    super('UNKNOWN_METHOD', `Grain type "${grainType}" has no handler ${JSON.stringify(name)}`);
    this.method = name;
  }
}

/** Arguments or a return value could not be serialized. */
export class SerializationError extends RedgrainError {
  constructor(what: string, cause: unknown) {
    super('SERIALIZATION_FAILED', `Cannot serialize ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** A message's serialized arguments exceed the configured limit. */
export class PayloadTooLargeError extends RedgrainError {
  constructor(what: string, bytes: number, limit: number) {
    super('PAYLOAD_TOO_LARGE', `${what} is ${bytes} bytes serialized; the limit is ${limit} (maxPayloadBytes)`);
  }
}

/** An `ask` got no reply within its timeout. The message stays queued and may still be processed. */
export class AskTimeoutError extends RedgrainError {
  constructor(grain: string, method: string, timeoutMs: number) {
    super('ASK_TIMEOUT', `ask ${grain}.${method} got no reply within ${timeoutMs} ms (the message stays queued and may still run)`, {
      retryable: true,
    });
  }
}

/**
 * A grain `ask`ed a grain that is itself waiting, through a chain of `ask`s, for the asking one:
 * the reply could never come (a turn runs one at a time), so the call fails at once instead of
 * timing out. `chain` lists the grains from the first asker to the one asked again.
 */
export class CallCycleError extends RedgrainError {
  constructor(readonly chain: readonly string[]) {
    super('CALL_CYCLE', `call cycle: ${chain.join(' -> ')} (each waits for the next; use send for one direction)`);
  }
}

/** The current state of a grain does not accept this message; nothing was changed. */
export class InvalidMessageForStateError extends RedgrainError {
  constructor(
    readonly grainType: string,
    readonly state: string,
    readonly messageName: string,
  ) {
    super('INVALID_MESSAGE_FOR_STATE', `${grainType} in state ${state} does not accept "${messageName}"`);
  }
}

/**
 * A read-only handler tried to change something: the grain's state, or an effect (a send, a
 * publish, a reminder, a subscription, a timer). Nothing was changed.
 */
export class ReadOnlyHandlerError extends RedgrainError {
  constructor(
    readonly grainType: string,
    readonly method: string,
    readonly attempted: string,
  ) {
    super('READ_ONLY_HANDLER', `${grainType}.${method} is read-only and cannot ${attempted}; nothing was changed`);
  }
}

/** Redis could not be reached in time. */
export class RedisUnavailableError extends RedgrainError {
  constructor(message: string, cause?: unknown) {
    super('REDIS_UNAVAILABLE', message, { retryable: true, cause });
  }
}

/** A Redis whose `maxmemory-policy` may evict keys would silently lose messages and state. */
export class EvictingRedisError extends RedgrainError {
  constructor(policy: string) {
    super(
      'REDIS_EVICTION_POLICY',
      `Redis maxmemory-policy is "${policy}"; redgrain needs "noeviction" because evicted keys are lost ` +
        'messages and lost state. Run: redis-cli CONFIG SET maxmemory-policy noeviction',
    );
  }
}

/**
 * A grain could not be activated (its onActivate threw or its state could not be loaded) even after
 * retries; its messages wait in its mailbox until it can be, for example once it is deployed fixed.
 */
export class ActivationFailedError extends RedgrainError {
  constructor(
    readonly grain: string,
    readonly lastError: string,
  ) {
    super('ACTIVATION_FAILED', `${grain} cannot be activated (${lastError}); its messages wait until it can`, { retryable: true });
  }
}

/**
 * A grain's mailbox is at its type's `maxDepth`: the message was refused (policy `reject`), or it
 * was the oldest waiting message and was dropped to the dead letters (policy `drop-oldest`).
 */
export class MailboxFullError extends RedgrainError {
  constructor(
    readonly grain: string,
    readonly maxDepth: number,
    readonly dropped = false,
  ) {
    super(
      'MAILBOX_FULL',
      dropped
        ? `${grain}'s mailbox went over its ${maxDepth} messages and this message, the oldest waiting, was dropped to the dead letters`
        : `${grain}'s mailbox holds ${maxDepth} waiting messages, its maximum; the message was not enqueued`,
      { retryable: true },
    );
  }
}

/** A topic or subscription pattern that does not follow the topic syntax. */
export class InvalidTopicError extends RedgrainError {
  constructor(message: string) {
    super('INVALID_TOPIC', message);
  }
}

/** A timer or reminder was set with a bad name, schedule or method. */
export class InvalidTimerError extends RedgrainError {
  constructor(message: string) {
    super('INVALID_TIMER', message);
  }
}

/** A message kept killing or hanging its activation and was moved to the dead letters. */
export class MessageDeadLetteredError extends RedgrainError {
  constructor(grain: string, method: string, attempts: number) {
    super(
      'DEAD_LETTERED',
      `${grain}.${method} was dead-lettered after ${attempts} attempts: its processing kept killing or hanging the activation`,
    );
  }
}

/** The client or silo was closed while the call was under way. */
export class ClosedError extends RedgrainError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

/**
 * An error thrown by a handler on another process, whose class this process does not know.
 * `name`, `message` and `code` are the original ones; `remoteStack` is the stack on the silo.
 */
export class RemoteGrainError extends RedgrainError {
  remoteStack: string | undefined;

  constructor(name: string, code: string, message: string, remoteStack?: string) {
    super(code, message);
    this.name = name;
    this.remoteStack = remoteStack;
  }
}

/** A one-line description of any thrown value, for logs. */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) return `${errorName(error)}: ${errorMessage(error)}`;
    return typeof error === 'string' ? error : JSON.stringify(error);
  } catch {
    return 'unprintable error';
  }
}

/**
 * A thrown value's name, read so that it cannot throw: a handler may throw an object whose `name`
 * is a getter that throws, and reading it must not take down the turn that reports it.
 */
export function errorName(error: unknown): string {
  return readText(() => (error instanceof Error ? error.name : 'Error'), 'Error');
}

/** A thrown value's message, read so that it cannot throw (see `errorName`). */
export function errorMessage(error: unknown): string {
  return readText(() => (error instanceof Error ? error.message : String(error)), 'unprintable error');
}

function readText(read: () => unknown, fallback: string): string {
  try {
    const text = read();
    return typeof text === 'string' ? text : fallback;
  } catch {
    return fallback;
  }
}
