import { describe, expect, it } from 'vitest';
import { Grain, InvalidGrainClassError } from 'redgrain';
import { describeGrainType, GrainTypeRegistry } from '../../src/grain/grain-type.ts';
import { Campaign } from '../../grains/campaign.ts';
import { Counter } from '../../grains/counter.ts';

describe('grain types', () => {
  it('finds handlers along the class chain, minus lifecycle hooks and _helpers', () => {
    class Base extends Grain<{ n: number }> {
      static readonly type: string = 'Base';
      async inherited() {
        return 1;
      }
      override async onActivate() {}
      async _helper() {}
    }
    class Derived extends Base {
      static override readonly type: string = 'Derived';
      async own() {
        return 2;
      }
    }
    expect([...describeGrainType(Derived).handlers].sort()).toEqual(['inherited', 'own']);
    expect([...describeGrainType(Campaign).handlers].sort()).toEqual([
      'cancel',
      'create',
      'created',
      'get',
      'review',
      'reviewDeadlinePassed',
    ]);
  });

  it('refuses classes without a type name, and two classes with one name', () => {
    class NoType extends Grain {}
    expect(() => describeGrainType(NoType as never)).toThrow(InvalidGrainClassError);
    class Impostor extends Grain {
      static readonly type = 'Counter';
    }
    expect(() => new GrainTypeRegistry([Counter, Impostor])).toThrow(/declared by two classes/);
  });

  it('grains are made by the runtime only', () => {
    expect(() => new Counter()).toThrow(/created by a silo/);
  });
});
