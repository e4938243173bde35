/**
 * Compile-time tests of the public API, checked by `npm run typecheck` (never executed).
 * Each `@ts-expect-error` fails the typecheck if the line below it ever compiles.
 */
import {
  connect,
  Grain,
  Silo,
  stateMachine,
  readOnly,
  StateMachineGrain,
  type GrainClient,
  type HandlerName,
  type MachineState,
  type MailboxLimits,
} from 'redgrain';
import { Campaign } from '../../grains/campaign.ts';
import { Counter } from '../../grains/counter.ts';

declare const client: GrainClient;
const counter = client.getGrain(Counter, 'c1');

export async function handlersAreTyped(): Promise<void> {
  await counter.send('add', 5);
  const n: number = await counter.ask('add', 5);
  const m: number = await counter.ask('get');
  void n;
  void m;
  await counter.with({ timeoutMs: 1_000, correlationId: 'x' }).ask('get');

  // @ts-expect-error a method the grain does not have
  await counter.send('subtract', 1);
  // @ts-expect-error wrong argument type
  await counter.send('add', '5');
  // @ts-expect-error missing argument
  await counter.ask('add');
  // @ts-expect-error too many arguments
  await counter.ask('get', 1);
  // @ts-expect-error the result is a number, not a string
  const s: string = await counter.ask('get');
  void s;
  // @ts-expect-error lifecycle hooks are not messages
  await counter.send('onActivate');
  // @ts-expect-error initialState is not a message
  await counter.send('initialState');
  // @ts-expect-error state is not a message
  await counter.send('state');

  const campaign = client.getGrain(Campaign, 'k');
  await campaign.send('review', { approved: true, reviewer: 'bob' });
  // @ts-expect-error review needs a reviewer
  await campaign.send('review', { approved: true });
  // @ts-expect-error the private transition helper is not a message
  await campaign.send('move');
}

class Secretive extends Grain<{ n: number }> {
  static readonly type = 'Secretive';
  initialState() {
    return { n: 0 };
  }
  async visible() {
    return this.hidden();
  }
  private async hidden() {
    return 1;
  }
  protected async guarded() {
    return 2;
  }
  syncMethod() {
    return 3;
  }
}

export async function onlyPublicAsyncMethodsAreHandlers(): Promise<void> {
  const names: HandlerName<Secretive>[] = ['visible'];
  void names;
  const ref = client.getGrain(Secretive, 'x');
  await ref.ask('visible');
  // @ts-expect-error private methods are not handlers
  await ref.ask('hidden');
  // @ts-expect-error protected methods are not handlers
  await ref.ask('guarded');
  // @ts-expect-error synchronous methods are not handlers
  await ref.ask('syncMethod');
}

export async function classesNeedAType(): Promise<void> {
  class Untyped extends Grain<{ n: number }> {
    async go() {
      return 1;
    }
  }
  // @ts-expect-error a grain class must declare `static readonly type`
  client.getGrain(Untyped, 'k');
  // @ts-expect-error a silo hosts grain classes only
  await Silo.start({ grains: [Date] });
  const c = await connect({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'app' });
  await c.close();
}

export class Ticking extends Grain<{ n: number }> {
  static readonly type = 'Ticking';
  static readonly mailbox: MailboxLimits = { maxDepth: 10, overflow: 'drop-oldest' };
  async add(by: number) {
    this.state.n += by;
  }
  async arm() {
    this.setTimer('t', { every: 1_000 }, 'add', 2);
    // @ts-expect-error a timer's arguments are checked against the method
    this.setTimer('t', { every: 1_000 }, 'add', 'two');
    // @ts-expect-error a timer's method must be given its arguments
    this.setTimer('t', { every: 1_000 }, 'add');
    // @ts-expect-error a timer's method must be a handler of the grain
    this.setTimer('t', { every: 1_000 }, 'nope');
    // @ts-expect-error state is not a handler
    this.setTimer('t', { every: 1_000 }, 'state');
    this.clearTimer('t');
  }
}

export async function callOptions(): Promise<void> {
  const ref = client.getGrain(Ticking, 'k').with({ idempotencyKey: 'op-1', correlationId: 'c', timeoutMs: 5 });
  await ref.send('add', 1);
  // @ts-expect-error an idempotency key is a string
  client.getGrain(Ticking, 'k').with({ idempotencyKey: 1 });
}

/** The README's examples of class-level options compile as written. */
export class Sensor extends Grain<{ readings: number[] }> {
  static readonly type = 'Sensor';
  static readonly mailbox = { maxDepth: 1_000, overflow: 'reject' } as const;
  async read() {
    return this.state.readings;
  }
}

export class OrderTracker extends Grain<{ statuses: string[] }> {
  static readonly type = 'OrderTracker';
  static readonly implicitSubscriptions = [{ pattern: 'order.?.status', key: 1, method: 'onStatus' }];
  async onStatus(_topic: string, status: { value: string }) {
    this.state.statuses.push(status.value);
  }
  async count(n: number) {
    return n + this.state.statuses.length;
  }
  async follow() {
    await this.subscribe('order.*', 'onStatus');
    // @ts-expect-error a subscription's method takes (topic: string, data)
    await this.subscribe('order.*', 'count');
    await this.remind('later', { after: 1_000 }, 'onStatus', 'order.1.status', { value: 'late' });
    await this.publish('order.1.status', { value: 'now' });
  }
}

export async function classOptionsAreAccepted(): Promise<void> {
  await client.getGrain(Sensor, 's').ask('read');
  await client.getGrain(OrderTracker, 'o').send('follow');
  const silo = await Silo.start({ grains: [Sensor, OrderTracker] });
  await silo.stop();
}

/** A state machine is checked against its grain class: states it leads to, and handlers it names. */
export function machinesAreTyped(): void {
  class Valve extends StateMachineGrain<MachineState<'SHUT' | 'FLOWING'>> {
    static readonly type = 'Valve';
    initialState() {
      return { status: 'SHUT' as const, history: [] };
    }
    async turn() {}
    async read() {
      return this.state.status;
    }
  }
  const machine = stateMachine<Valve>()({ initial: 'SHUT', states: { SHUT: { turn: 'FLOWING' }, FLOWING: { turn: ['SHUT'] } } });
  void machine;
  // @ts-expect-error a transition to a state the machine does not declare
  stateMachine<Valve>()({ initial: 'SHUT', states: { SHUT: { turn: 'OPEN' }, FLOWING: {} } });
  // @ts-expect-error a message the grain does not handle
  stateMachine<Valve>()({ initial: 'SHUT', states: { SHUT: { twist: 'FLOWING' }, FLOWING: {} } });
  // @ts-expect-error an initial state the machine does not declare
  stateMachine<Valve>()({ initial: 'LEAKING', states: { SHUT: {}, FLOWING: {} } });
  // @ts-expect-error a terminal state the machine does not declare
  stateMachine<Valve>()({ initial: 'SHUT', states: { SHUT: {}, FLOWING: {} }, terminal: ['GONE'] });

  // Read-only handlers are handlers of the class.
  void readOnly<Valve>('read');
  // @ts-expect-error a read-only handler the grain does not have
  readOnly<Valve>('peek');
}
