import { Grain, RedgrainError } from 'redgrain';

export class PaymentDeclinedError extends RedgrainError {
  constructor(amount: number) {
    super('PAYMENT_DECLINED', `payment of ${amount} declined`);
  }
}

/** State that superjson must carry: Date, Map, Set, BigInt, nested objects. */
export class Ledger extends Grain<{
  balance: bigint;
  openedAt?: Date;
  tags: Set<string>;
  entries: Map<string, { amount: number; at: Date }>;
  notes: string[];
}> {
  static readonly type = 'Ledger';
  static readonly collectionAgeMs = 60_000;
  activations = 0;

  initialState() {
    return { balance: 0n, tags: new Set<string>(), entries: new Map(), notes: [] };
  }

  override onActivate() {
    this.activations += 1;
  }

  async open(at: Date) {
    this.state.openedAt = at;
    this.state.tags.add('open');
  }

  async credit(id: string, amount: number) {
    this.state.balance += BigInt(amount);
    this.state.entries.set(id, { amount, at: new Date(0) });
    return this.state.balance;
  }

  /** Changes state, then throws: none of it may stay. */
  async creditThenFail(id: string, amount: number) {
    this.state.balance += BigInt(amount);
    this.state.entries.set(id, { amount, at: new Date(0) });
    this.state.notes.push('half-made');
    throw new PaymentDeclinedError(amount);
  }

  async failPlain(message: string) {
    throw new TypeError(message);
  }

  async snapshot() {
    return { ...this.state, activations: this.activations };
  }

  async returnsFunction() {
    return () => 1;
  }

  async slow(ms: number) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  }

  private async hidden() {
    return 'no';
  }

  async _helper() {
    return this.hidden();
  }
}

/** Records its lifecycle in its own state, to test collection and reactivation. */
export class Session extends Grain<{ visits: number; deactivatedAt?: Date }> {
  static readonly type = 'Session';
  static readonly collectionAgeMs = 300;

  initialState() {
    return { visits: 0 };
  }

  override onDeactivate() {
    this.state.deactivatedAt = new Date();
  }

  async visit() {
    this.state.visits += 1;
    return this.state.visits;
  }

  async read() {
    return this.state;
  }
}

/** Calls another grain from inside a handler and reports the correlation ids it saw. */
export class Relay extends Grain<{ forwarded: number }> {
  static readonly type = 'Relay';

  initialState() {
    return { forwarded: 0 };
  }

  async forward(to: string, amount: number) {
    this.state.forwarded += 1;
    const balance = await this.getGrain(Ledger, to).ask('credit', `relay-${this.state.forwarded}`, amount);
    return { balance, correlationId: this.correlationId };
  }

  async whoAmI() {
    return this.correlationId;
  }
}

/** A grain whose activation fails while `Fragile.broken` is set (a bad deploy). */
export class Fragile extends Grain<{ touches: number }> {
  static readonly type = 'Fragile';
  static broken = true;

  initialState() {
    return { touches: 0 };
  }

  override onActivate() {
    if (Fragile.broken) throw new Error('config missing');
  }

  async touch() {
    this.state.touches += 1;
    return this.state.touches;
  }
}

/** Keeps whatever it is given, to test hostile keys in arguments and state. */
export class Bag extends Grain<{ items: Record<string, unknown> }> {
  static readonly type = 'Bag';

  initialState() {
    return { items: {} as Record<string, unknown> };
  }

  async put(name: string, value: unknown) {
    Object.defineProperty(this.state.items, name, { value, enumerable: true, writable: true, configurable: true });
    return Object.keys(this.state.items).length;
  }

  async items() {
    return this.state.items;
  }
}
