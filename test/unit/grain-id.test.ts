import { describe, expect, it } from 'vitest';
import { GrainId, InvalidGrainKeyError } from 'redgrain';

describe('GrainId', () => {
  it('encodes keys so separators, braces and whitespace never appear raw in key names', () => {
    for (const key of ['plain', 'a:b', '{tag}', 'a/b', 'line\nbreak', 'spa ce', '%41', 'ü∂']) {
      const id = GrainId.of('Type', key);
      expect(id.tag).not.toMatch(/[:{}\s]/);
      expect(id.tag.split('/').length).toBe(2);
      expect(GrainId.fromTag(id.tag)).toEqual(id);
    }
  });

  it('keeps different keys and types apart', () => {
    expect(GrainId.of('A', 'b/c').tag).not.toBe(GrainId.of('A/b', 'c').tag);
    expect(GrainId.of('A', 'x').tag).not.toBe(GrainId.of('B', 'x').tag);
  });

  it('refuses empty, non-string and overlong keys', () => {
    expect(() => GrainId.of('T', '')).toThrow(InvalidGrainKeyError);
    expect(() => GrainId.of('T', 42 as unknown as string)).toThrow(InvalidGrainKeyError);
    expect(() => GrainId.of('T', 'k'.repeat(513))).toThrow(/at most 512/);
    expect(GrainId.of('T', 'k'.repeat(512)).key.length).toBe(512);
  });
});
