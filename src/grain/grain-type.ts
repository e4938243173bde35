import { InvalidGrainClassError } from '../errors/errors.ts';
import { validateImplicitSubscriptions, type ImplicitSubscription } from '../pubsub/subscription-table.ts';
import { MAX_METHOD_NAME_LENGTH } from '../messaging/envelope.ts';
import { Grain, type GrainClass, type MailboxLimits } from './grain.ts';
import { validateMachine, type MachineDefinition } from './state-machine.ts';
import { eventSourcingOf, type EventSourcing } from './event-sourced.ts';

const LIFECYCLE = new Set(['constructor', 'initialState', 'onActivate', 'onDeactivate', 'getGrain']);

/** What the runtime knows about one grain class: its name, its handlers and its collection age. */
export interface GrainType {
  readonly name: string;
  readonly cls: GrainClass;
  readonly handlers: ReadonlySet<string>;
  readonly collectionAgeMs: number | undefined;
  readonly implicitSubscriptions: readonly ImplicitSubscription[];
  /** The state machine routing the type's messages, when the class declares one. */
  readonly machine: MachineDefinition | undefined;
  /** The journal and snapshot settings of an event-sourced type (see EventSourcedGrain). */
  readonly eventSourcing: EventSourcing | undefined;
  /** The handlers the class declares read-only (see `readOnly`). */
  readonly readOnly: ReadonlySet<string>;
}

/** Reads and validates the stable type name a grain class declares. */
export function grainTypeName(cls: unknown): string {
  if (typeof cls !== 'function' || !(cls.prototype instanceof Grain)) {
    throw new InvalidGrainClassError(`${describe(cls)} is not a class extending Grain`);
  }
  const name = (cls as { type?: unknown }).type;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    throw new InvalidGrainClassError(`Grain class ${cls.name} must declare a stable type name: static readonly type = '${cls.name}'`);
  }
  return name;
}

/** The mailbox bound a grain class declares (validated), or undefined for none. */
export function mailboxLimits(cls: GrainClass): Required<MailboxLimits> | undefined {
  const limits = cls.mailbox;
  if (limits === undefined) return undefined;
  const overflow = limits.overflow ?? 'reject';
  if (!Number.isInteger(limits.maxDepth) || limits.maxDepth <= 0 || (overflow !== 'reject' && overflow !== 'drop-oldest')) {
    throw new InvalidGrainClassError(
      `Grain class ${cls.name}: static mailbox must be { maxDepth: <positive integer>, overflow?: 'reject' | 'drop-oldest' }, got ${JSON.stringify(limits)}`,
    );
  }
  return { maxDepth: limits.maxDepth, overflow };
}

const AsyncFunction = (async () => undefined).constructor;
const handlerCache = new WeakMap<GrainClass, ReadonlySet<string>>();

/**
 * The one definition of a handler, for the runtime, the client and (as closely as types can say
 * it) `HandlerName`: a method declared `async` on the class's own prototype chain below Grain,
 * except the lifecycle hooks and names starting with `_` (TypeScript's `private` does not exist at
 * run time, so `_` is how a class keeps a helper method from being called as a message).
 * Synchronous methods, getters and fields are never handlers.
 */
export function handlerNames(cls: GrainClass): ReadonlySet<string> {
  const cached = handlerCache.get(cls);
  if (cached !== undefined) return cached;
  const handlers = new Set<string>();
  for (
    let proto: object | null = cls.prototype;
    proto !== null && proto !== Grain.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (LIFECYCLE.has(key) || key.startsWith('_') || key.length > MAX_METHOD_NAME_LENGTH) continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, key);
      if (descriptor !== undefined && descriptor.value instanceof AsyncFunction) handlers.add(key);
    }
  }
  handlerCache.set(cls, handlers);
  return handlers;
}

/** Describes a grain class: its type name, its handlers (see `handlerNames`) and its options. */
export function describeGrainType(cls: GrainClass): GrainType {
  const name = grainTypeName(cls);
  const handlers = handlerNames(cls);
  const age = cls.collectionAgeMs;
  if (age !== undefined && (!Number.isFinite(age) || age <= 0)) {
    throw new InvalidGrainClassError(`${name}.collectionAgeMs must be a positive number of milliseconds`);
  }
  mailboxLimits(cls);
  const implicitSubscriptions = validateImplicitSubscriptions(name, handlers, cls.implicitSubscriptions);
  const machine = validateMachine(name, cls.machine, handlers);
  const eventSourcing = eventSourcingOf(name, cls);
  const readOnly = readOnlyHandlers(cls);
  const states = Object.values((machine?.states ?? {}) as Record<string, Record<string, unknown>>);
  for (const method of readOnly) {
    const moves = states.some((accepts) => method in accepts);
    if (moves) throw new InvalidGrainClassError(`${name}.${method} is read-only, so it cannot be a transition of the state machine`);
  }
  return { name, cls, handlers, collectionAgeMs: age, implicitSubscriptions, machine, eventSourcing, readOnly };
}

const readOnlyCache = new WeakMap<GrainClass, ReadonlySet<string>>();

/** The handlers a grain class declares read-only (`static readonly readOnly = readOnly<G>(...)`), checked. */
export function readOnlyHandlers(cls: GrainClass): ReadonlySet<string> {
  const cached = readOnlyCache.get(cls);
  if (cached !== undefined) return cached;
  const declared: unknown = cls.readOnly;
  const name = grainTypeName(cls);
  if (declared !== undefined && !Array.isArray(declared))
    throw new InvalidGrainClassError(`${name}.readOnly must be a list of handler names`);
  const handlers = handlerNames(cls);
  const readOnly = new Set<string>();
  for (const method of (declared ?? []) as unknown[]) {
    if (typeof method !== 'string' || !handlers.has(method)) {
      throw new InvalidGrainClassError(`${name}.readOnly names ${JSON.stringify(method)}, which is not a handler of the class`);
    }
    readOnly.add(method);
  }
  readOnlyCache.set(cls, readOnly);
  return readOnly;
}

/** The grain types one silo hosts, by their stable names. */
export class GrainTypeRegistry {
  readonly #types = new Map<string, GrainType>();

  constructor(classes: readonly GrainClass[]) {
    for (const cls of classes) {
      const type = describeGrainType(cls);
      const existing = this.#types.get(type.name);
      if (existing !== undefined && existing.cls !== cls) {
        throw new InvalidGrainClassError(
          `Grain type name "${type.name}" is declared by two classes (${existing.cls.name} and ${cls.name})`,
        );
      }
      this.#types.set(type.name, type);
    }
  }

  get(name: string): GrainType | undefined {
    return this.#types.get(name);
  }

  names(): string[] {
    return [...this.#types.keys()];
  }
}

function describe(value: unknown): string {
  return typeof value === 'function' ? value.name || 'anonymous function' : String(value);
}
