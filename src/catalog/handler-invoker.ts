import { MessageDeadLetteredError, PayloadTooLargeError, ReadOnlyHandlerError, UnknownMethodError } from '../errors/errors.ts';
import { errorToData } from '../errors/error-converter.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { GrainType } from '../grain/grain-type.ts';
import type { Grain } from '../grain/grain.ts';
import { abandonTransition, acceptMessage, completeTransition, guardMachineFields } from '../grain/state-machine.ts';
import { eventRecorderOf } from '../grain/event-sourced.ts';
import type { FinishOutcome, MailboxMessage } from '../mailbox/grain-mailbox.ts';
import type { IdempotentOutcome, MessageEnvelope, ReplyMessage } from '../messaging/envelope.ts';
import { deserialize, serialize } from '../messaging/serializer.ts';
import { GrainStateCodec, type StateChanges, type StateSnapshot } from '../storage/grain-state.ts';
import type { ActivationHost } from './activation-host.ts';

/*
 * Running a grain's handlers inside a turn: the handler call with its state rollback on failure,
 * the idempotency-key check, and setting aside a message that keeps killing its activation. The
 * activation owns the turn around them (taking, committing, acknowledging).
 */

/** What one turn produced: how to finish the message, the state changes, the reply. */
export type TurnResult = {
  outcome: FinishOutcome;
  changes: StateChanges | undefined;
  reply: ReplyMessage | undefined;
  /** What the handler threw (or why the message was refused). */
  error?: unknown;
  /** The outcome to keep for the message's idempotency key (first processing only). */
  idempotent?: { key: string; keepMs: number; outcome: IdempotentOutcome };
};

/** What a handler runs against. */
export interface HandlerTurn {
  id: GrainId;
  type: GrainType;
  host: ActivationHost;
  grain: Grain<object>;
  snapshot: StateSnapshot;
  correlationId: string;
  /** What the handler attempted and was refused (a read-only handler's send), awaited or not. */
  refused?: () => Error | undefined;
}

/**
 * Sets aside a message whose earlier attempts killed or hung the activation (each crash puts it
 * back at the head of the mailbox and counts an attempt), so the grain can go on.
 */
export async function deadLetter(
  id: GrainId,
  host: ActivationHost,
  message: Pick<MailboxMessage, 'jobId' | 'name' | 'data' | 'attemptsStarted'>,
  envelope: MessageEnvelope | undefined,
): Promise<TurnResult> {
  const attempts = message.attemptsStarted - 1;
  const method = envelope?.m ?? message.name;
  const reason = `its processing killed or hung the activation ${attempts} times`;
  await host.deadLetters.add({
    grainType: id.type,
    grainKey: id.key,
    method,
    reason,
    attempts,
    silo: host.siloId,
    message: message.data,
  });
  host.log.warn('dead-lettered a message', { grain: id.toString(), method, attempts, jobId: message.jobId });
  host.metrics.deadLettered(id.type, method);
  const error = new MessageDeadLetteredError(id.toString(), method, attempts);
  return {
    outcome: { target: 'failed', reason: `dead-lettered: ${reason}` },
    error,
    changes: undefined,
    reply: envelope?.r === undefined ? undefined : { i: envelope.r.i, ok: false, e: errorToData(error) },
  };
}

/**
 * Runs the message unless it carries an idempotency key whose outcome is kept: then the
 * handler does not run, and an `ask` gets the kept outcome. `decided` holds the outcomes of keys
 * met earlier in the same batch, not committed yet; this message's outcome is added to it.
 */
export async function runOnce(turn: HandlerTurn, envelope: MessageEnvelope, decided: Map<string, string>): Promise<TurnResult> {
  if (envelope.i === undefined) return run(turn, envelope);
  const key = turn.host.keys.idempotency(turn.id, envelope.i.k);
  const kept = decided.get(key) ?? (await turn.host.redis.get(key));
  if (kept !== null) {
    turn.host.log.debug('duplicate message not processed again', {
      grain: turn.id.toString(),
      method: envelope.m,
      idempotencyKey: envelope.i.k,
    });
    const outcome = JSON.parse(kept) as IdempotentOutcome;
    return { outcome: { target: 'completed' }, changes: undefined, reply: { i: envelope.r?.i ?? '', ...outcome } };
  }
  const result = await run(turn, envelope);
  if (result.reply === undefined) return result;
  const { i: _requestId, ...outcome } = result.reply;
  decided.set(key, JSON.stringify(outcome));
  return { ...result, idempotent: { key, keepMs: envelope.i.w, outcome } };
}

function run(turn: HandlerTurn, envelope: MessageEnvelope): Promise<TurnResult> {
  return invoke(
    turn,
    envelope.m,
    () => {
      const args = deserialize(envelope.a);
      if (!Array.isArray(args)) throw new TypeError('message arguments must be an array');
      return args;
    },
    // The value goes back to an `ask` caller, and is kept for later duplicates of an idempotent message.
    {
      requestId: envelope.r?.i ?? '',
      needValue: envelope.r !== undefined || envelope.i !== undefined,
      callerWaits: envelope.r !== undefined,
    },
  );
}

/** Runs one handler; a failure restores the state and becomes the turn's outcome. */
export async function invoke(
  turn: HandlerTurn,
  method: string,
  args: () => unknown[],
  { requestId, needValue, callerWaits }: { requestId: string; needValue: boolean; callerWaits: boolean },
): Promise<TurnResult> {
  const grain = turn.grain;
  // An event-sourced grain records the events its handler raises; a failure drops them.
  const events = eventRecorderOf(grain);
  events?.beginTurn();
  try {
    if (!turn.type.handlers.has(method)) throw new UnknownMethodError(turn.type.name, method);
    const handler = (grain as unknown as Record<string, (...a: unknown[]) => unknown>)[method] as (...a: unknown[]) => unknown;
    // A state machine refuses a message its current state does not accept before the handler runs.
    const { machine } = turn.type;
    const transition = machine === undefined ? undefined : acceptMessage(turn.type.name, machine, grain, method);
    const machineFieldsKept = machine === undefined ? undefined : guardMachineFields(turn.type.name, grain, method);
    // A read-only handler must leave the state as it found it (which a new grain has not committed yet).
    const found = turn.type.readOnly.has(method)
      ? GrainStateCodec.diff(turn.snapshot, grain.state, turn.id.toString()).snapshot
      : undefined;
    const value = await handler.apply(grain, args());
    const refused = turn.refused?.();
    if (refused !== undefined) throw refused;
    await events?.settle();
    machineFieldsKept?.();
    if (transition !== undefined) {
      const traceId = (grain as unknown as { traceId: string }).traceId;
      completeTransition(turn.type.name, grain, transition, method, { correlationId: turn.correlationId, traceId });
    }
    const text = needValue ? serializeReturnValue(value, `${turn.type.name}.${method}`, turn.host.maxPayloadBytes) : '';
    if (found !== undefined && changed(GrainStateCodec.diff(found, grain.state, turn.id.toString()))) {
      throw new ReadOnlyHandlerError(turn.type.name, method, 'change the state');
    }
    const changes = GrainStateCodec.diff(turn.snapshot, grain.state, turn.id.toString());
    events?.endTurn(true);
    return { outcome: { target: 'completed' }, changes, reply: { i: requestId, ok: true, v: text } };
  } catch (error) {
    events?.endTurn(false);
    abandonTransition(grain);
    grain.state = GrainStateCodec.restore(turn.snapshot, grain.initialState());
    const data = errorToData(error);
    if (!callerWaits) {
      turn.host.log.warn('handler failed', {
        grain: turn.id.toString(),
        method,
        correlationId: turn.correlationId,
        error: `${data.name}: ${data.message}`,
      });
    }
    return {
      outcome: { target: 'failed', reason: `${data.name}: ${data.message}` },
      error,
      changes: undefined,
      reply: { i: requestId, ok: false, e: data },
    };
  }
}

/**
 * A handler's return value as its reply carries it. A reply travels by pub/sub, whose buffers
 * Redis cuts off past a few MB (dropping every other reply on the caller's connection with it), so
 * one over `maxPayloadBytes` fails the call with PayloadTooLargeError, as arguments that large do.
 */
export function serializeReturnValue(value: unknown, handler: string, maxPayloadBytes: number): string {
  const text = serialize(value, `the return value of ${handler}`);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxPayloadBytes) throw new PayloadTooLargeError(`The return value of ${handler}`, bytes, maxPayloadBytes);
  return text;
}

/** Whether a diff changes anything. */
export function changed(changes: StateChanges): boolean {
  return changes.set.length > 0 || changes.remove.length > 0;
}
