import { EventSourcedGrain } from 'redgrain';

/** A withdrawal asked for more than the balance holds; `ask` callers get it back as this class. */
export class InsufficientFunds extends Error {
  constructor(
    readonly balance: number,
    readonly requested: number,
  ) {
    super(`balance ${balance} is short of ${requested}`);
    this.name = 'InsufficientFunds';
  }
}

export interface AccountState {
  balance: number;
}

export type AccountEvent = { type: 'Deposited'; amount: number } | { type: 'Withdrawn'; amount: number };

/**
 * A bank account as an event-sourced grain: its balance is the fold of its deposits and
 * withdrawals, each kept in its journal. A withdrawal the balance cannot cover raises nothing.
 */
export class Account extends EventSourcedGrain<AccountState, AccountEvent> {
  static readonly type = 'Account';
  static readonly errors = [InsufficientFunds];
  static override readonly snapshotEvery = 100;

  initialState(): AccountState {
    return { balance: 0 };
  }

  apply(state: AccountState, event: AccountEvent): AccountState {
    return { balance: state.balance + (event.type === 'Deposited' ? event.amount : -event.amount) };
  }

  async deposit(amount: number) {
    if (!(amount > 0)) throw new RangeError(`a deposit is a positive amount, got ${amount}`);
    this.raise({ type: 'Deposited', amount });
    return this.state.balance;
  }

  async withdraw(amount: number) {
    if (!(amount > 0)) throw new RangeError(`a withdrawal is a positive amount, got ${amount}`);
    if (amount > this.state.balance) throw new InsufficientFunds(this.state.balance, amount);
    this.raise({ type: 'Withdrawn', amount });
    return this.state.balance;
  }

  async balance() {
    return this.state.balance;
  }
}
