import { Grain } from 'redgrain';

/**
 * The chaos suite's grain: each sender sends seq 0, 1, 2 ... and resends a seq (attempt + 1)
 * while a send fails. The state proves exactly-once application: a seq beyond the next expected
 * one is a gap (`sender:from:to`, a lost or dead-lettered message); a copy of the last applied seq with the same attempt, or of an
 * older seq, is a double application. Copies with a higher attempt are the sender's own retries.
 */
export class Tally extends Grain<{
  next: Record<string, number>;
  last: Record<string, number>;
  gaps: string[];
  doubles: string[];
  retries: number;
}> {
  static readonly type = 'Tally';

  initialState() {
    return { next: {}, last: {}, gaps: [], doubles: [], retries: 0 };
  }

  async apply(sender: string, seq: number, attempt: number) {
    const next = this.state.next[sender] ?? 0;
    if (seq >= next) {
      if (seq > next) this.state.gaps.push(`${sender}:${next}:${seq}`); // seqs next .. seq-1 never came
      this.state.next[sender] = seq + 1;
      this.state.last[sender] = attempt;
    } else if (seq === next - 1 && attempt > (this.state.last[sender] ?? 0)) {
      this.state.retries += 1;
    } else {
      this.state.doubles.push(`${sender}: seq ${seq} attempt ${attempt} applied again`);
    }
  }

  /** A poison message: kills the silo process that runs it. */
  async crash() {
    process.kill(process.pid, 'SIGKILL');
  }

  async report() {
    return this.state;
  }
}
