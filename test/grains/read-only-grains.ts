import { Grain, readOnly } from 'redgrain';

/**
 * Read-only handlers that try what they may not: change the state, send, publish, remind, set a
 * timer. `hold` is an exclusive turn that waits until `release` (from the test) lets it go.
 */
export class Gauge extends Grain<{ level: number; reads: number }> {
  static readonly type = 'Gauge';
  static readonly readOnly = readOnly<Gauge>('read', 'poke', 'leak', 'leakUnawaited', 'shout', 'nag', 'tick', 'readOther');

  initialState() {
    return { level: 0, reads: 0 };
  }

  async set(level: number) {
    this.state.level = level;
    return level;
  }

  async hold(level: number) {
    await held.get(this.key);
    this.state.level = level;
    return level;
  }

  async read() {
    return this.state.level;
  }

  /** Changes the state: refused. */
  async poke() {
    this.state.reads += 1;
    return this.state.reads;
  }

  async leak() {
    await this.getGrain(Gauge, `${this.key}-other`).send('set', 1);
  }

  /** Sends without awaiting the refusal: the call fails all the same, and no silo falls over. */
  async leakUnawaited() {
    void this.getGrain(Gauge, `${this.key}-other`).send('set', 1);
    return this.state.level;
  }

  async shout() {
    await this.publish('gauges.shout', this.key);
  }

  async nag() {
    await this.remind('nag', { after: 60_000 }, 'set', 2);
  }

  async tick() {
    this.setTimer('tick', { after: 10 }, 'set', 3);
  }

  /** Reads another grain: allowed. */
  async readOther(other: string): Promise<number> {
    return this.getGrain(Gauge, other).ask('read');
  }
}

/** What `hold` waits for, per grain key; set by the test in this process. */
export const held = new Map<string, Promise<void>>();
