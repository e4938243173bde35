import { InvalidGrainKeyError } from '../errors/errors.ts';

/** Longest grain key accepted, in UTF-16 code units; keys are part of every Redis key name. */
export const MAX_GRAIN_KEY_LENGTH = 512;

/**
 * The identity of a grain: its type name and its key. Nothing else addresses a grain.
 *
 * `tag` is the reversible, Redis-safe encoding used in key names and as the Redis Cluster hash
 * tag: the type and the key are percent-encoded (so `:`, `{`, `}`, `/`, whitespace and control
 * characters never appear raw) and joined with `/`.
 */
export class GrainId {
  readonly tag: string;

  private constructor(
    readonly type: string,
    readonly key: string,
  ) {
    this.tag = `${encodeURIComponent(type)}/${encodeURIComponent(key)}`;
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

  static fromTag(tag: string): GrainId {
    const slash = tag.indexOf('/');
    if (slash <= 0) throw new TypeError(`Not a grain tag: ${JSON.stringify(tag)}`);
    return GrainId.of(decodeURIComponent(tag.slice(0, slash)), decodeURIComponent(tag.slice(slash + 1)));
  }

  toString(): string {
    return `${this.type}/${this.key}`;
  }
}
