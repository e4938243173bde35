import { Grain } from 'redgrain';

/** Asks the grains named in `path` one after the other (each asks the next), and answers the last. */
export class Hop extends Grain<{ hops: number }> {
  static readonly type = 'Hop';

  initialState() {
    return { hops: 0 };
  }

  /** Asks `path[0]` to go on with the rest; answers with the names of the grains reached. */
  async ask(path: string[]): Promise<string[]> {
    this.state.hops += 1;
    const [next, ...rest] = path;
    if (next === undefined) return [this.key];
    return [this.key, ...(await this.getGrain(Hop, next).ask('ask', rest))];
  }

  /** Sends (one-way) to `next`, which then asks this grain back: no cycle, nobody waits. */
  async sendThenBeAsked(next: string): Promise<void> {
    await this.getGrain(Hop, next).send('ask', [this.key]);
  }

  async hops(): Promise<number> {
    return this.state.hops;
  }
}
