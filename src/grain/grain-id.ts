import { InvalidGrainKeyError } from '../errors/errors.ts';

/** Longest grain key accepted, in UTF-16 code units; keys are part of every Redis key name. */
export const MAX_GRAIN_KEY_LENGTH = 512;

/** What encodeURIComponent leaves raw besides [A-Za-z0-9-._]; the tag escapes these too. */
const URI_MARKS = /[!'()*~]/g;

/** A tag both versions write alike: type and key of [A-Za-z0-9-._] only. */
const PLAIN_TAG = /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/;

/** One part of a tag as written now: only [A-Za-z0-9-._] and `~XX` escapes (UTF-8 bytes). */
const CANONICAL_PART = /^(?:[A-Za-z0-9._-]|~[0-9A-F]{2})+$/;

/**
 * The identity of a grain: its type name and its key. Nothing else addresses a grain.
 *
 * `tag` is the reversible, Redis-safe encoding used in key names, as the BullMQ queue name of the
 * grain's mailbox and as the Redis Cluster hash tag: the type and the key are percent-encoded
 * with `~` as the escape character instead of `%`, and joined with `/`. Only [A-Za-z0-9-._] stay
 * raw, so `:`, `{`, `}`, `/`, whitespace and control characters never appear, and neither does
 * `%`: a tag survives being URL-decoded any number of times (queue dashboards decode queue names
 * taken from URLs twice). Keys made only of [A-Za-z0-9-._] have the same tag as with the plain
 * percent-encoding older versions used, which `fromTag` still reads.
 */
export class GrainId {
  readonly tag: string;

  private constructor(
    readonly type: string,
    readonly key: string,
  ) {
    this.tag = `${encodeTagPart(type)}/${encodeTagPart(key)}`;
  }

  static of(type: string, key: string): GrainId {
    if (typeof key !== 'string' || key.length === 0) {
      throw new InvalidGrainKeyError(type, key, 'a grain key must be a non-empty string');
    }
    if (key.length > MAX_GRAIN_KEY_LENGTH) {
      throw new InvalidGrainKeyError(type, key, `a grain key must be at most ${MAX_GRAIN_KEY_LENGTH} characters`);
    }
    if (!key.isWellFormed()) {
      throw new InvalidGrainKeyError(type, key, 'a grain key must be well-formed UTF-16 (it has a lone surrogate)');
    }
    return new GrainId(type, key);
  }

  /**
   * The grain a tag names. Reads the tags written now and the `%`-encoded ones older versions
   * wrote (still held in silo sets, pending lists, reminders and subscriptions); either way the
   * returned id's `.tag` is the current form, which callers use from then on. Only a tag some
   * version would have written for its grain is accepted; anything else throws a TypeError.
   */
  static fromTag(tag: string): GrainId {
    const slash = tag.indexOf('/');
    if (slash <= 0) throw new TypeError(`Not a grain tag: ${JSON.stringify(tag)}`);
    const type = decodeTagPart(tag.slice(0, slash));
    const key = decodeTagPart(tag.slice(slash + 1));
    if (type === undefined || key === undefined) throw new TypeError(`Not a grain tag: ${JSON.stringify(tag)}`);
    return GrainId.of(type, key);
  }

  /**
   * Whether `tag` is in the form older versions wrote and names its grain differently now (its
   * keys must move; see `redgrain migrate-keys`). False for current tags and for anything else.
   */
  static isLegacyTag(tag: string): boolean {
    // Every wake-up is read through this: plain tags, the usual case, answer without decoding.
    if (PLAIN_TAG.test(tag)) return false;
    try {
      return GrainId.fromTag(tag).tag !== tag;
    } catch {
      return false;
    }
  }

  toString(): string {
    return `${this.type}/${this.key}`;
  }
}

function encodeTagPart(text: string): string {
  return encodeURIComponent(text)
    .replace(URI_MARKS, (mark) => `%${mark.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%', '~');
}

/**
 * Decodes one part of a tag, current form first. A part means the text whose encoding, current
 * or old, it is exactly; so `~41` is not read as `A` (whose tag is `A`) but as the old tag of the
 * text `~41`. Undefined when it is the canonical encoding of nothing.
 */
function decodeTagPart(part: string): string | undefined {
  if (CANONICAL_PART.test(part)) {
    const text = tryDecode(part.replaceAll('~', '%'));
    if (text !== undefined && encodeTagPart(text) === part) return text;
  }
  // Older versions wrote plain encodeURIComponent output.
  const text = tryDecode(part);
  return text !== undefined && text.length > 0 && encodeURIComponent(text) === part ? text : undefined;
}

function tryDecode(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}
