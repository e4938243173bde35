import { GrainId } from '../grain/grain-id.ts';

/*
 * A wake-up, as it sits in a silo's inbox, the taking list and a type's pending list: the grain's
 * tag, marked `!<tag>` when the owner should first take back messages a stale activation released.
 * Every reader and writer of those lists goes through these two functions.
 */

/** Prefix of an entry asking the owner to take back released messages first. */
const RECOVER_MARK = '!';

/** The inbox entry that wakes `grain` (given by id or tag). */
export function encodeWakeEntry(grain: GrainId | string, recover = false): string {
  const tag = typeof grain === 'string' ? grain : grain.tag;
  return recover ? `${RECOVER_MARK}${tag}` : tag;
}

/**
 * Reads an inbox entry. A tag in the form older versions wrote comes back in the current one,
 * which activations are keyed by; a malformed one comes back as it is, for `GrainId.fromTag` to
 * refuse. `raw` is the tag as the entry holds it.
 */
export function parseWakeEntry(entry: string): { tag: string; raw: string; recover: boolean } {
  const recover = entry.startsWith(RECOVER_MARK);
  const raw = recover ? entry.slice(RECOVER_MARK.length) : entry;
  return { tag: GrainId.isLegacyTag(raw) ? GrainId.fromTag(raw).tag : raw, raw, recover };
}
