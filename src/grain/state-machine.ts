import { InvalidGrainClassError, InvalidMessageForStateError } from '../errors/errors.ts';
import { Grain, type HandlerName } from './grain.ts';

/** One recorded transition of a state-machine grain. */
export interface Transition<S extends string = string> {
  from: S;
  to: S;
  /** The handler (message) that made it. */
  message: string;
  /** Who asked for it, when the handler said so (`this.actedBy(...)`). */
  actor?: string;
  correlationId: string;
  /** OpenTelemetry trace id of the message (empty when tracing is off). */
  traceId: string;
  at: Date;
}

/** The part of a state-machine grain's state the runtime keeps: where it is, and how it got there. */
export interface MachineState<S extends string = string> {
  status: S;
  history: Transition<S>[];
}

/**
 * A state machine as a grain class declares it (`static readonly machine = stateMachine<G>()({...})`):
 * its initial state, and for each state the messages (handlers) it accepts and where each leads
 * (one state, or the states the handler picks from with `this.moveTo`). Handlers the machine names
 * nowhere (reads such as `get`) are accepted in every state and change no state.
 */
export interface MachineDefinition<S extends string = string, M extends string = string> {
  readonly initial: S;
  readonly states: { readonly [K in S]: { readonly [H in M]?: S | readonly S[] } };
  /** States the grain never leaves (no transitions out of them). */
  readonly terminal?: readonly S[];
}

/**
 * Declares the state machine of grain class `G`, checked by the compiler: every state a message
 * leads to is declared, and every message is a handler of `G`.
 *
 * ```ts
 * static readonly machine = stateMachine<Campaign>()({
 *   initial: 'EMPTY',
 *   states: { EMPTY: { create: 'PENDING' }, PENDING: { cancel: 'CANCELLED' }, CANCELLED: {} },
 *   terminal: ['CANCELLED'],
 * });
 * ```
 */
export function stateMachine<G>() {
  return <const S extends string>(definition: {
    readonly initial: NoInfer<S>;
    readonly states: { readonly [K in S]: { readonly [H in HandlerName<G>]?: NoInfer<S> | readonly NoInfer<S>[] } };
    readonly terminal?: readonly NoInfer<S>[];
  }): MachineDefinition<S, HandlerName<G>> => definition;
}

/** What a handler of a state-machine grain said about the transition in progress. */
interface Choice {
  to?: string;
  actor?: string;
}

const choices = new WeakMap<object, Choice>();

/**
 * A grain whose messages are routed by a state machine (`static readonly machine`): the runtime
 * refuses a message the current state does not accept with InvalidMessageForStateError before
 * the handler runs, and once the handler has succeeded moves `state.status` and appends the
 * transition to `state.history` (from, to, message, actor, correlation id, trace id, time), in
 * the same commit as the handler's other changes. A handler that throws moves nothing.
 */
export abstract class StateMachineGrain<TState extends MachineState> extends Grain<TState> {
  /** Picks where the message being handled leads, among the states its declaration allows. */
  protected moveTo(state: TState['status']): void {
    choices.set(this, { ...choices.get(this), to: state });
  }

  /** Records who asked for the transition being made (a user, `system`, ...). */
  protected actedBy(actor: string): void {
    choices.set(this, { ...choices.get(this), actor });
  }
}

/** A message accepted by the machine, about to run: where it starts and where it may lead. */
export interface PendingTransition {
  from: string;
  targets: readonly string[];
}

/** The states `method` may lead to from `from`, or undefined when the machine does not route it. */
function routes(machine: MachineDefinition, from: string, method: string): readonly string[] | 'refused' | undefined {
  const states = machine.states as Record<string, Record<string, string | readonly string[] | undefined>>;
  const target = states[from]?.[method];
  if (target !== undefined) return typeof target === 'string' ? [target] : target;
  return Object.values(states).some((accepts) => accepts[method] !== undefined) ? 'refused' : undefined;
}

/**
 * Before a handler runs: refuses the message when the grain's current state does not accept it
 * (InvalidMessageForStateError), else returns the transition it starts (undefined for a message
 * the machine does not route).
 */
export function acceptMessage(
  typeName: string,
  machine: MachineDefinition,
  grain: Grain<object>,
  method: string,
): PendingTransition | undefined {
  const state = grain.state as Partial<MachineState>;
  const from = typeof state.status === 'string' ? state.status : machine.initial;
  const targets = routes(machine, from, method);
  if (targets === undefined) return undefined;
  if (targets === 'refused') throw new InvalidMessageForStateError(typeName, from, method);
  choices.delete(grain);
  return { from, targets };
}

/** After the handler succeeded: moves the state and records the transition. */
export function completeTransition(
  typeName: string,
  grain: Grain<object>,
  pending: PendingTransition,
  method: string,
  trace: { correlationId: string; traceId: string },
): void {
  const choice = choices.get(grain) ?? {};
  choices.delete(grain);
  let to: string;
  if (choice.to !== undefined) {
    if (!pending.targets.includes(choice.to)) {
      throw new TypeError(`${typeName}.${method} leads from ${pending.from} to ${pending.targets.join(' or ')}, not to ${choice.to}`);
    }
    to = choice.to;
  } else if (pending.targets.length === 1) {
    to = pending.targets[0] as string;
  } else {
    throw new TypeError(
      `${typeName}.${method} leads from ${pending.from} to ${pending.targets.join(' or ')}: pick one with this.moveTo(...)`,
    );
  }
  const state = grain.state as Partial<MachineState>;
  state.status = to;
  const history = Array.isArray(state.history) ? state.history : (state.history = []);
  history.push({
    from: pending.from,
    to,
    message: method,
    ...(choice.actor === undefined ? {} : { actor: choice.actor }),
    correlationId: trace.correlationId,
    traceId: trace.traceId,
    at: new Date(),
  });
}

/**
 * Takes note of a machine grain's `status` and `history` before its handler runs; the returned
 * check throws when the handler wrote either (the runtime keeps both: a status written by hand
 * would skip the machine, and one it does not declare would leave every routed message refused).
 */
export function guardMachineFields(typeName: string, grain: Grain<object>, method: string): () => void {
  const state = grain.state as Partial<MachineState>;
  const { status, history } = state;
  const length = Array.isArray(history) ? history.length : 0;
  return () => {
    const now = grain.state as Partial<MachineState>;
    const historyNow = now.history;
    if (now.status !== status || historyNow !== history || (Array.isArray(historyNow) ? historyNow.length : 0) !== length) {
      throw new TypeError(
        `${typeName}.${method} wrote state.status or state.history, which the runtime keeps: declare the transition in the machine instead`,
      );
    }
  };
}

/** Forgets what a failed handler picked. */
export function abandonTransition(grain: Grain<object>): void {
  choices.delete(grain);
}

/** Checks a class's machine when the type is registered: states, targets and handlers must agree. */
export function validateMachine(typeName: string, machine: unknown, handlers: ReadonlySet<string>): MachineDefinition | undefined {
  if (machine === undefined) return undefined;
  const fail = (why: string): never => {
    throw new InvalidGrainClassError(`${typeName}.machine: ${why}`);
  };
  if (typeof machine !== 'object' || machine === null) return fail('must be a state machine declaration (stateMachine<G>()({ ... }))');
  const { initial, states, terminal } = machine as Partial<MachineDefinition>;
  if (typeof states !== 'object' || states === null) return fail('needs states');
  const names = new Set(Object.keys(states));
  if (typeof initial !== 'string' || !names.has(initial)) fail(`the initial state ${JSON.stringify(initial)} is not declared`);
  for (const [state, accepts] of Object.entries(states as Record<string, Record<string, unknown>>)) {
    for (const [method, target] of Object.entries(accepts ?? {})) {
      if (!handlers.has(method)) fail(`${state} accepts "${method}", which is not a handler of the class`);
      const targets = typeof target === 'string' ? [target] : Array.isArray(target) ? (target as unknown[]) : [target];
      if (targets.length === 0) fail(`${state}.${method} leads nowhere`);
      for (const to of targets)
        if (typeof to !== 'string' || !names.has(to)) fail(`${state}.${method} leads to ${JSON.stringify(to)}, which is not declared`);
    }
  }
  for (const state of terminal ?? []) {
    if (!names.has(state)) fail(`terminal state ${JSON.stringify(state)} is not declared`);
    if (Object.keys((states as Record<string, object>)[state] ?? {}).length > 0) fail(`terminal state ${state} accepts messages`);
  }
  return machine as MachineDefinition;
}

/** The machine as a Mermaid `stateDiagram-v2`. */
export function mermaidDiagram(machine: MachineDefinition): string {
  const states = machine.states as Record<string, Record<string, string | readonly string[]>>;
  // A state named otherwise than a plain identifier (spaces, '-->', ':') is drawn by an alias
  // that carries its name, so the diagram stays valid Mermaid.
  const aliases = new Map<string, string>();
  const declared: string[] = [];
  const node = (state: string): string => {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(state)) return state;
    let alias = aliases.get(state);
    if (alias === undefined) {
      alias = `s${aliases.size}`;
      aliases.set(state, alias);
      declared.push(`  state "${state.replaceAll('"', '#quot;').replaceAll('\n', ' ')}" as ${alias}`);
    }
    return alias;
  };
  const edges = [`  [*] --> ${node(machine.initial)}`];
  for (const [state, accepts] of Object.entries(states)) {
    for (const [method, target] of Object.entries(accepts)) {
      for (const to of typeof target === 'string' ? [target] : target) edges.push(`  ${node(state)} --> ${node(to)}: ${method}`);
    }
  }
  for (const state of machine.terminal ?? []) edges.push(`  ${node(state)} --> [*]`);
  return `${['stateDiagram-v2', ...declared, ...edges].join('\n')}\n`;
}
