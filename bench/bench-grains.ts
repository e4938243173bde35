import { Grain } from 'redgrain';
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
