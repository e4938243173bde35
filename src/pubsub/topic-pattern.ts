import { InvalidTopicError } from '../errors/errors.ts';

/** Longest topic or pattern, in characters. */
const MAX_LENGTH = 512;

/**
 * Topic syntax: dot-separated, non-empty segments (`order.123.status`). In a subscription
 * pattern, `?` matches exactly one segment and `*` zero or more segments, anywhere.
 */
export function topicSegments(topic: string): string[] {
  const segments = splitChecked(topic, 'topic');
  if (segments.some((s) => s === '?' || s === '*'))
    throw new InvalidTopicError(`A topic cannot contain wildcards: ${JSON.stringify(topic)}`);
  return segments;
}

export function patternSegments(pattern: string): string[] {
  return splitChecked(pattern, 'pattern');
}

export function hasWildcards(segments: readonly string[]): boolean {
  return segments.some((s) => s === '?' || s === '*');
}

/** Whether `pattern` matches `topic` (both already split). */
export function matchSegments(pattern: readonly string[], topic: readonly string[]): boolean {
  // memo[i][j]: does pattern[i..] match topic[j..]
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    const id = i * (topic.length + 1) + j;
    const known = memo.get(id);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === pattern.length) result = j === topic.length;
    else if (pattern[i] === '*') result = match(i + 1, j) || (j < topic.length && match(i, j + 1));
    else result = j < topic.length && (pattern[i] === '?' || pattern[i] === topic[j]) && match(i + 1, j + 1);
    memo.set(id, result);
    return result;
  };
  return match(0, 0);
}

/** Whether the subscription pattern matches the topic (`user.*` matches `user.created.email`). */
export function topicMatches(topic: string, pattern: string): boolean {
  return matchSegments(patternSegments(pattern), topicSegments(topic));
}

/**
 * The index bucket of a pattern with wildcards: its first segment when literal (it can only match
 * topics starting with it), else `*` (checked for every publish).
 */
export function patternBucket(segments: readonly string[]): string {
  const first = segments[0] ?? '*';
  return first === '?' || first === '*' ? '*' : first;
}

function splitChecked(value: string, what: string): string[] {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) {
    throw new InvalidTopicError(`A ${what} is a string of 1 to ${MAX_LENGTH} characters, got ${JSON.stringify(value)}`);
  }
  if (!value.isWellFormed()) {
    throw new InvalidTopicError(`A ${what} must be well-formed UTF-16 (it has a lone surrogate), got ${JSON.stringify(value)}`);
  }
  const segments = value.split('.');
  if (segments.some((s) => s.length === 0 || /[\s{}]/.test(s))) {
    throw new InvalidTopicError(`A ${what} is dot-separated non-empty segments without spaces or braces, got ${JSON.stringify(value)}`);
  }
  return segments;
}
