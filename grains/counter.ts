import { Grain } from 'redgrain';

/** The smallest useful grain: a number that survives restarts. */
export class Counter extends Grain<{ count: number }> {
  static readonly type = 'Counter';

  initialState() {
    return { count: 0 };
  }

  async add(by: number) {
    this.state.count += by;
    return this.state.count;
  }

  async get() {
    return this.state.count;
  }
}
