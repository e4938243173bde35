import { stateMachine, StateMachineGrain, type MachineState } from 'redgrain';

export type DoorStatus = 'CLOSED' | 'OPEN' | 'LOCKED' | 'BROKEN';

export interface DoorState extends MachineState<DoorStatus> {
  opened: number;
}

/** A door as a state machine: every transition is the runtime's; handlers do the rest. */
export class Door extends StateMachineGrain<DoorState> {
  static readonly type = 'Door';
  static readonly machine = stateMachine<Door>()({
    initial: 'CLOSED',
    states: {
      CLOSED: { open: 'OPEN', lock: 'LOCKED', kick: ['OPEN', 'BROKEN'] },
      OPEN: { close: 'CLOSED' },
      LOCKED: { unlock: 'CLOSED', kick: ['LOCKED', 'BROKEN'] },
      BROKEN: {},
    },
    terminal: ['BROKEN'],
  });

  initialState(): DoorState {
    return { status: 'CLOSED', history: [], opened: 0 };
  }

  async open(by?: string) {
    if (by !== undefined) this.actedBy(by);
    this.state.opened += 1;
  }

  async close() {}

  async lock(code: string) {
    if (code !== '1234') throw new Error('wrong code');
  }

  async unlock() {}

  /** Leads to one of two states: the handler picks (or, with `pick` undefined, forgets to). */
  async kick(pick?: DoorStatus) {
    if (pick !== undefined) this.moveTo(pick);
  }

  /** Not in the machine: accepted in every state, moves nothing. */
  async read(): Promise<DoorState> {
    return this.state;
  }

  /** Not in the machine, and writes what the runtime keeps: refused. */
  async force(status: string, clearHistory: boolean) {
    if (clearHistory) this.state.history = [];
    else (this.state as { status: string }).status = status;
  }
}
