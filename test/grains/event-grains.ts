import { EventSourcedGrain, Grain, type ImplicitSubscription, type PublishedEvent } from 'redgrain';

export interface LedgerState {
  total: number;
  labels: string[];
}

export type LedgerEvent = { type: 'Added'; amount: number; label: string } | { type: 'Cleared' };

/** How many times `apply` ran per grain key, in this process (to see what an activation replays). */
export const applied = new Map<string, number>();

/** An event-sourced ledger with a short snapshot interval. */
export class Ledger extends EventSourcedGrain<LedgerState, LedgerEvent> {
  static readonly type: string = 'Ledger';
  static override readonly snapshotEvery: number = 5;

  initialState(): LedgerState {
    return { total: 0, labels: [] };
  }

  apply(state: LedgerState, event: LedgerEvent): LedgerState {
    applied.set(this.key, (applied.get(this.key) ?? 0) + 1);
    if (event.type === 'Cleared') return { total: 0, labels: [] };
    return { total: state.total + event.amount, labels: [...state.labels, event.label] };
  }

  async add(amount: number, label: string) {
    this.raise({ type: 'Added', amount, label });
    return this.state.total;
  }

  /** Raises several events in one turn. */
  async addAll(amounts: number[]) {
    for (const amount of amounts) this.raise({ type: 'Added', amount, label: `n${amount}` });
    return this.state.total;
  }

  /** Raises an event, sees it applied, then throws: nothing of it may remain. */
  async addThenFail(amount: number) {
    this.raise({ type: 'Added', amount, label: 'doomed' });
    if (this.state.total >= amount) throw new Error(`refused after seeing total ${this.state.total}`);
  }

  async clear() {
    this.raise({ type: 'Cleared' });
  }

  async read() {
    return { ...this.state, seq: this.lastEventSeq };
  }

  async history(from?: number, to?: number, limit?: number) {
    return this.events({
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(limit === undefined ? {} : { limit }),
    });
  }
}

/** The same ledger, keeping only the events its last snapshot does not cover. */
export class TrimmedLedger extends Ledger {
  static override readonly type = 'TrimmedLedger';
  static override readonly journalRetention = 'snapshot' as const;
}

/** A ledger that never snapshots: every activation replays the whole journal. */
export class UnsnapshottedLedger extends Ledger {
  static override readonly type = 'UnsnapshottedLedger';
  static override readonly snapshotEvery = Infinity;
}

/** A ledger publishing every event on `ledger.<type>`. */
export class PublishingLedger extends Ledger {
  static override readonly type = 'PublishingLedger';
  static override readonly eventTopic = 'ledger';
}

/** Hears every ledger event (one projection for all ledgers: the topic's first segment is its key). */
export class LedgerProjection extends Grain<{ seen: { key: string; seq: number; type: string; correlationId: string }[] }> {
  static readonly type = 'LedgerProjection';
  static readonly implicitSubscriptions: readonly ImplicitSubscription[] = [{ pattern: 'ledger.*', key: 0, method: 'onEvent' }];
  initialState() {
    return { seen: [] as { key: string; seq: number; type: string; correlationId: string }[] };
  }
  async onEvent(_topic: string, event: PublishedEvent) {
    this.state.seen.push({ key: event.key, seq: event.seq, type: event.type, correlationId: event.correlationId });
  }
  async read() {
    return this.state.seen;
  }
}

/** Version 1 of a thermometer: readings in Celsius. */
export type ThermoEventV1 = { type: 'Read'; celsius: number };
/** Version 2: readings in Kelvin; version-1 events are upcast. */
export type ThermoEventV2 = { type: 'Read'; kelvin: number };

export class ThermoV1 extends EventSourcedGrain<{ readings: number[] }, ThermoEventV1> {
  static readonly type = 'Thermo';
  // A snapshot with every event: version 2 must set it aside (its state has another shape).
  static override readonly snapshotEvery = 1;
  initialState() {
    return { readings: [] as number[] };
  }
  apply(state: { readings: number[] }, event: ThermoEventV1) {
    return { readings: [...state.readings, event.celsius] };
  }
  async read(celsius: number) {
    this.raise({ type: 'Read', celsius });
  }
}

export class ThermoV2 extends EventSourcedGrain<{ kelvins: number[] }, ThermoEventV2> {
  static readonly type = 'Thermo';
  static override readonly eventVersion = 2;
  // The state changed shape too: snapshots of version 1 are not loaded (the journal is replayed).
  static override readonly snapshotVersion = 2;
  static override upcast(event: unknown, version: number): ThermoEventV2 {
    if (version === 1) {
      const old = event as ThermoEventV1;
      return { type: 'Read', kelvin: old.celsius + 273 };
    }
    return event as ThermoEventV2;
  }
  initialState() {
    return { kelvins: [] as number[] };
  }
  apply(state: { kelvins: number[] }, event: ThermoEventV2) {
    return { kelvins: [...state.kelvins, event.kelvin] };
  }
  async read(kelvin: number) {
    this.raise({ type: 'Read', kelvin });
  }
  async kelvins() {
    return this.state.kelvins;
  }
}
