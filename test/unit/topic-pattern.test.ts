import { describe, expect, it } from 'vitest';
import { InvalidTopicError, topicMatches } from 'redgrain';

/** DESIGN.md's table, row for row: (topic, pattern, matches). */
const TABLE: [string, string, boolean][] = [
  ['user.created.email', 'user.?', false],
  ['user.created.email', 'user.?.?', true],
  ['user.created.email', 'user.*', true],
  ['user.created.email', '*.email', true],
  ['user.created.email', '?.created.email', true],
  ['user.created.email', '?.?.?', true],
  ['user.created.email', '?.?.?.?', false],
  ['order.123.status', 'order.?.status', true],
  ['order.123.status', 'order.*.status', true],
  ['order.123.status', '*.status', true],
  ['order.123.status', 'order.status', false],
  ['auth.login.success', 'auth.*', true],
  ['auth.login.success', 'auth.?.success', true],
  ['auth.login.success', '*.success', true],
  ['auth.login.success', '*', true],
  ['auth.login.success', '?.?', false],
];

describe('topic patterns', () => {
  for (const [topic, pattern, matches] of TABLE) {
    it(`${pattern} ${matches ? 'matches' : 'does not match'} ${topic}`, () => {
      expect(topicMatches(topic, pattern)).toBe(matches);
    });
  }

  it('lets * match zero segments, anywhere', () => {
    expect(topicMatches('order.status', 'order.*.status')).toBe(true);
    expect(topicMatches('a.b.c.d', 'a.*.d')).toBe(true);
    expect(topicMatches('a.b.c.d', '*.b.*')).toBe(true);
    expect(topicMatches('a', '*.*')).toBe(true);
    expect(topicMatches('a.b', 'a.b.*')).toBe(true);
    expect(topicMatches('a.b', 'a.b.?')).toBe(false);
  });

  it('refuses malformed topics and patterns', () => {
    expect(() => topicMatches('a..b', 'a.*')).toThrow(InvalidTopicError);
    expect(() => topicMatches('a.*', 'a.*')).toThrow(/wildcards/);
    expect(() => topicMatches('a', '')).toThrow(InvalidTopicError);
    // A lone surrogate would reach Redis's key and channel names as U+FFFD, another topic.
    expect(() => topicMatches('a.\uD800', 'a.*')).toThrow(/well-formed UTF-16/);
    expect(() => topicMatches('a.b', 'a.\uDC00')).toThrow(/well-formed UTF-16/);
  });
});
