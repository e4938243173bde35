import { Worker } from 'node:worker_threads';

/**
 * Kills this process when its event loop stays blocked longer than `deadlineMs` (a handler stuck
 * in a synchronous loop). A blocked silo can neither heartbeat nor finish its turn; killing it
 * turns the hang into a crash the cluster already handles: another silo takes the grains over,
 * and the message that hung counts an attempt towards the dead letters.
 *
 * The check runs on a worker thread, which keeps running while the main thread is blocked.
 */
export function startEventLoopWatchdog(deadlineMs: number): { stop(): void } {
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) throw new TypeError('The watchdog deadline must be a positive number of ms');
  const beat = new Int32Array(new SharedArrayBuffer(4));
  const ticker = setInterval(() => Atomics.add(beat, 0, 1), Math.max(10, Math.min(1_000, deadlineMs / 4)));
  ticker.unref();
  const worker = new Worker(
    `
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const { beat, deadlineMs } = workerData;
    let last = Atomics.load(beat, 0);
    let changedAt = Date.now();
    setInterval(() => {
      const now = Date.now();
      const value = Atomics.load(beat, 0);
      if (value !== last) { last = value; changedAt = now; return; }
      if (now - changedAt > deadlineMs) {
        // Straight to fd 2: a worker's process.stderr is relayed by the (blocked) main thread.
        writeSync(2, JSON.stringify({ time: new Date().toISOString(), level: 'error',
          msg: 'event loop blocked past the watchdog deadline; killing the silo', blockedMs: now - changedAt }) + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }
    }, Math.max(5, Math.min(250, deadlineMs / 4)));
    `,
    { eval: true, workerData: { beat, deadlineMs } },
  );
  worker.unref();
  return {
    stop() {
      clearInterval(ticker);
      void worker.terminate();
    },
  };
}
