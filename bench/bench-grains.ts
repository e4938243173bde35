import { EventSourcedGrain, Grain } from 'redgrain';
import { Counter } from '../grains/counter.ts';

/** A turn with one effect: counts the message and sends one on to its sink (a Counter). */
export class Forwarder extends Grain<{ count: number }> {
  static readonly type = 'Forwarder';

  initialState() {
    return { count: 0 };
  }

  async pass() {
    this.state.count += 1;
    await this.getGrain(Counter, `sink-${this.key}`).send('add', 1);
  }

  async get() {
    return this.state.count;
  }
}

/** An event-sourced counter: its state is the fold of its `Added` events; a snapshot every 100. */
export class EventTally extends EventSourcedGrain<{ count: number }, { type: 'Added'; n: number }> {
  static readonly type: string = 'EventTally';

  initialState() {
    return { count: 0 };
  }

  apply(state: { count: number }, event: { type: 'Added'; n: number }) {
    return { count: state.count + event.n };
  }

  /** Raises `events` events in one turn. */
  async addMany(events: number) {
    for (let i = 0; i < events; i++) this.raise({ type: 'Added', n: 1 });
  }

  async get() {
    return this.state.count;
  }
}

/** The same, never snapshotted: an activation replays the whole journal. */
export class UnsnapshottedTally extends EventTally {
  static override readonly type = 'UnsnapshottedTally';
  static override readonly snapshotEvery = Infinity;
}
