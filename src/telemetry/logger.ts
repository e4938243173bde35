import { activeTraceFields } from './tracing.ts';

/** Log levels, least to most severe. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, string | number | boolean | undefined>;

/** A structured logger: one JSON object per line on stderr. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel): LogLevel {
  if (value === undefined || value === '') return fallback;
  const level = value.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new TypeError(`Unknown log level "${value}"; use one of ${LOG_LEVELS.join(', ')}`);
}

/**
 * `logger` with the trace id and span id of the active span added to every line, so log lines
 * written while a handler runs can be found from its trace (and the trace from them).
 */
export function withTraceFields(logger: Logger): Logger {
  const add = (fields?: LogFields): LogFields => ({ ...activeTraceFields(), ...fields });
  return {
    debug: (m, f) => logger.debug(m, add(f)),
    info: (m, f) => logger.info(m, add(f)),
    warn: (m, f) => logger.warn(m, add(f)),
    error: (m, f) => logger.error(m, add(f)),
    child: (fields) => withTraceFields(logger.child(fields)),
  };
}

/** Longest string a log line carries per field: values can come from hostile input. */
export const MAX_LOG_FIELD_LENGTH = 2_000;

function clipped(fields: LogFields | undefined): LogFields | undefined {
  if (fields === undefined) return undefined;
  const out: LogFields = {};
  for (const [name, value] of Object.entries(fields)) {
    out[name] =
      typeof value === 'string' && value.length > MAX_LOG_FIELD_LENGTH
        ? `${value.slice(0, MAX_LOG_FIELD_LENGTH)}… (${value.length} characters)`
        : value;
  }
  return out;
}

export function createLogger(
  level: LogLevel,
  base: LogFields = {},
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const emit = (lvl: LogLevel, message: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(lvl) < threshold) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: message, ...base, ...clipped(fields) })}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}
