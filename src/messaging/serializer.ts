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
  let problem: string | undefined;
  try {
    problem = findUnserializable(value, new Set(), 0);
  } catch (error) {
    // A getter that throws, a Proxy trap, nesting deep enough to overflow the stack.
    throw new SerializationError(what, error instanceof RangeError ? new Error('the value is nested too deeply') : error);
  }
  if (problem !== undefined) throw new SerializationError(what, new Error(problem));
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

function findUnserializable(value: unknown, seen: Set<object>, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return `values nested deeper than ${MAX_DEPTH} levels cannot be serialized`;
  switch (typeof value) {
    case 'function':
      return 'functions cannot be serialized';
    case 'symbol':
      return 'symbols cannot be serialized';
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
  if (value instanceof Set || Array.isArray(value)) {
    for (const v of value) {
      const problem = findUnserializable(v, seen, depth + 1);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (value instanceof Date || value instanceof RegExp || value instanceof Error || value instanceof URL) {
    return undefined;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
    return `instances of class ${name} cannot be serialized (send plain data)`;
  }
  for (const key of Object.keys(value)) {
    const problem = findUnserializable((value as Record<string, unknown>)[key], seen, depth + 1);
    if (problem !== undefined) return `${problem} (at "${key}")`;
  }
  return undefined;
}
