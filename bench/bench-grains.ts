import { Grain } from 'redgrain';

/** The benchmark's grain: state written on every message. */
export class Meter extends Grain<{ n: number }> {
  static readonly type = 'Meter';

  initialState() {
    return { n: 0 };
  }

  async add(by: number) {
    this.state.n += by;
    return this.state.n;
  }

  async get() {
    return this.state.n;
  }
}
