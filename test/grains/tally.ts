import { Grain } from 'redgrain';

/**
 * The chaos suite's grain: each sender sends seq 0, 1, 2 ... and resends a seq (attempt + 1)
 * while a send fails. The state proves exactly-once application: a seq beyond the next expected
 * one is a gap (`sender:from:to`, a lost or dead-lettered message); a copy of the last applied seq with the same attempt, or of an
 * older seq, is a double application. Copies with a higher attempt are the sender's own retries.
 */
export interface TallyState {
  next: Record<string, number>;
  last: Record<string, number>;
  gaps: string[];
  doubles: string[];
  retries: number;
}

export function emptyTally(): TallyState {
  return { next: {}, last: {}, gaps: [], doubles: [], retries: 0 };
}

/** Records one (sender, seq, attempt) in `state`; true when it is new (not a retry or a double). */
export function applySeq(state: TallyState, sender: string, seq: number, attempt: number): boolean {
  const next = state.next[sender] ?? 0;
  if (seq >= next) {
    if (seq > next) state.gaps.push(`${sender}:${next}:${seq}`); // seqs next .. seq-1 never came
    state.next[sender] = seq + 1;
    state.last[sender] = attempt;
    return true;
  }
  if (seq === next - 1 && attempt > (state.last[sender] ?? 0)) state.retries += 1;
  else state.doubles.push(`${sender}: seq ${seq} attempt ${attempt} applied again`);
  return false;
}

export class Tally extends Grain<TallyState> {
  static readonly type = 'Tally';

  initialState() {
    return emptyTally();
  }

  async apply(sender: string, seq: number, attempt: number) {
    applySeq(this.state, sender, seq, attempt);
  }

  /** A poison message: kills the silo process that runs it. */
  async crash() {
    process.kill(process.pid, 'SIGKILL');
  }

  async report() {
    return this.state;
  }
}
