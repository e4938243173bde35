import { GrainId } from '../grain/grain-id.ts';

/*
 * A wake-up, as it sits in a silo's inbox, the taking list and a type's pending list: the grain's
 * tag, marked `!<tag>` when the owner should first take back messages a stale activation released,
 * or `+<json>` when it carries the grain's only waiting message (see `CarriedMessage`). Every
 * reader and writer of those lists goes through these functions (wakeOwner-3.lua writes the
 * carrying form).
 */

/** Prefix of an entry asking the owner to take back released messages first. */
const RECOVER_MARK = '!';
/** Prefix of an entry that carries the message it wakes the grain for. */
const CARRY_MARK = '+';

/** The largest job data a wake-up carries (bytes): larger messages are read by the take. */
export const CARRIED_DATA_BYTES = 8_192;

/**
 * The message a wake-up carries: at the time of the enqueue, the only message in the grain's
 * mailbox (nothing else waiting, nothing taken) and never started, sent while the activation of
 * `epoch` owned the grain. Its job's id, name and data as BullMQ stores them.
 */
export interface CarriedMessage {
  epoch: string;
  jobId: string;
  name: string;
  data: string;
}

/** The inbox entry that wakes `grain` (given by id or tag). */
export function encodeWakeEntry(grain: GrainId | string, recover = false): string {
  const tag = typeof grain === 'string' ? grain : grain.tag;
  return recover ? `${RECOVER_MARK}${tag}` : tag;
}

/**
 * Reads an inbox entry. A tag in the form older versions wrote comes back in the current one,
 * which activations are keyed by; a malformed one comes back as it is, for `GrainId.fromTag` to
 * refuse. `raw` is the tag as the entry holds it. A carrying entry that is not exactly what
 * wakeOwner-3.lua writes carries nothing (its tag, when it has one, is still woken).
 */
export function parseWakeEntry(entry: string): { tag: string; raw: string; recover: boolean; carried?: CarriedMessage } {
  if (entry.startsWith(CARRY_MARK)) return parseCarrying(entry);
  const recover = entry.startsWith(RECOVER_MARK);
  const raw = recover ? entry.slice(RECOVER_MARK.length) : entry;
  return { tag: GrainId.isLegacyTag(raw) ? GrainId.fromTag(raw).tag : raw, raw, recover };
}

/** The longest carrying entry read: its data at most CARRIED_DATA_BYTES, escaped, and the rest. */
const LONGEST_CARRYING_ENTRY = 8 * CARRIED_DATA_BYTES;

function parseCarrying(entry: string): { tag: string; raw: string; recover: boolean; carried?: CarriedMessage } {
  if (entry.length > LONGEST_CARRYING_ENTRY) return { tag: entry, raw: entry, recover: false };
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(entry.slice(CARRY_MARK.length)) as Record<string, unknown>;
  } catch {
    return { tag: entry, raw: entry, recover: false };
  }
  const { e, j, t, n, d } = fields ?? {};
  if (typeof t !== 'string') return { tag: entry, raw: entry, recover: false };
  const plain = { tag: GrainId.isLegacyTag(t) ? GrainId.fromTag(t).tag : t, raw: t, recover: false };
  if (typeof e !== 'string' || typeof j !== 'string' || typeof n !== 'string' || typeof d !== 'string' || !/^[1-9]\d{0,15}$/.test(j)) {
    return plain;
  }
  return { ...plain, carried: { epoch: e, jobId: j, name: n, data: d } };
}
