import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidGrainClassError, InvalidMessageForStateError, mermaidDiagram, Silo, StateMachineGrain, type MachineState } from 'redgrain';
import { Door } from './grains/machine-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { testRedis } from './support/redis.ts';

const execFileAsync = promisify(execFile);

/** State-machine grains: routing by state, transitions recorded by the runtime, durable. */
describe('state-machine grains', () => {
  const cluster = inProcessSilo('machine', [Door]);

  it('moves on an accepted message and records the transition, with the actor the handler named', async () => {
    const door = cluster.client.getGrain(Door, 'front').with({ correlationId: 'corr-door' });
    const before = Date.now();
    await door.ask('open', 'alice');
    const state = await door.ask('read');
    expect(state.status).toBe('OPEN');
    expect(state.opened).toBe(1);
    expect(state.history).toHaveLength(1);
    expect(state.history[0]).toMatchObject({
      from: 'CLOSED',
      to: 'OPEN',
      message: 'open',
      actor: 'alice',
      correlationId: 'corr-door',
      traceId: '',
    });
    expect(state.history[0]?.at).toBeInstanceOf(Date);
    expect(state.history[0]?.at.getTime()).toBeGreaterThanOrEqual(before);
    await door.ask('close');
    // No actor named: the transition has none.
    expect((await door.ask('read')).history[1]).not.toHaveProperty('actor');
  });

  it('refuses a message the current state does not accept before its handler runs, and changes nothing', async () => {
    const door = cluster.client.getGrain(Door, 'refusing');
    await door.ask('open');
    const before = await door.ask('read');
    const error = await door.ask('open').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidMessageForStateError);
    expect(error).toMatchObject({ code: 'INVALID_MESSAGE_FOR_STATE', state: 'OPEN', messageName: 'open' });
    await expect(door.ask('lock', '1234')).rejects.toMatchObject({ state: 'OPEN', messageName: 'lock' });
    // The handler did not run: `opened` would have counted it.
    expect(await door.ask('read')).toEqual(before);
  });

  it('refuses a handler that writes the status or the history itself, and changes nothing', async () => {
    const door = cluster.client.getGrain(Door, 'forced');
    await door.ask('open');
    const before = await door.ask('read');
    for (const clearHistory of [false, true]) {
      await expect(door.ask('force', 'NOWHERE', clearHistory)).rejects.toMatchObject({
        message: 'Door.force wrote state.status or state.history, which the runtime keeps: declare the transition in the machine instead',
      });
    }
    expect(await door.ask('read')).toEqual(before);
    await door.ask('close');
    expect((await door.ask('read')).status).toBe('CLOSED');
  });

  it('moves nothing when the handler throws; a handler picks among several targets, and must pick', async () => {
    const door = cluster.client.getGrain(Door, 'kicked');
    await expect(door.ask('lock', '0000')).rejects.toThrow('wrong code');
    expect((await door.ask('read')).status).toBe('CLOSED');
    await expect(door.ask('kick')).rejects.toThrow('Door.kick leads from CLOSED to OPEN or BROKEN: pick one with this.moveTo(...)');
    await expect(door.ask('kick', 'LOCKED')).rejects.toThrow('Door.kick leads from CLOSED to OPEN or BROKEN, not to LOCKED');
    expect((await door.ask('read')).history).toEqual([]);
    await door.ask('lock', '1234');
    await door.ask('kick', 'BROKEN');
    const state = await door.ask('read');
    expect(state.history.map((t) => [t.from, t.to, t.message])).toEqual([
      ['CLOSED', 'LOCKED', 'lock'],
      ['LOCKED', 'BROKEN', 'kick'],
    ]);
    // BROKEN is terminal: nothing routed is accepted any more.
    await expect(door.ask('unlock')).rejects.toMatchObject({ state: 'BROKEN', messageName: 'unlock' });
  });

  it('keeps the state and its history across deactivation and a silo restart', async () => {
    const door = cluster.client.getGrain(Door, 'durable');
    await door.ask('open', 'bob');
    await door.ask('close');
    await cluster.stop();
    await cluster.start();
    const state = await door.ask('read');
    expect(state.status).toBe('CLOSED');
    expect(state.history.map((t) => [t.from, t.to, t.actor])).toEqual([
      ['CLOSED', 'OPEN', 'bob'],
      ['OPEN', 'CLOSED', undefined],
    ]);
    expect(state.history[0]?.at).toBeInstanceOf(Date);
    await expect(door.ask('close')).rejects.toBeInstanceOf(InvalidMessageForStateError);
  });

  it('refuses at start a machine that names a state or handler the class does not have', async () => {
    class Broken extends StateMachineGrain<MachineState<'CLOSED' | 'OPEN'>> {
      static readonly type = 'BrokenDoor';
      // As plain JavaScript could declare it: the compiler would refuse `fly`.
      static readonly machine = { initial: 'CLOSED', states: { CLOSED: { fly: 'OPEN' }, OPEN: {} } } as never;
      initialState() {
        return { status: 'CLOSED' as const, history: [] };
      }
      async open() {}
    }
    await expect(Silo.start({ redis: testRedis(), grains: [Broken], keyPrefix: 'unused', logLevel: 'silent' })).rejects.toThrow(
      new InvalidGrainClassError('BrokenDoor.machine: CLOSED accepts "fly", which is not a handler of the class'),
    );
  });

  it('prints the machine as a Mermaid state diagram with `redgrain diagram`', async () => {
    const { stdout } = await execFileAsync('node', [
      '--import',
      'tsx',
      'src/cli/bin.ts',
      'diagram',
      'test/grains/machine-grains.ts',
      '--type',
      'Door',
    ]);
    expect(stdout).toBe(
      [
        'stateDiagram-v2',
        '  [*] --> CLOSED',
        '  CLOSED --> OPEN: open',
        '  CLOSED --> LOCKED: lock',
        '  CLOSED --> OPEN: kick',
        '  CLOSED --> BROKEN: kick',
        '  OPEN --> CLOSED: close',
        '  LOCKED --> CLOSED: unlock',
        '  LOCKED --> LOCKED: kick',
        '  LOCKED --> BROKEN: kick',
        '  BROKEN --> [*]',
        '',
      ].join('\n'),
    );
  });

  it('draws states whose names are not plain identifiers by an alias carrying the name', () => {
    const machine = { initial: 'A b', states: { 'A b': { go: 'C-->D' }, 'C-->D': { stop: 'E:F' }, 'E:F': {} }, terminal: ['E:F'] };
    expect(mermaidDiagram(machine)).toBe(
      [
        'stateDiagram-v2',
        '  state "A b" as s0',
        '  state "C-->D" as s1',
        '  state "E:F" as s2',
        '  [*] --> s0',
        '  s0 --> s1: go',
        '  s1 --> s2: stop',
        '  s2 --> [*]',
        '',
      ].join('\n'),
    );
  });
});
