import { parse, stringify } from 'superjson';
import { SerializationError } from '../errors/errors.ts';

/**
 * The one serializer for arguments, return values and state: superjson, so Date, Map, Set,
 * BigInt, RegExp and undefined survive the trip through Redis.
 *
 * Values that would be silently lost (functions, symbols, class instances superjson does not know)
 * are refused with a SerializationError instead of arriving as something else.
 */
export function serialize(value: unknown, what: string): string {
  let problem: Problem | undefined;
  try {
    problem = findUnserializable(value, new Set(), 0);
  } catch (error) {
    // A getter that throws, a Proxy trap, nesting deep enough to overflow the stack.
    throw new SerializationError(what, error instanceof RangeError ? new Error('the value is nested too deeply') : error);
  }
  if (problem !== undefined) throw new SerializationError(what, new Error(describeProblem(problem)));
  try {
    return stringify(value);
  } catch (error) {
    throw new SerializationError(what, error);
  }
}

/** Deepest nesting a serialized value may have (superjson recurses, and so does the reader). */
const MAX_DEPTH = 256;

export function deserialize(text: string): unknown {
  return parse(text);
}

/** What cannot be serialized, and where: the keys and indexes leading to it, outermost first. */
interface Problem {
  reason: string;
  path: (string | number)[];
}

/** Path segments shown in a message at most (a deep path keeps its first and last ones). */
const SHOWN_PATH_SEGMENTS = 12;

function describeProblem({ reason, path }: Problem): string {
  if (path.length === 0) return reason;
  const shown =
    path.length <= SHOWN_PATH_SEGMENTS ? path : [...path.slice(0, SHOWN_PATH_SEGMENTS / 2), '…', ...path.slice(-SHOWN_PATH_SEGMENTS / 2)];
  const accessor = shown.map((segment) => (segment === '…' ? '…' : `[${JSON.stringify(segment).slice(0, 60)}]`)).join('');
  return `${reason} (at ${accessor})`;
}

function findUnserializable(value: unknown, seen: Set<object>, depth: number): Problem | undefined {
  if (depth > MAX_DEPTH) return { reason: `values nested deeper than ${MAX_DEPTH} levels cannot be serialized`, path: [] };
  switch (typeof value) {
    case 'function':
      return { reason: 'functions cannot be serialized', path: [] };
    case 'symbol':
      return { reason: 'symbols cannot be serialized', path: [] };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null || seen.has(value)) return undefined;
  seen.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) {
      const problem = findUnserializable(k, seen, depth + 1) ?? findUnserializable(v, seen, depth + 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const v of value) {
      const problem = findUnserializable(v, seen, depth + 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (Array.isArray(value)) {
    for (const [at, v] of value.entries()) {
      const problem = findUnserializable(v, seen, depth + 1);
      if (problem !== undefined) return { reason: problem.reason, path: [at, ...problem.path] };
    }
    return undefined;
  }
  if (value instanceof Date || value instanceof RegExp || value instanceof URL) return undefined;
  if (value instanceof Error) {
    // superjson keeps only its name and message: the class, `code`, other fields and stack are lost.
    return { reason: 'Error objects cannot be serialized faithfully (send plain data such as { name, message })', path: [] };
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
    return { reason: `instances of class ${name} cannot be serialized (send plain data)`, path: [] };
  }
  if (Object.getOwnPropertySymbols(value).length > 0) {
    return { reason: 'properties keyed by a symbol cannot be serialized (they would be dropped)', path: [] };
  }
  for (const key of Object.keys(value)) {
    const problem = findUnserializable((value as Record<string, unknown>)[key], seen, depth + 1);
    if (problem !== undefined) return { reason: problem.reason, path: [key, ...problem.path] };
  }
  return undefined;
}
