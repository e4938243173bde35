import { readOnly, stateMachine, StateMachineGrain, type MachineState } from 'redgrain';

export interface OperatorState extends MachineState<'DOWN' | 'UP' | 'DONE'> {
  /** Jobs the machine has run. */
  jobs: number;
  /** Who completed the work, once it is done. */
  completedBy?: string;
}

/** What the `status` query answers. */
export interface OperatorStatus {
  status: OperatorState['status'];
  jobs: number;
  transitions: number;
}

/**
 * A machine operator, after the Temporal actor of the same name: signals (`send`) set the machine
 * up, run jobs on it, tear it down and complete the work; `status` is the query, a read-only
 * handler, so an `ask` of it is answered from the last committed state at once, beside a job in
 * progress and without waiting behind the signals queued behind it.
 */
export class MachineOperator extends StateMachineGrain<OperatorState> {
  static readonly type = 'MachineOperator';
  static readonly machine = stateMachine<MachineOperator>()({
    initial: 'DOWN',
    states: {
      DOWN: { setUp: 'UP', complete: 'DONE' },
      UP: { runJob: 'UP', tearDown: 'DOWN' },
      DONE: {},
    },
    terminal: ['DONE'],
  });
  static readonly readOnly = readOnly<MachineOperator>('status');

  initialState(): OperatorState {
    return { status: 'DOWN', history: [], jobs: 0 };
  }

  async setUp(by: string) {
    this.actedBy(by);
  }

  /** A job takes `ms` of this grain's turn: other signals wait behind it, queries do not. */
  async runJob(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.state.jobs += 1;
    return this.state.jobs;
  }

  async tearDown(by: string) {
    this.actedBy(by);
  }

  async complete(by: string) {
    this.actedBy(by);
    this.state.completedBy = by;
  }

  async status(): Promise<OperatorStatus> {
    return { status: this.state.status, jobs: this.state.jobs, transitions: this.state.history.length };
  }
}
