import { Grain } from 'redgrain';
import { applySeq, emptyTally, Tally, type TallyState } from './tally.ts';

/**
 * The outbox chaos grain: it applies senders' messages as a Tally does, counts the new ones, and
 * in the same turn sends the count on to its sink (the Tally `sink-<key>`), as sender `relay`
 * with seq 0, 1, 2 ... So the sink proves the relay's sends took effect exactly once and in order:
 * a repeated send is a double, a lost one a gap, and its `next.relay` must equal the count.
 */
export class Relay extends Grain<TallyState & { count: number }> {
  static readonly type = 'Relay';

  initialState() {
    return { ...emptyTally(), count: 0 };
  }

  async forward(sender: string, seq: number, attempt: number) {
    if (!applySeq(this.state, sender, seq, attempt)) return;
    await this.getGrain(Tally, `sink-${this.key}`).send('apply', 'relay', this.state.count, 1);
    this.state.count += 1;
  }

  async report() {
    return this.state;
  }
}
