import { describe, expect, it } from 'vitest';
import { Grain } from 'redgrain';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';

interface PulseState {
  beats: number;
  marks: string[];
  overlaps: number;
}

class Pulse extends Grain<PulseState> {
  static readonly type = 'Pulse';
  static readonly collectionAgeMs = 400;
  #inHandler = false;

  initialState(): PulseState {
    return { beats: 0, marks: [], overlaps: 0 };
  }
  async start(every: number, keepAlive = false) {
    this.setTimer('beat', { every, keepAlive }, 'beat');
  }
  async beat() {
    if (this.#inHandler) this.state.overlaps += 1;
    this.state.beats += 1;
  }
  async stop() {
    return this.clearTimer('beat');
  }
  /** A one-shot timer: the event the tests wait on. */
  async markAfter(ms: number, mark: string) {
    this.setTimer(`mark-${mark}`, { after: ms }, 'mark', mark);
  }
  async mark(mark: string) {
    this.state.marks.push(mark);
  }
  async slow(ms: number) {
    this.#inHandler = true;
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.#inHandler = false;
  }
  async badTimer() {
    this.setTimer('bad', { after: 10, every: 10 }, 'beat');
  }
  /** A schedule as an untyped caller may give it. */
  async oddTimer(name: string, schedule: unknown) {
    (this as unknown as { setTimer(n: string, s: unknown, m: string): void }).setTimer(name, schedule, 'beat');
  }
  /** A timer for a method name known only at run time: checked when set. */
  async byName(method: string) {
    (this as unknown as { setTimer(n: string, s: object, m: string, ...a: unknown[]): void }).setTimer(
      'named',
      { after: 10 },
      method,
      'named',
    );
  }
  async read() {
    return this.state;
  }
}

describe('timers', () => {
  const cluster = inProcessSilo('timers', [Pulse]);
  const { log } = cluster;

  const marked = (key: string, mark: string) =>
    waitFor(`${key} to record ${mark}`, async () => {
      const state = await cluster.client.getGrain(Pulse, key).ask('read');
      return state.marks.includes(mark) ? state : undefined;
    });

  it('ticks as turns of the grain, commits their state, and stops when cleared', async () => {
    const pulse = cluster.client.getGrain(Pulse, 'p1');
    await pulse.ask('start', 20, true);
    await waitFor('three beats', async () => ((await pulse.ask('read')).beats >= 3 ? true : undefined));
    expect(await pulse.ask('stop')).toBe(true);
    const stopped = (await pulse.ask('read')).beats;
    // A one-shot timer 200 ms later: at 20 ms a period, ten beats would have come meanwhile.
    await pulse.ask('markAfter', 200, 'after-stop');
    expect((await marked('p1', 'after-stop')).beats).toBe(stopped);
  });

  it('never runs a tick while a handler is in its turn', async () => {
    const pulse = cluster.client.getGrain(Pulse, 'p2');
    await pulse.ask('start', 10, true);
    for (let i = 0; i < 5; i++) await pulse.ask('slow', 40);
    const state = await waitFor('beats between the slow turns', async () => {
      const s = await pulse.ask('read');
      return s.beats >= 5 ? s : undefined;
    });
    expect(state.overlaps).toBe(0);
    await pulse.ask('stop');
  });

  it('does not keep a grain from idle collection unless keepAlive, and stops at deactivation', async () => {
    const idle = cluster.client.getGrain(Pulse, 'idle');
    const kept = cluster.client.getGrain(Pulse, 'kept');
    await idle.ask('start', 30);
    await kept.ask('start', 30, true);
    await waitFor('the grain without keepAlive to be collected', () => (cluster.silo.activationCount === 1 ? true : undefined));
    // What is left active is the keepAlive one: asking it does not activate anything new.
    await kept.ask('stop');
    expect(cluster.silo.activationCount).toBe(1);
    // The collected grain's timer is gone: its persisted beats stay where they were.
    const afterCollection = (await idle.ask('read')).beats;
    expect(afterCollection).toBeGreaterThan(0);
    await idle.ask('markAfter', 200, 'reactivated');
    expect((await marked('idle', 'reactivated')).beats).toBe(afterCollection);
  });

  it('refuses a bad schedule', async () => {
    await expect(cluster.client.getGrain(Pulse, 'bad').ask('badTimer')).rejects.toMatchObject({ code: 'INVALID_TIMER' });
    // A period that would keep the grain busy with ticks, no schedule at all, a name past 256.
    for (const [name, schedule, message] of [
      ['fast', { every: 0.5 }, 'Timer "fast": every must be at least 10 ms, got 0.5'],
      ['none', null, 'Timer "none": a schedule is required'],
      ['x'.repeat(257), { after: 10 }, 'A timer needs a name of 1 to 256 characters'],
    ] as const) {
      await expect(cluster.client.getGrain(Pulse, 'bad').ask('oddTimer', name, schedule)).rejects.toMatchObject({
        code: 'INVALID_TIMER',
        message,
      });
    }
    await expect(cluster.client.getGrain(Pulse, 'bad').ask('byName', 'nope')).rejects.toMatchObject({ code: 'UNKNOWN_METHOD' });
    await cluster.client.getGrain(Pulse, 'bad').ask('byName', 'mark');
    await marked('bad', 'named');
    log.expectQuiet();
  });
});
