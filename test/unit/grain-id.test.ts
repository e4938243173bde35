import { describe, expect, it } from 'vitest';
import { GrainId, InvalidGrainKeyError } from 'redgrain';

/** Keys with every kind of character percent-encoding changes, and the marks it leaves raw. */
const AWKWARD_KEYS = [
  'a:b',
  '{tag}',
  'a/b',
  'line\nbreak',
  'a b',
  '%41',
  '~41',
  'a~b',
  'ann@example.com',
  "it's (x)*!",
  'ü∂',
  'Zoë 😀',
  '~',
];

describe('GrainId', () => {
  it('encodes keys so separators, braces, whitespace and % never appear raw in key names', () => {
    for (const key of ['plain', ...AWKWARD_KEYS]) {
      const id = GrainId.of('Type', key);
      expect(id.tag).toMatch(/^Type\/[A-Za-z0-9._~-]+$/);
      expect(GrainId.fromTag(id.tag)).toEqual(id);
      expect(GrainId.fromTag(id.tag).key).toBe(key);
    }
  });

  it('escapes with ~ and exact UTF-8 bytes', () => {
    expect(GrainId.of('Type', 'a b').tag).toBe('Type/a~20b');
    expect(GrainId.of('Type', 'x:y').tag).toBe('Type/x~3Ay');
    expect(GrainId.of('Type', 'ann@example.com').tag).toBe('Type/ann~40example.com');
    expect(GrainId.of('Type', 'a~b').tag).toBe('Type/a~7Eb');
    expect(GrainId.of('Type', "!'()*").tag).toBe('Type/~21~27~28~29~2A');
    expect(GrainId.of('Type', 'Zoë').tag).toBe('Type/Zo~C3~AB');
    expect(GrainId.of('Type', '😀').tag).toBe('Type/~F0~9F~98~80');
  });

  it('survives URL-decoding any number of times, as a dashboard decodes queue names', () => {
    for (const key of AWKWARD_KEYS) {
      const tag = GrainId.of('Type', key).tag;
      expect(decodeURIComponent(decodeURIComponent(tag))).toBe(tag);
      expect(decodeURIComponent(encodeURIComponent(encodeURIComponent(tag)))).toBe(encodeURIComponent(tag));
    }
  });

  it('keeps the tag older versions wrote for keys of [A-Za-z0-9-._] only', () => {
    for (const key of ['plain', 'Order-42', 'a.b_c', 'x'.repeat(512)]) {
      const tag = GrainId.of('Campaign', key).tag;
      expect(tag).toBe(`${encodeURIComponent('Campaign')}/${encodeURIComponent(key)}`);
      expect(tag).toBe(`Campaign/${key}`);
    }
  });

  it('reads the %-encoded tags older versions wrote, and answers with the current tag', () => {
    const cases: [string, string, string][] = [
      ['Type/a%20b', 'a b', 'Type/a~20b'],
      ['Type/x%3Ay', 'x:y', 'Type/x~3Ay'],
      ['Type/ann%40example.com', 'ann@example.com', 'Type/ann~40example.com'],
      ['Type/%7Btag%7D', '{tag}', 'Type/~7Btag~7D'],
      ['Type/Zo%C3%AB', 'Zoë', 'Type/Zo~C3~AB'],
      // encodeURIComponent leaves ~ ! ' ( ) * raw: these keys moved too.
      ['Type/a~b', 'a~b', 'Type/a~7Eb'],
      ["Type/it's", "it's", 'Type/it~27s'],
      // ~41 is not how the key "A" is written now (that is "A"): it is the old tag of "~41".
      ['Type/~41', '~41', 'Type/~7E41'],
      ['Type/~ZZ', '~ZZ', 'Type/~7EZZ'],
    ];
    for (const [old, key, tag] of cases) {
      const id = GrainId.fromTag(old);
      expect(id.key).toBe(key);
      expect(id.type).toBe('Type');
      expect(id.tag).toBe(tag);
      expect(GrainId.isLegacyTag(old)).toBe(true);
      expect(GrainId.isLegacyTag(tag)).toBe(false);
    }
    expect(GrainId.isLegacyTag('Type/plain')).toBe(false);
  });

  it('refuses tags no version writes', () => {
    for (const tag of [
      '',
      'noslash',
      '/key',
      'Type/',
      'Type/a%2',
      'Type/%zz',
      'Type/a b',
      'Type/a%3ab',
      'Type/%7E',
      'Type/%41',
      'Type/%c3%ab',
    ]) {
      expect(() => GrainId.fromTag(tag), tag).toThrow(TypeError);
      expect(GrainId.isLegacyTag(tag)).toBe(false);
    }
  });

  it('keeps different keys and types apart', () => {
    expect(GrainId.of('A', 'b/c').tag).not.toBe(GrainId.of('A/b', 'c').tag);
    expect(GrainId.of('A', 'x').tag).not.toBe(GrainId.of('B', 'x').tag);
    expect(GrainId.of('A', 'a b').tag).not.toBe(GrainId.of('A', 'a~20b').tag);
  });

  it('refuses empty, non-string, overlong and ill-formed keys', () => {
    expect(() => GrainId.of('T', '')).toThrow(InvalidGrainKeyError);
    expect(() => GrainId.of('T', 42 as unknown as string)).toThrow(InvalidGrainKeyError);
    expect(() => GrainId.of('T', 'k'.repeat(513))).toThrow(/at most 512/);
    expect(GrainId.of('T', 'k'.repeat(512)).key.length).toBe(512);
    expect(() => GrainId.of('T', 'lone \uD83D')).toThrow(InvalidGrainKeyError);
    expect(() => GrainId.of('T', '\uDE00 trailing')).toThrow(/well-formed UTF-16/);
    expect(GrainId.of('T', '\uD83D\uDE00').tag).toBe('T/~F0~9F~98~80');
  });
});
