import { describeError } from '../errors/errors.ts';
import {
  EventRecorder,
  SNAPSHOT_SEQ_FIELD,
  SNAPSHOT_VERSION_FIELD,
  type EventRange,
  type EventSourcedGrain,
  type EventSourcing,
} from '../grain/event-sourced.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { Grain } from '../grain/grain.ts';
import { deserialize } from '../messaging/serializer.ts';
import { decodeEvent, journalEnd, readJournal, replayJournal } from '../storage/event-journal.ts';
import { GrainStateCodec, type StateSnapshot } from '../storage/grain-state.ts';
import type { ActivationHost } from './activation-host.ts';

/*
 * Activating an event-sourced grain: its state is the snapshot in its state hash (fields as any
 * grain's, plus the event it covers up to and its version) and the journal's events after it,
 * replayed through `apply`. A snapshot that cannot be used (it does not deserialize, or was
 * written with another `snapshotVersion`) is set aside and the whole journal is replayed, which
 * is possible as long as its events are all kept.
 */

/** The recorder of one activation of an event-sourced grain, reading its journal from Redis. */
export function newEventRecorder(id: GrainId, config: EventSourcing, host: ActivationHost): EventRecorder {
  const key = host.keys.journal(id);
  return new EventRecorder(id.type, config, (range: EventRange) => readJournal(host.redis, key, config, range));
}

/** What the stored snapshot says about itself: the event it covers up to, or why it is not usable. */
function snapshotHeader(fields: Record<string, string>, config: EventSourcing): { seq: number } | { unusable: string; seq?: number } {
  const seqText = fields[SNAPSHOT_SEQ_FIELD];
  // State written before the class was event-sourced (no snapshot header): its base, at event 0.
  if (seqText === undefined) return { seq: 0 };
  let seq: unknown;
  let version: unknown;
  try {
    seq = deserialize(seqText);
    version = deserialize(fields[SNAPSHOT_VERSION_FIELD] ?? '');
  } catch (error) {
    return { unusable: `its header cannot be read (${describeError(error)})` };
  }
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return { unusable: `its event number ${JSON.stringify(seq)} is not one` };
  if (typeof version === 'number' && version > config.snapshotVersion) {
    // Written by a newer version of the class: replaying with this one would overwrite it.
    throw new Error(`its snapshot has snapshotVersion ${version}, newer than the class's ${config.snapshotVersion}`);
  }
  if (version !== config.snapshotVersion) {
    return {
      unusable: `it was written with snapshotVersion ${JSON.stringify(version)}, the class is at ${config.snapshotVersion}`,
      seq: seq as number,
    };
  }
  return { seq: seq as number };
}

/**
 * Builds an event-sourced grain's state from its snapshot and journal; returns the committed
 * state's serialized fields (what a failed turn rolls back to). Redis failures while reading the
 * journal are thrown as JournalReadFailure; anything else is the grain's own (its data or code).
 */
export async function loadEventSourced(
  id: GrainId,
  grain: Grain<object>,
  recorder: EventRecorder,
  fields: Record<string, string>,
  host: ActivationHost,
): Promise<StateSnapshot> {
  const config = recorder.config;
  const stateFields: Record<string, string> = {};
  for (const [field, text] of Object.entries(fields)) {
    if (field !== SNAPSHOT_SEQ_FIELD && field !== SNAPSHOT_VERSION_FIELD) stateFields[field] = text;
  }
  const stored: StateSnapshot = new Map(Object.entries(stateFields));
  let header = snapshotHeader(fields, config);
  let loaded: { state: object; snapshot: StateSnapshot } | undefined;
  if (!('unusable' in header)) {
    try {
      loaded = GrainStateCodec.fromFields(stateFields, grain.initialState());
    } catch (error) {
      header = { unusable: describeError(error), seq: header.seq };
    }
  }
  let from = 0;
  if (loaded !== undefined && !('unusable' in header)) {
    grain.state = loaded.state;
    from = header.seq;
  } else {
    host.log.warn('the snapshot of an event-sourced grain cannot be used; replaying its whole journal', {
      grain: id.toString(),
      reason: 'unusable' in header ? header.unusable : 'unknown',
    });
    grain.state = grain.initialState();
    recorder.snapshotStale = true;
  }
  const es = grain as EventSourcedGrain<object, { type: string }>;
  const last = await replayJournal(host.redis, host.keys.journal(id), from + 1, (page) => {
    for (const event of page) {
      const decoded = decodeEvent(event, config);
      try {
        es.state = es.apply(es.state, decoded);
      } catch (error) {
        throw new Error(`applying event ${event.seq} (${decoded.type}) failed: ${describeError(error)}`, { cause: error });
      }
    }
  });
  // The journal must end where the state now stands; otherwise events were lost (or written by
  // someone else), and every commit would be refused: fail the activation instead.
  const end = await journalEnd(host.redis, host.keys.journal(id));
  if (end !== last) {
    throw new Error(`the journal ends at event ${end}, but its snapshot and events reach event ${last}: events are missing`);
  }
  if (recorder.snapshotStale && 'unusable' in header && header.seq !== undefined && last < header.seq) {
    throw new Error(
      `the snapshot at event ${header.seq} cannot be used (${header.unusable}) and the journal ends at event ${last}: the events it covers were trimmed (journalRetention 'snapshot')`,
    );
  }
  recorder.committedSeq = last;
  recorder.snapshotSeq = recorder.snapshotStale ? 0 : from;
  recorder.snapshotFields = stored;
  recorder.attach(grain);
  if (last > from) host.log.debug('replayed events', { grain: id.toString(), from: from + 1, to: last });
  // The state as committed, serialized: unchanged from the snapshot when no event followed it.
  if (loaded !== undefined && !recorder.snapshotStale && last === from) return loaded.snapshot;
  return GrainStateCodec.diff(new Map(), grain.state, id.toString()).snapshot;
}
