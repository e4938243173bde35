import { InvalidTimerError } from '../errors/errors.ts';

/** When a timer fires: once `after` ms, or every `every` ms (the first tick `every` ms from now). */
export interface TimerSchedule {
  after?: number | undefined;
  every?: number | undefined;
  /** Whether ticks count as activity, keeping the grain from idle collection (default false). */
  keepAlive?: boolean | undefined;
}

/** A tick waiting for its turn. */
export interface TimerTick {
  name: string;
  method: string;
  args: unknown[];
  keepAlive: boolean;
}

interface Timer {
  handle: NodeJS.Timeout;
  tick: TimerTick;
  every: number | undefined;
}

/** Longest timer name (a reminder's too). */
const MAX_TIMER_NAME = 256;
/** Shortest period of a repeating timer (a reminder's too). */
const MIN_TIMER_PERIOD_MS = 10;

/**
 * The volatile timers of one activation. A firing timer only queues a tick; the activation runs
 * ticks as turns of their own between messages, so a tick never interleaves with a handler. A
 * timer whose previous tick has not run yet does not queue another (ticks coalesce). Timers live
 * in memory: they stop when the activation ends and are not restored by the next one.
 */
export class GrainTimers {
  readonly #timers = new Map<string, Timer>();
  readonly #due: TimerTick[] = [];

  constructor(private readonly onDue: () => void) {}

  set(name: string, schedule: TimerSchedule, method: string, args: unknown[]): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_TIMER_NAME) {
      throw new InvalidTimerError(`A timer needs a name of 1 to ${MAX_TIMER_NAME} characters`);
    }
    if (typeof schedule !== 'object' || schedule === null) throw new InvalidTimerError(`Timer "${name}": a schedule is required`);
    const { after, every } = schedule;
    if ((after === undefined) === (every === undefined)) {
      throw new InvalidTimerError(`Timer "${name}": give exactly one of { after } or { every }`);
    }
    const delay = (after ?? every) as number;
    if (!Number.isFinite(delay) || delay <= 0 || delay > 2_147_483_647) {
      throw new InvalidTimerError(`Timer "${name}": the delay must be a positive number of ms up to 2^31-1, got ${String(delay)}`);
    }
    // As for reminders: a period shorter than this would keep the grain busy with ticks alone.
    if (every !== undefined && every < MIN_TIMER_PERIOD_MS) {
      throw new InvalidTimerError(`Timer "${name}": every must be at least ${MIN_TIMER_PERIOD_MS} ms, got ${String(every)}`);
    }
    this.clear(name);
    const tick: TimerTick = { name, method, args, keepAlive: schedule.keepAlive === true };
    const timer: Timer = { handle: setTimeout(() => this.#fire(name), delay), tick, every };
    timer.handle.unref();
    this.#timers.set(name, timer);
  }

  clear(name: string): boolean {
    const timer = this.#timers.get(name);
    if (timer === undefined) return false;
    clearTimeout(timer.handle);
    this.#timers.delete(name);
    const pending = this.#due.findIndex((t) => t.name === name);
    if (pending >= 0) this.#due.splice(pending, 1);
    return true;
  }

  /** The next tick to run, if any. */
  takeDue(): TimerTick | undefined {
    return this.#due.shift();
  }

  get hasDue(): boolean {
    return this.#due.length > 0;
  }

  /** Stops every timer (the activation ends). */
  clearAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer.handle);
    this.#timers.clear();
    this.#due.length = 0;
  }

  #fire(name: string): void {
    const timer = this.#timers.get(name);
    if (timer === undefined) return;
    if (timer.every === undefined) this.#timers.delete(name);
    else {
      timer.handle = setTimeout(() => this.#fire(name), timer.every);
      timer.handle.unref();
    }
    if (!this.#due.some((t) => t.name === name)) this.#due.push(timer.tick);
    this.onDue();
  }
}
