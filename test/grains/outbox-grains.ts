import { Grain } from 'redgrain';

/** Receives what Emitters send and publish, in arrival order. */
export class Sink extends Grain<{ got: string[] }> {
  static readonly type = 'Sink';

  initialState() {
    return { got: [] };
  }

  async record(from: string, n: number) {
    this.state.got.push(`${from}:${n}`);
  }

  async listen(pattern: string) {
    await this.subscribe(pattern, 'heard');
  }

  async heard(topic: string, data: unknown) {
    this.state.got.push(`heard ${topic} ${JSON.stringify(data)}`);
  }

  async read() {
    return this.state.got;
  }
}

/** Makes effects from its turns: sends, publishes, reminders, subscriptions. */
export class Emitter extends Grain<{ emitted: number }> {
  static readonly type = 'Emitter';
  /** Handler runs per key, in this process. */
  static readonly runs = new Map<string, number>();
  /** Resolves the next time `slowEmit` has made its send and is waiting. */
  static sent: (() => void) | undefined;

  initialState() {
    return { emitted: 0 };
  }

  async emit(n: number) {
    this.state.emitted += 1;
    await this.getGrain(Sink, 'sink').send('record', this.key, n);
  }

  /** Every kind of effect, then a throw: none of them may happen. */
  async everythingThenThrow() {
    this.state.emitted += 1;
    await this.getGrain(Sink, 'sink').send('record', this.key, -1);
    await this.publish('outbox.thrown', { n: -1 });
    await this.remind('never', { after: 60_000 }, 'noop');
    await this.subscribe('outbox.*', 'noop');
    throw new Error('changed my mind');
  }

  /** Sends, then waits `ms` before the turn ends. */
  async slowEmit(n: number, ms: number) {
    Emitter.runs.set(this.key, (Emitter.runs.get(this.key) ?? 0) + 1);
    await this.getGrain(Sink, 'sink').send('record', this.key, n);
    Emitter.sent?.();
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** A turn with no effect on other grains: counts its runs, changes state, answers the count after `ms`. */
  async slowCount(ms: number) {
    const run = (Emitter.runs.get(this.key) ?? 0) + 1;
    Emitter.runs.set(this.key, run);
    this.state.emitted += 1;
    Emitter.sent?.();
    await new Promise((resolve) => setTimeout(resolve, ms));
    return run;
  }

  async remindAndSubscribe() {
    await this.remind('later', { after: 60_000 }, 'noop');
    await this.subscribe('outbox.kept', 'noop');
    return { forgotten: await this.forget('later'), unsubscribed: await this.unsubscribe('outbox.kept') };
  }

  async effects() {
    return { reminders: (await this.reminders()).map((r) => r.name), subscriptions: (await this.subscriptions()).map((s) => s.pattern) };
  }

  async noop() {}
}
