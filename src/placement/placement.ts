import type { SiloRecord } from '../membership/silo-record.ts';

/** What a placement strategy may consider when it picks a silo for a new activation. */
export interface PlacementContext {
  grainType: string;
  grainKey: string;
  /** The silo asking, when the caller runs inside one. */
  localSiloId: string | undefined;
}

/** Picks the silo for a new activation among the active silos that host the grain's type. */
export interface PlacementStrategy {
  readonly name: string;
  pick(candidates: readonly SiloRecord[], context: PlacementContext): SiloRecord;
}

/** Uniformly random among candidates: the default, spreads load with no shared state. */
export const randomPlacement: PlacementStrategy = {
  name: 'random',
  pick(candidates) {
    return candidates[Math.floor(Math.random() * candidates.length)] as SiloRecord;
  },
};

/** The calling silo when it hosts the type, random otherwise: saves a hop for grain-to-grain calls. */
export const preferLocalPlacement: PlacementStrategy = {
  name: 'prefer-local',
  pick(candidates, context) {
    return candidates.find((s) => s.id === context.localSiloId) ?? randomPlacement.pick(candidates, context);
  },
};

/** The silo with the fewest activations at its last heartbeat. */
export const leastLoadedPlacement: PlacementStrategy = {
  name: 'least-loaded',
  pick(candidates) {
    return candidates.reduce((best, s) => (s.activations < best.activations ? s : best));
  },
};
