import { Grain, type ReminderSchedule } from 'redgrain';

export interface RecordedTick {
  label: string;
  id: string;
  scheduledAt: number;
  ranAt: number;
}

/** Records every reminder tick it gets: what the reminder tests check. */
export class Alarm extends Grain<{ ticks: RecordedTick[] }> {
  static readonly type = 'Alarm';

  initialState() {
    return { ticks: [] as RecordedTick[] };
  }
  async set(name: string, schedule: ReminderSchedule) {
    await this.remind(name, schedule, 'ring', name);
  }
  async ring(label: string) {
    const tick = this.reminderTick;
    this.state.ticks.push({ label, id: tick?.id ?? '', scheduledAt: tick?.scheduledAt.getTime() ?? 0, ranAt: Date.now() });
  }
  async cancel(name: string) {
    return this.forget(name);
  }
  async list() {
    return this.reminders();
  }
  async read() {
    return this.state.ticks;
  }
}
