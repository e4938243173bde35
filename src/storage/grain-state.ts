import { SerializationError } from '../errors/errors.ts';
import { deserialize, serialize } from '../messaging/serializer.ts';

/** The persisted form of a grain's state: one serialized value per top-level property. */
export type StateSnapshot = ReadonlyMap<string, string>;

/** What a turn changed, as hash writes, plus the snapshot that will be current once committed. */
export interface StateChanges {
  set: [field: string, value: string][];
  remove: string[];
  snapshot: StateSnapshot;
}

/**
 * Converts grain state to and from its Redis hash form, one hash field per top-level property, so
 * a turn writes only the properties it changed.
 */
export const GrainStateCodec = {
  /** Builds the in-memory state from the stored fields, over the grain's initial state. */
  fromFields(fields: Record<string, string>, initial: object): { state: object; snapshot: StateSnapshot } {
    const state: Record<string, unknown> = { ...initial };
    const snapshot = new Map<string, string>();
    for (const [field, text] of Object.entries(fields)) {
      let value: unknown;
      try {
        value = deserialize(text);
      } catch (error) {
        throw new TypeError(
          `state field ${JSON.stringify(field.slice(0, 100))} cannot be read (${error instanceof Error ? error.message : String(error)})`,
          { cause: error },
        );
      }
      defineField(state, field, value);
      snapshot.set(field, text);
    }
    return { state, snapshot };
  },

  /** Rebuilds the state exactly as it was at `snapshot` (after a failed turn). */
  restore(snapshot: StateSnapshot, initial: object): object {
    const state: Record<string, unknown> = { ...initial };
    for (const [field, text] of snapshot) defineField(state, field, deserialize(text));
    return state;
  },

  /** What to write to go from one snapshot to another (a batch of turns, committed together). */
  between(from: StateSnapshot, to: StateSnapshot): StateChanges {
    const set: [string, string][] = [];
    for (const [field, text] of to) if (from.get(field) !== text) set.push([field, text]);
    const remove = [...from.keys()].filter((field) => !to.has(field));
    return { set, remove, snapshot: to };
  },

  /** What changed between the committed snapshot and the state a turn left. */
  diff(snapshot: StateSnapshot, state: object, grain: string): StateChanges {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) {
      throw new TypeError(`The state of ${grain} must be a plain object`);
    }
    const next = new Map<string, string>();
    const set: [string, string][] = [];
    for (const field of Object.keys(state)) {
      const value = (state as Record<string, unknown>)[field];
      if (value === undefined) continue;
      checkFieldName(field, grain);
      const text = serialize(value, `state field "${field}" of ${grain}`);
      next.set(field, text);
      if (snapshot.get(field) !== text) set.push([field, text]);
    }
    const remove = [...snapshot.keys()].filter((field) => !next.has(field));
    return { set, remove, snapshot: next };
  },
};

/**
 * A top-level state property becomes a hash field of that name, so it must survive the trip: a
 * lone surrogate would come back as U+FFFD (Redis stores UTF-8), and names starting with `~` are
 * the runtime's own (a pack's progress, an event-sourced snapshot's sequence and version).
 */
function checkFieldName(field: string, grain: string): void {
  const shown = JSON.stringify(field.slice(0, 100));
  if (field.startsWith(RESERVED_FIELD_PREFIX)) {
    throw new SerializationError(`state field ${shown} of ${grain}`, `names starting with "${RESERVED_FIELD_PREFIX}" are reserved`);
  }
  if (!field.isWellFormed()) {
    throw new SerializationError(
      `state field ${shown} of ${grain}`,
      'a state property name must be well-formed UTF-16 (it has a lone surrogate)',
    );
  }
}

/** Hash fields the runtime keeps beside a grain's state start with this; state properties may not. */
export const RESERVED_FIELD_PREFIX = '~';

/** Assigns without invoking setters, so a field named `__proto__` stays data, not a prototype. */
function defineField(target: Record<string, unknown>, field: string, value: unknown): void {
  Object.defineProperty(target, field, { value, writable: true, enumerable: true, configurable: true });
}
