import {
  ActivationFailedError,
  AskTimeoutError,
  ClosedError,
  GrainTypeNotRegisteredError,
  InvalidGrainClassError,
  InvalidGrainKeyError,
  InvalidMessageForStateError,
  CallCycleError,
  InvalidOptionError,
  InvalidTimerError,
  InvalidTopicError,
  MailboxFullError,
  MessageDeadLetteredError,
  PayloadTooLargeError,
  ReadOnlyHandlerError,
  RedgrainError,
  RedisUnavailableError,
  RemoteGrainError,
  SerializationError,
  UnknownMethodError,
} from './errors.ts';

/** A primitive field of an error, carried across (`grainType`, `maxDepth`, a user error's `amount`). */
/** A field that travels with an error: a primitive, or a short list of strings (CallCycleError's chain). */
type Detail = string | number | boolean | null | readonly string[];
const MAX_DETAIL_LIST = 64;
const MAX_DETAIL_ITEM = 2_048;

/** An error as it travels between processes. */
export interface ErrorData {
  name: string;
  message: string;
  code: string;
  stack?: string;
  /** Whether retrying may succeed (framework errors carry it). */
  retryable?: boolean;
  /** The error's own fields holding primitives, to rebuild it faithfully. */
  details?: Record<string, Detail>;
}

/** Handlers often throw plain errors; their code is `HANDLER_ERROR` unless they set one. */
export const HANDLER_ERROR_CODE = 'HANDLER_ERROR';

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * The framework's errors that cross process boundaries, by their code. Only an instance of the
 * class may travel with its code: a handler's own error that claims a framework code or name
 * travels as a handler error, so no handler can make a caller see a framework error.
 */
const FRAMEWORK_ERRORS: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ['ACTIVATION_FAILED', ActivationFailedError],
  ['ASK_TIMEOUT', AskTimeoutError],
  ['CALL_CYCLE', CallCycleError],
  ['CLOSED', ClosedError],
  ['DEAD_LETTERED', MessageDeadLetteredError],
  ['GRAIN_TYPE_NOT_REGISTERED', GrainTypeNotRegisteredError],
  ['INVALID_GRAIN_CLASS', InvalidGrainClassError],
  ['INVALID_GRAIN_KEY', InvalidGrainKeyError],
  ['INVALID_MESSAGE_FOR_STATE', InvalidMessageForStateError],
  ['READ_ONLY_HANDLER', ReadOnlyHandlerError],
  ['INVALID_OPTION', InvalidOptionError],
  ['INVALID_TIMER', InvalidTimerError],
  ['INVALID_TOPIC', InvalidTopicError],
  ['MAILBOX_FULL', MailboxFullError],
  ['PAYLOAD_TOO_LARGE', PayloadTooLargeError],
  ['REDIS_UNAVAILABLE', RedisUnavailableError],
  ['SERIALIZATION_FAILED', SerializationError],
  ['UNKNOWN_METHOD', UnknownMethodError],
]);

/** Fields every error has; the rest of an error's own fields are its details. */
const BASE_FIELDS = new Set(['name', 'message', 'code', 'stack', 'cause', 'retryable']);
const MAX_NAME = 200;
const MAX_CODE = 100;
const MAX_MESSAGE = 16_384;
const MAX_STACK = 16_384;
const MAX_DETAILS = 32;

/**
 * The error classes of an application (`errors` on `connect` and `Silo.start`, `static errors` on
 * a grain class): a handler's error of one of these classes comes back from `ask` as an instance of
 * it, found by its `name`, with its message, code and primitive fields.
 */
export class ErrorClassRegistry {
  readonly #byName = new Map<string, ErrorClass>();

  register(classes: readonly unknown[] | undefined): void {
    for (const cls of classes ?? []) {
      if (typeof cls !== 'function' || !(cls.prototype instanceof Error)) {
        throw new InvalidOptionError('errors', describe(cls), 'must hold error classes (classes extending Error)');
      }
      const name = (cls as { name: string }).name;
      if (FRAMEWORK_ERRORS.has(name) || [...FRAMEWORK_ERRORS.values()].some((framework) => framework.name === name)) continue;
      this.#byName.set(name, cls as ErrorClass);
    }
  }

  get(name: string): ErrorClass | undefined {
    return this.#byName.get(name);
  }
}

/** Turns any thrown value into data that can cross a process boundary; never throws. */
export function errorToData(error: unknown): ErrorData {
  if (!(error instanceof Error)) return { name: 'Error', message: clip(safeString(error), MAX_MESSAGE), code: HANDLER_ERROR_CODE };
  // Read through safeString: a hostile error's name or message may be a getter, or not a string.
  const name = clip(
    safeRead(() => safeString(error.name as unknown), 'Error'),
    MAX_NAME,
  );
  const message = clip(
    safeRead(() => safeString(error.message as unknown), ''),
    MAX_MESSAGE,
  );
  const stack = safeRead<unknown>(() => error.stack, undefined);
  const ownCode = safeRead<unknown>(() => (error as { code?: unknown }).code, undefined);
  const framework = typeof ownCode === 'string' ? FRAMEWORK_ERRORS.get(ownCode) : undefined;
  const isFramework = framework !== undefined && error instanceof framework;
  const code =
    typeof ownCode === 'string' && ownCode.length > 0 && ownCode.length <= MAX_CODE && (isFramework || !FRAMEWORK_ERRORS.has(ownCode))
      ? ownCode
      : HANDLER_ERROR_CODE;
  const details = detailsOf(error);
  return {
    name,
    message,
    code,
    ...(typeof stack === 'string' ? { stack: clip(stack, MAX_STACK) } : {}),
    ...(isFramework ? { retryable: (error as RedgrainError).retryable } : {}),
    ...(details === undefined ? {} : { details }),
  };
}

/**
 * Rebuilds an error from its data (which may come from anywhere, so it is checked): framework
 * errors as their own class by their code, errors of a registered class as that class by name,
 * others as RemoteGrainError.
 */
export function errorFromData(input: unknown, registry?: ErrorClassRegistry): Error {
  const data = (typeof input === 'object' && input !== null ? input : {}) as Partial<Record<keyof ErrorData, unknown>>;
  const name = typeof data.name === 'string' ? clip(data.name, MAX_NAME) : 'Error';
  const message = typeof data.message === 'string' ? clip(data.message, MAX_MESSAGE) : 'a remote error (malformed error data)';
  const code = typeof data.code === 'string' && data.code.length <= MAX_CODE ? data.code : HANDLER_ERROR_CODE;
  const stack = typeof data.stack === 'string' ? clip(data.stack, MAX_STACK) : undefined;
  const details = typeof data.details === 'object' && data.details !== null ? (data.details as Record<string, unknown>) : {};
  const framework = FRAMEWORK_ERRORS.get(code);
  const retryable = data.retryable === true;
  if (framework !== undefined) return rebuild(framework, { name: framework.name, message, code, retryable }, details, undefined);
  const registered = registry?.get(name);
  if (registered !== undefined) return rebuild(registered, { name, message, code, retryable: false }, details, stack);
  const remote = new RemoteGrainError(name, code, message, stack);
  assignDetails(remote, details);
  return remote;
}

/** An instance of `cls` without running its constructor (whose parameters we cannot know). */
function rebuild(
  cls: ErrorClass,
  base: { name: string; message: string; code: string; retryable: boolean },
  details: Record<string, unknown>,
  remoteStack: string | undefined,
): Error {
  const error = Object.create(cls.prototype as object) as Error;
  const here = new Error(base.message).stack;
  define(error, 'name', base.name);
  define(error, 'message', base.message);
  define(error, 'stack', here === undefined ? base.message : here.replace(/^Error/, base.name));
  if (cls.prototype instanceof RedgrainError || base.code !== HANDLER_ERROR_CODE) define(error, 'code', base.code);
  if (error instanceof RedgrainError) define(error, 'retryable', base.retryable);
  if (remoteStack !== undefined) define(error, 'remoteStack', remoteStack);
  assignDetails(error, details);
  return error;
}

function assignDetails(error: Error, details: Record<string, unknown>): void {
  let count = 0;
  for (const [key, value] of Object.entries(details)) {
    if (count++ >= MAX_DETAILS) break;
    if (BASE_FIELDS.has(key) || key === '__proto__' || key === 'constructor' || key === 'remoteStack' || !isDetail(value)) continue;
    define(error, key, value);
  }
}

function detailsOf(error: Error): Record<string, Detail> | undefined {
  const details: Record<string, Detail> = {};
  let count = 0;
  let keys: string[];
  try {
    keys = Object.keys(error);
  } catch {
    return undefined;
  }
  for (const key of keys) {
    if (BASE_FIELDS.has(key) || key === '__proto__' || key === 'constructor' || key === 'remoteStack') continue;
    const value = safeRead<unknown>(() => (error as unknown as Record<string, unknown>)[key], undefined);
    if (!isDetail(value)) continue;
    details[key] = typeof value === 'string' ? clip(value, MAX_MESSAGE) : Array.isArray(value) ? [...(value as string[])] : value;
    if (++count >= MAX_DETAILS) break;
  }
  return count === 0 ? undefined : details;
}

function isDetail(value: unknown): value is Detail {
  if (Array.isArray(value)) {
    return value.length <= MAX_DETAIL_LIST && value.every((item) => typeof item === 'string' && item.length <= MAX_DETAIL_ITEM);
  }
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: key !== 'stack' && key !== 'message' && key !== 'name',
    configurable: true,
  });
}

/** Reads a property of a hostile value (a getter may throw, a Proxy may trap). */
function safeRead<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'an unprintable value';
  }
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function describe(value: unknown): string {
  return typeof value === 'function' ? `function ${value.name}` : safeString(value);
}
