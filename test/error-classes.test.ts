import { describe, expect, it } from 'vitest';
import { Grain, RemoteGrainError } from 'redgrain';
import { inProcessSilo } from './support/in-process-silo.ts';

/** Declared on the grain class that throws it. */
class Overdrawn extends Error {
  constructor(readonly short: number) {
    super(`short by ${short}`);
    this.name = 'Overdrawn';
  }
}

/** Registered with Silo.start only. */
class Frozen extends Error {
  constructor(readonly account: string) {
    super(`${account} is frozen`);
    this.name = 'Frozen';
  }
}

/** Known to nobody. */
class Unlisted extends Error {
  constructor() {
    super('nobody knows me');
    this.name = 'Unlisted';
  }
}

class Vault extends Grain<{ balance: number }> {
  static readonly type = 'Vault';
  static readonly errors = [Overdrawn];
  initialState() {
    return { balance: 10 };
  }
  async take(amount: number) {
    if (amount > this.state.balance) throw new Overdrawn(amount - this.state.balance);
    this.state.balance -= amount;
    return this.state.balance;
  }
  async freeze() {
    throw new Frozen(this.key);
  }
  async odd() {
    throw new Unlisted();
  }
}

/** Asks the vault from inside a turn and says what came back. */
class Teller extends Grain<object> {
  static readonly type = 'Teller';
  initialState() {
    return {};
  }
  async withdraw(vault: string, amount: number) {
    try {
      return { ok: await this.getGrain(Vault, vault).ask('take', amount) };
    } catch (error) {
      return whatCame(error);
    }
  }
  async freeze(vault: string) {
    return this.getGrain(Vault, vault)
      .ask('freeze')
      .catch((error: unknown) => whatCame(error));
  }
  async odd(vault: string) {
    return this.getGrain(Vault, vault)
      .ask('odd')
      .catch((error: unknown) => whatCame(error));
  }
}

function whatCame(error: unknown) {
  return {
    overdrawn: error instanceof Overdrawn,
    frozen: error instanceof Frozen,
    remote: error instanceof RemoteGrainError,
    name: (error as Error).name,
    message: (error as Error).message,
    fields: { short: (error as { short?: number }).short, account: (error as { account?: string }).account },
  };
}

/** A handler's ask from inside a silo rebuilds application error classes the silo knows. */
describe('application error classes in a silo', () => {
  const cluster = inProcessSilo('error-classes', [Vault, Teller], { errors: [Frozen] });

  it("comes back as the class a grain class lists in `static errors`, with its fields, in another grain's ask", async () => {
    expect(await cluster.client.getGrain(Teller, 't').ask('withdraw', 'v1', 4)).toEqual({ ok: 6 });
    expect(await cluster.client.getGrain(Teller, 't').ask('withdraw', 'v1', 9)).toEqual({
      overdrawn: true,
      frozen: false,
      remote: false,
      name: 'Overdrawn',
      message: 'short by 3',
      fields: { short: 3, account: undefined },
    });
  });

  it('comes back as a class given to Silo.start as errors', async () => {
    expect(await cluster.client.getGrain(Teller, 't').ask('freeze', 'v2')).toEqual({
      overdrawn: false,
      frozen: true,
      remote: false,
      name: 'Frozen',
      message: 'v2 is frozen',
      fields: { short: undefined, account: 'v2' },
    });
  });

  it('comes back as RemoteGrainError, with the name and message, when no one registered the class', async () => {
    expect(await cluster.client.getGrain(Teller, 't').ask('odd', 'v3')).toMatchObject({
      overdrawn: false,
      frozen: false,
      remote: true,
      name: 'Unlisted',
      message: expect.stringContaining('nobody knows me') as unknown,
    });
  });
});
