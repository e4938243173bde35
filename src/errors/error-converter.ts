import {
  ActivationFailedError,
  GrainTypeNotRegisteredError,
  InvalidMessageForStateError,
  MailboxFullError,
  RedgrainError,
  PayloadTooLargeError,
  RemoteGrainError,
  SerializationError,
  UnknownMethodError,
} from './errors.ts';

/** An error as it travels between processes. */
export interface ErrorData {
  name: string;
  message: string;
  code: string;
  stack?: string;
  /** Constructor fields of known framework errors, to rebuild them faithfully. */
  details?: Record<string, string>;
}

/** Handlers often throw plain errors; their code is `HANDLER_ERROR` unless they set one. */
export const HANDLER_ERROR_CODE = 'HANDLER_ERROR';

/** Turns any thrown value into data that can cross a process boundary. */
export function errorToData(error: unknown): ErrorData {
  if (error instanceof InvalidMessageForStateError) {
    return {
      ...baseData(error),
      details: { grainType: error.grainType, state: error.state, messageName: error.messageName },
    };
  }
  if (error instanceof ActivationFailedError) {
    return { ...baseData(error), details: { grain: error.grain, lastError: error.lastError } };
  }
  if (error instanceof UnknownMethodError) {
    return { ...baseData(error), details: { grainType: error.grainType, method: error.method } };
  }
  if (error instanceof MailboxFullError) {
    return { ...baseData(error), details: { grain: error.grain, maxDepth: String(error.maxDepth), dropped: String(error.dropped) } };
  }
  if (error instanceof GrainTypeNotRegisteredError) {
    return { ...baseData(error), details: { grainType: error.grainType } };
  }
  if (error instanceof Error) return baseData(error);
  return { name: 'Error', message: String(error), code: HANDLER_ERROR_CODE };
}

/** Rebuilds an error from its data: framework errors as their own class, others as RemoteGrainError. */
export function errorFromData(data: ErrorData): RedgrainError {
  const d = data.details ?? {};
  let error: RedgrainError;
  switch (data.name) {
    case 'InvalidMessageForStateError':
      error = new InvalidMessageForStateError(d.grainType ?? '', d.state ?? '', d.messageName ?? '');
      break;
    case 'GrainTypeNotRegisteredError':
      error = new GrainTypeNotRegisteredError(d.grainType ?? '');
      break;
    case 'ActivationFailedError':
      error = new ActivationFailedError(d.grain ?? '', d.lastError ?? '');
      break;
    case 'SerializationError':
      error = new SerializationError('a value', new Error(data.message));
      break;
    case 'PayloadTooLargeError':
      error = new PayloadTooLargeError('a value', 0, 0);
      break;
    case 'MailboxFullError':
      error = new MailboxFullError(d.grain ?? '', Number(d.maxDepth ?? 0), d.dropped === 'true');
      break;
    case 'UnknownMethodError':
      error = new UnknownMethodError(d.grainType ?? '', d.method ?? '');
      break;
    default:
      return new RemoteGrainError(data.name, data.code, data.message, data.stack);
  }
  if (error.message !== data.message) error.message = data.message;
  return error;
}

function baseData(error: Error): ErrorData {
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: error.message,
    code: typeof code === 'string' ? code : HANDLER_ERROR_CODE,
    ...(error.stack === undefined ? {} : { stack: error.stack }),
  };
}

