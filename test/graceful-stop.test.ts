import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import { connect, Grain, RedisUnavailableError, Silo, type GrainClient } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { Alarm } from './grains/alarm.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

/** How long each turn takes; longer than the lock, so a batch outlives it unless renewed. */
const TURN_MS = 800;
const LOCK_MS = 1_000;

/** Every handler run in this process, in order, and who is waiting to hear of the next start. */
const runs: number[] = [];
const startWaiters = new Map<number, () => void>();

function started(n: number): Promise<void> {
  return new Promise((resolve) => startWaiters.set(n, resolve));
}

/** A grain whose turns are slow: each records that it ran (an effect outside its state). */
class SlowStep extends Grain<{ done: number[] }> {
  static readonly type = 'SlowStep';
  initialState() {
    return { done: [] as number[] };
  }
  async step(n: number) {
    runs.push(n);
    startWaiters.get(n)?.();
    await new Promise((resolve) => setTimeout(resolve, TURN_MS));
    this.state.done.push(n);
  }
  /** A turn of `ms`. */
  async slow(n: number, ms: number) {
    runs.push(n);
    startWaiters.get(n)?.();
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.state.done.push(n);
  }
  async done() {
    return this.state.done;
  }
}

/**
 * `silo.stop()` in the middle of a batch of long turns: the turn in progress finishes and commits
 * with the turns before it (its locks renewed until then, though the batch outlives the lock), and
 * the turns that did not start are handed back in order to the other silo. Every handler runs once.
 */
describe('graceful stop', () => {
  const keyPrefix = freshPrefix('stop');
  const logA = new LogRecorder();
  const logB = new LogRecorder();
  let client: GrainClient;
  let silos: Silo[] = [];

  beforeAll(async () => {
    // A silo has hosted the type (so clients may address it); none runs while the backlog builds.
    await (await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [SlowStep] })).stop();
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    for (const silo of silos) await silo.stop();
  });

  it('commits the turns that ran, hands back those that did not start, and runs each once', async () => {
    const grain = client.getGrain(SlowStep, 'batch');
    for (let n = 1; n <= 7; n++) await grain.send('step', n);
    const thirdStarted = started(3);
    // The first take is one message (nothing was waiting before it); its commit takes the other 6.
    const a = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [SlowStep], logger: logA, lockDurationMs: LOCK_MS });
    silos.push(a);
    const b = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [SlowStep], logger: logB, lockDurationMs: LOCK_MS });
    silos.push(b);
    await thirdStarted; // 1 ran alone; 2 ran and 3 is running, the second turn of the batch 2..7
    await a.stop();
    silos = silos.filter((silo) => silo !== a);
    // a committed 2 and 3 before it stopped; 4..7 were handed back and ran on b, none twice.
    expect(await grain.ask('done')).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(runs).toEqual([1, 2, 3, 4, 5, 6, 7]);
    logA.expectQuiet();
    logB.expectQuiet();
  });

  it('keeps heartbeating while it finishes a turn longer than the silence window: it is not declared dead', async () => {
    // A 1 s silence window (5 beats of 200 ms) and turns of 800 ms: the stop outlives the window.
    const fast = { redis: inject('redisUrl'), keyPrefix, grains: [SlowStep], heartbeatIntervalMs: 200, missedHeartbeatsLimit: 5 };
    // Only silos of these settings: one beating more slowly than the window would be judged dead.
    for (const silo of silos) await silo.stop();
    silos = [];
    const logC = new LogRecorder();
    const logD = new LogRecorder();
    const c = await Silo.start({ ...fast, logger: logC });
    const d = await Silo.start({ ...fast, logger: logD });
    silos.push(c, d);
    // Both silos have been healthy for a whole window, so d judges c.
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // the window itself, not a wait for an event
    const grain = client.getGrain(SlowStep, 'long-stop');
    expect(await grain.ask('done')).toEqual([]);
    const owner = c.activationCount > 0 ? c : d;
    const before = runs.length;
    const firstStarted = started(10);
    // A turn of 2.5 s (twice the window), then one queued behind it.
    await grain.send('slow', 10, 2_500);
    await grain.send('step', 11);
    await firstStarted;
    await owner.stop();
    silos = silos.filter((silo) => silo !== owner);
    onTestFailed(() => {
      for (const [name, log] of [
        ['c', logC],
        ['d', logD],
      ] as const) {
        for (const e of log.entries) process.stdout.write(`${name} ${e.level} ${e.message} ${JSON.stringify(e.fields)}\n`);
      }
    });
    expect(await grain.ask('done')).toEqual([10, 11]);
    expect(runs.slice(before)).toEqual([10, 11]);
    const otherLog = owner === c ? logD : logC;
    expect(otherLog.entries.filter((e) => /silent silo/.test(e.message)).map((e) => e.message)).toEqual([]);
    (owner === c ? logC : logD).expectQuiet();
  });
});

/**
 * A stop while Redis is gone cannot hand anything over; it must still end: the silo releases what
 * it holds in this process, says why with a typed error, and `stopped` resolves. What it held is
 * taken over once the cluster declares it dead, as after a crash.
 */
describe('stop while Redis is gone', () => {
  it('rejects with RedisUnavailableError within a bounded time, and the silo ends', async () => {
    const server = await startRedisServer();
    try {
      const log = new LogRecorder();
      const silo = await Silo.start({ redis: server.url, keyPrefix: 'gone', grains: [SlowStep], logger: log });
      const client = await connect({ redis: server.url, keyPrefix: 'gone' });
      expect(await client.getGrain(SlowStep, 'g').ask('done')).toEqual([]);
      await client.close();
      await server.kill();
      const began = Date.now();
      const stopping = silo.stop();
      await expect(stopping).rejects.toBeInstanceOf(RedisUnavailableError);
      await expect(stopping).rejects.toThrow(/stopped without handing over/);
      expect(await silo.stopped).toBe('stopped');
      expect(silo.status).toBe('left');
      expect(silo.activationCount).toBe(0);
      // The membership write times out (5 s), then the reminder workers get 5 s to close.
      expect(Date.now() - began).toBeLessThan(20_000);
      log.expectQuiet([/Redis failed while stopping/, /reminder worker error/, /inbox read failed/, /heartbeat/, /error while releasing/]);
    } finally {
      await server.stop();
    }
  }, 40_000);

  it('leaves nothing behind that keeps the process alive: it exits by itself once the stop settled', async () => {
    const server = await startRedisServer();
    const script = fileURLToPath(new URL('./support/stop-without-redis.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, server.url], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const exited = once(child, 'exit');
      expect((await lines.next()).value).toBe('ready');
      await server.kill();
      child.stdin.end('stop\n');
      expect((await lines.next()).value).toBe('stopped RedisUnavailableError ok');
      const stopped = Date.now();
      // Before, the commands in flight when Redis died kept their timers (a reminder worker's
      // blocking read: 65 s) after the stop, and the process lived on until they fired.
      const ended = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
      expect(ended).toEqual([0, null]);
      expect(Date.now() - stopped).toBeLessThan(10_000);
    } finally {
      child.kill('SIGKILL');
      await server.stop();
    }
  }, 60_000);
});

/**
 * Reminders and a stop after a Redis restart (the lost commands behind both are tested one by one
 * in dropped-commands.test.ts): ticks resume, and the stop does not wait for anything lost.
 */
describe('after a Redis restart', () => {
  it('reminders tick again at once, and a stop is as quick as before the restart', async () => {
    const server = await startRedisServer({ appendOnly: true });
    try {
      const log = new LogRecorder();
      const silo = await Silo.start({ redis: server.url, keyPrefix: 'restarted', grains: [Alarm], logger: log });
      const client = await connect({ redis: server.url, keyPrefix: 'restarted' });
      const alarm = client.getGrain(Alarm, 'beating');
      await alarm.ask('set', 'beat', { every: 200 });
      await waitFor('two beats', async () => ((await alarm.ask('read')).length >= 2 ? true : undefined));
      await server.kill();
      await server.restart();
      const back = (await alarm.ask('read')).length;
      // At most BullMQ's longest blocking wait (10 s), when the worker had already taken the
      // marker of the next due tick (it took 65 s when its lost read was left to time out).
      await waitFor('three more beats', async () => ((await alarm.ask('read')).length >= back + 3 ? true : undefined), {
        timeoutMs: 20_000,
      });
      await client.close();
      const began = Date.now();
      await silo.stop();
      // 5 s when the reminder worker's close waited for a lost read.
      expect(Date.now() - began).toBeLessThan(2_000);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
