import { describe, expect, it } from 'vitest';
import { SerializationError } from 'redgrain';
import { deserialize, serialize } from '../../src/messaging/serializer.ts';
import { GrainStateCodec } from '../../src/storage/grain-state.ts';

describe('serializer', () => {
  it('round-trips Date, Map, Set, BigInt, undefined and nested data', () => {
    const value = { at: new Date(5), m: new Map([['k', new Set([1n])]]), u: undefined, list: [1, 'two', null] };
    expect(deserialize(serialize(value, 'v'))).toEqual(value);
  });

  it('refuses what it would silently lose', () => {
    expect(() => serialize(() => 1, 'f')).toThrow(SerializationError);
    expect(() => serialize({ nested: { f: Symbol('s') } }, 'x')).toThrow(/symbols.*"f"/);
    class Point {
      constructor(readonly x: number) {}
    }
    expect(() => serialize([new Point(1)], 'args')).toThrow(/class Point/);
  });

  it('says once where the trouble is, however deep', () => {
    expect(() => serialize([{ nested: { f: Symbol('s') } }], 'x')).toThrow(
      new SerializationError('x', new Error('symbols cannot be serialized (at [0]["nested"]["f"])')),
    );
    let deep: Record<string, unknown> = { f: () => 1 };
    for (let i = 0; i < 40; i++) deep = { n: deep };
    const message = (() => {
      try {
        serialize(deep, 'deep');
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toBe(`Cannot serialize deep: functions cannot be serialized (at ${'["n"]'.repeat(6)}…${'["n"]'.repeat(5)}["f"])`);
  });

  it('refuses Error objects and symbol-keyed properties, which would arrive changed or not at all', () => {
    expect(() => serialize({ cause: new RangeError('r') }, 'x')).toThrow(
      /Error objects cannot be serialized faithfully \(send plain data such as \{ name, message \}\) \(at \["cause"\]\)/,
    );
    expect(() => serialize({ [Symbol('hidden')]: 1, shown: 2 }, 'x')).toThrow(/properties keyed by a symbol cannot be serialized/);
  });
});

describe('GrainStateCodec', () => {
  it('writes only the fields a turn changed and removes deleted ones', () => {
    const initial = { a: 1, b: new Date(0), c: 'x' };
    const first = GrainStateCodec.diff(new Map(), initial, 'g');
    expect(first.set.map(([f]) => f)).toEqual(['a', 'b', 'c']);
    const second = GrainStateCodec.diff(first.snapshot, { a: 2, b: new Date(0) }, 'g');
    expect(second.set.map(([f]) => f)).toEqual(['a']);
    expect(second.remove).toEqual(['c']);
  });

  it('restores exactly the committed snapshot over the initial state', () => {
    const { snapshot } = GrainStateCodec.diff(new Map(), { a: new Map([['x', 1]]) }, 'g');
    const restored = GrainStateCodec.restore(snapshot, { a: new Map(), extra: true }) as Record<string, unknown>;
    expect(restored).toEqual({ a: new Map([['x', 1]]), extra: true });
  });

  it('keeps a field named __proto__ as data, never as a prototype', () => {
    // JSON.parse makes __proto__ an own key, as a hash field named __proto__ would be.
    const fields = JSON.parse(
      `{"__proto__": ${JSON.stringify(serialize({ polluted: true }, 'p'))}, "ok": ${JSON.stringify(serialize(1, 'o'))}}`,
    ) as Record<string, string>;
    expect(Object.keys(fields)).toContain('__proto__');
    const { state } = GrainStateCodec.fromFields(fields, {});
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(state, '__proto__')?.value).toEqual({ polluted: true });
  });
});
