import { contextOf, Grain } from './grain.ts';
import type { GrainReference } from '../client/grain-reference.ts';

/**
 * What a saga's step message carries as its last argument: which saga, which step, and whether
 * it asks for the step (`do`) or for its compensation (`undo`). A participant answers it with
 * `replyToSaga(this, request, outcome)`.
 */
export interface SagaRequest {
  sagaType: string;
  sagaKey: string;
  step: string;
  phase: 'do' | 'undo';
}

/** A participant's answer to a step: done (with a value), or failed (with a reason). */
export type SagaOutcome = { ok: true; value?: unknown } | { ok: false; reason: string };

/** Where a saga stands. */
export type SagaStatus = 'idle' | 'running' | 'completed' | 'compensating' | 'compensated' | 'compensationFailed';

/** One step of a saga as it keeps it in its state. */
export interface SagaStepRecord {
  name: string;
  type: string;
  key: string;
  method: string;
  args: unknown[];
  compensate?: { method: string; args: unknown[] };
  status: 'waiting' | 'sent' | 'done' | 'failed' | 'compensating' | 'compensated' | 'compensationFailed';
  value?: unknown;
  reason?: string;
  /** It had not replied when the saga timed out (a late `done` is still undone). */
  timedOut?: boolean;
}

/** The saga's progress, persisted in its state (`state.saga`) with every turn. */
export interface SagaProgress {
  status: SagaStatus;
  mode: 'parallel' | 'sequence';
  steps: SagaStepRecord[];
  /** Why the saga compensates: the first step that failed (or timed out). */
  failure?: string;
}

export interface SagaState {
  saga: SagaProgress;
}

/** The handlers of G whose last parameter is a SagaRequest: the ones a saga step can call. */
export type SagaHandlerName<G> = {
  [K in keyof G]-?: K extends string ? (G[K] extends (...args: [...infer _A, SagaRequest]) => Promise<unknown> ? K : never) : never;
}[keyof G];

type StepArgs<G, M> = M extends keyof G ? (G[M] extends (...args: [...infer A, SagaRequest]) => Promise<unknown> ? A : never) : never;

/** A step as a saga declares it: a message to a participant, and how to undo it. */
export interface SagaStep {
  readonly name: string;
  readonly type: string;
  readonly key: string;
  readonly method: string;
  readonly args: unknown[];
  readonly compensate?: { method: string; args: unknown[] };
}

/**
 * Declares a saga step, type-checked against the participant: `method` takes `args` and then the
 * SagaRequest; `compensate` names the handler that undoes it.
 */
export function sagaStep<G extends Grain<object>, M extends SagaHandlerName<G>, C extends SagaHandlerName<G>>(
  name: string,
  participant: GrainReference<G>,
  method: M,
  args: StepArgs<G, M>,
  compensate?: { method: C; args: StepArgs<G, C> },
): SagaStep {
  return {
    name,
    type: participant.id.type,
    key: participant.id.key,
    method,
    args: [...(args as unknown[])],
    ...(compensate === undefined ? {} : { compensate: { method: compensate.method, args: [...(compensate.args as unknown[])] } }),
  };
}

/** Answers a saga's step request from a participant's handler (through its outbox: exactly once). */
export function replyToSaga(participant: Grain<object>, request: SagaRequest, outcome: SagaOutcome): Promise<void> {
  return contextOf(participant).sendTo(request.sagaType, request.sagaKey, 'sagaReplied', [request.step, request.phase, outcome]);
}

const TIMEOUT_REMINDER = 'saga-timeout';

/**
 * A process manager: it sends its steps as messages (all at once, or one after another), takes
 * the participants' replies as messages (`sagaReplied`), keeps its progress in `state.saga`, and
 * on a failure or a timeout runs the compensations of the steps that completed, in reverse order,
 * one at a time. Every step and compensation goes out through the outbox, so each reaches its
 * participant exactly once. Override `sagaCompleted` / `sagaCompensated` to act on the end.
 */
export abstract class SagaGrain<TState extends SagaState> extends Grain<TState> {
  /** Starts the saga's steps; `timeoutMs` bounds the wait for their replies (a durable reminder). */
  protected async startSaga(
    steps: readonly SagaStep[],
    options: { mode?: 'parallel' | 'sequence'; timeoutMs?: number } = {},
  ): Promise<void> {
    if (this.state.saga.status !== 'idle') throw new Error(`saga ${this.key} has already started (${this.state.saga.status})`);
    if (steps.length === 0) throw new TypeError('a saga needs at least one step');
    const names = new Set(steps.map((step) => step.name));
    if (names.size !== steps.length) throw new TypeError('saga step names must be unique');
    const mode = options.mode ?? 'parallel';
    if (mode !== 'parallel' && mode !== 'sequence')
      throw new TypeError(`a saga's mode is 'parallel' or 'sequence', got ${JSON.stringify(mode)}`);
    this.state.saga = { status: 'running', mode, steps: steps.map((step) => ({ ...step, args: [...step.args], status: 'waiting' })) };
    for (const step of mode === 'parallel' ? this.state.saga.steps : this.state.saga.steps.slice(0, 1)) await this.#send(step, 'do');
    if (options.timeoutMs !== undefined) {
      await contextOf(this).remind(TIMEOUT_REMINDER, { after: options.timeoutMs }, 'sagaTimedOut', []);
    }
  }

  /** A participant's reply to a step or a compensation. */
  async sagaReplied(stepName: string, phase: 'do' | 'undo', outcome: SagaOutcome): Promise<void> {
    const saga = this.state.saga;
    const step = saga.steps.find((s) => s.name === stepName);
    if (step === undefined) return;
    if (phase === 'undo') {
      if (step.status !== 'compensating') return;
      // A compensation that failed is kept as such, with its reason: the saga goes on undoing the
      // others, and ends as compensationFailed, for someone to look at.
      if (outcome.ok) step.status = 'compensated';
      else {
        step.status = 'compensationFailed';
        step.reason = outcome.reason;
      }
      if (saga.status === 'compensating') await this.#compensateNext();
      return;
    }
    const late = step.status === 'failed' && step.timedOut === true;
    if (step.status !== 'sent' && !late) return; // a duplicate, or a step not asked for
    if (late) {
      // It timed out, yet did its work: undo it, whatever the saga's state now.
      if (!outcome.ok) return;
      step.status = 'done';
      if (outcome.value !== undefined) step.value = outcome.value;
      if (saga.status === 'compensated' && step.compensate !== undefined) {
        step.status = 'compensating';
        await this.#send(step, 'undo');
      } else if (saga.status === 'compensated') {
        step.status = 'compensated';
      } else {
        await this.#compensateNext();
      }
      return;
    }
    if (outcome.ok) {
      step.status = 'done';
      if (outcome.value !== undefined) step.value = outcome.value;
    } else {
      step.status = 'failed';
      step.reason = outcome.reason;
    }
    if (saga.status === 'compensating') {
      // Done after the saga began to undo: undo it too.
      await this.#compensateNext();
      return;
    }
    if (!outcome.ok) {
      await this.#beginCompensation(`${step.name}: ${outcome.reason}`);
      return;
    }
    const next = saga.steps.find((s) => s.status === 'waiting');
    if (next !== undefined) {
      await this.#send(next, 'do');
      return;
    }
    if (saga.steps.every((s) => s.status === 'done')) {
      saga.status = 'completed';
      await contextOf(this).forget(TIMEOUT_REMINDER);
      await this.sagaCompleted();
    }
  }

  /** The saga's timeout: steps that have not replied count as failed. */
  async sagaTimedOut(): Promise<void> {
    const saga = this.state.saga;
    if (saga.status !== 'running') return;
    const late = saga.steps.filter((s) => s.status === 'sent' || s.status === 'waiting');
    for (const step of late) {
      step.timedOut = step.status === 'sent';
      step.status = 'failed';
      step.reason = 'timed out';
    }
    await this.#beginCompensation(`timed out waiting for ${late.map((s) => s.name).join(', ')}`);
  }

  /** Called once when every step is done (override it). */
  protected async sagaCompleted(): Promise<void> {}

  /** Called once when every completed step is undone after a failure (override it). */
  protected async sagaCompensated(): Promise<void> {}

  /**
   * Called once, instead of `sagaCompensated`, when every compensation has answered and one or
   * more of them failed (their steps say `compensationFailed`, with the reason): the saga could
   * not undo everything, and needs a person or a later fix (override it).
   */
  protected async sagaCompensationFailed(): Promise<void> {}

  async #beginCompensation(failure: string): Promise<void> {
    const saga = this.state.saga;
    saga.status = 'compensating';
    saga.failure = failure;
    await contextOf(this).forget(TIMEOUT_REMINDER);
    await this.#compensateNext();
  }

  /** Undoes the last completed step not undone yet; ends the saga when none is left. */
  async #compensateNext(): Promise<void> {
    const saga = this.state.saga;
    if (saga.status !== 'compensating' || saga.steps.some((s) => s.status === 'compensating')) return;
    const done = saga.steps.filter((s) => s.status === 'done');
    const last = done.at(-1);
    if (last !== undefined) {
      if (last.compensate === undefined) {
        last.status = 'compensated';
        await this.#compensateNext();
        return;
      }
      last.status = 'compensating';
      await this.#send(last, 'undo');
      return;
    }
    // Nothing left to undo; a step still out may yet reply done, and is undone then.
    if (saga.steps.some((s) => s.status === 'sent')) return;
    if (saga.steps.some((s) => s.status === 'compensationFailed')) {
      saga.status = 'compensationFailed';
      await this.sagaCompensationFailed();
      return;
    }
    saga.status = 'compensated';
    await this.sagaCompensated();
  }

  async #send(step: SagaStepRecord, phase: 'do' | 'undo'): Promise<void> {
    const request: SagaRequest = {
      sagaType: (this.constructor as unknown as { type: string }).type,
      sagaKey: this.key,
      step: step.name,
      phase,
    };
    if (phase === 'do') step.status = 'sent';
    const { method, args } = phase === 'do' ? step : (step.compensate as { method: string; args: unknown[] });
    await contextOf(this).sendTo(step.type, step.key, method, [...args, request]);
  }
}

/** A fresh saga's progress, for `initialState`. */
export function idleSaga(): SagaProgress {
  return { status: 'idle', mode: 'parallel', steps: [] };
}
