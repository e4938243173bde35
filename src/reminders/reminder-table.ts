import { Queue, type RedisQueueBackend } from 'bullmq';
import calculateSlot from 'cluster-key-slot';
import { CronExpressionParser } from 'cron-parser';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../redis/connection.ts';
import { InvalidTimerError, describeError } from '../errors/errors.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';

/** What to do with the ticks of an `every` reminder that fell while no silo could deliver them. */
export type MissedTickPolicy = 'once' | 'skip' | 'all';

/**
 * When a reminder fires: once `at` a time or `after` ms, or repeatedly `every` ms or on a `cron`
 * pattern (5 or 6 fields, in `tz` or UTC). `missed` applies to ticks that fell while the cluster
 * was down: `once` (default) delivers one late tick, `skip` drops late ticks, `all` delivers
 * every missed tick of an `every` reminder (a `cron` reminder treats `all` as `once`).
 */
export type ReminderSchedule = (
  | { at: Date | number }
  | { after: number }
  | { every: number }
  | { cron: string; tz?: string | undefined }
) & { missed?: MissedTickPolicy | undefined };

/** A registered reminder, as `reminders()` lists it. */
export interface ReminderInfo {
  name: string;
  method: string;
  schedule: ReminderSchedule;
  registeredAt: Date;
}

/** The tick a reminder delivers: handlers deduplicate on `id`. */
export interface ReminderTick {
  /** The reminder's name. */
  name: string;
  /** Unique per reminder and scheduled time: `<name>@<scheduled ms>`. */
  id: string;
  /** When the tick was due. */
  scheduledAt: Date;
}

/** The data of a reminder's BullMQ job. */
export interface ReminderJobData {
  /** Grain tag. */
  g: string;
  /** Reminder name. */
  n: string;
  /** Method. */
  m: string;
  /** Serialized arguments. */
  a: string;
  /** Missed-tick policy. */
  p: MissedTickPolicy;
  /** Period of an `every` reminder (ms). */
  e?: number;
  /** A one-shot reminder. */
  o?: true;
}

/** The BullMQ queue (under the application's BullMQ prefix) that holds every reminder on one Redis. */
export const REMINDER_QUEUE = 'reminders';

/** Redis Cluster's hash slots. */
const SLOTS = 16_384;

/** How many reminder queues a Redis Cluster spreads reminders over. */
export const CLUSTER_REMINDER_QUEUES = 6;

/**
 * The reminder queues on a Redis Cluster. BullMQ's scripts touch several keys of a queue at once,
 * so each name is its own hash tag (one slot). Queue `i` serves the grains whose slots lie in the
 * i-th sixth of the slot range, and its name is the first `reminders-<i><letters>` whose own slot
 * lies in the middle of that sixth: a master that serves a share of the slots holds the reminders
 * of its share's grains, and no master holds them all.
 */
const CLUSTER_QUEUES: readonly string[] = Array.from({ length: CLUSTER_REMINDER_QUEUES }, (_, i) => {
  const width = SLOTS / CLUSTER_REMINDER_QUEUES;
  const inMiddle = (name: string) => {
    const slot = calculateSlot(name);
    return slot >= i * width + width / 3 && slot < i * width + (2 * width) / 3;
  };
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const suffixes = [...letters.split(''), ...letters.split('').flatMap((a) => letters.split('').map((b) => a + b))];
  const suffix = suffixes.find((candidate) => inMiddle(`reminders-${i}${candidate}`));
  if (suffix === undefined) throw new Error(`no reminder queue name for slot range ${i}`);
  return `{reminders-${i}${suffix}}`;
});

/**
 * The reminder queues on a connection: one (`reminders`) on one Redis, {@link CLUSTER_REMINDER_QUEUES}
 * on a Redis Cluster. Every silo runs a worker on each.
 */
export function reminderQueues(redis: RedisClient): readonly string[] {
  return redis instanceof Cluster ? CLUSTER_QUEUES : [REMINDER_QUEUE];
}

/** The queue that holds `grain`'s reminders: the one whose share of the slot range holds the grain's slot. */
function queueOf(queues: readonly string[], grain: GrainId): string {
  if (queues.length === 1) return queues[0] as string;
  return queues[Math.floor((calculateSlot(grain.tag) * queues.length) / SLOTS)] as string;
}

const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 1_000, attempts: 5, backoff: { type: 'exponential', delay: 500 } } as const;

/**
 * Durable reminders, stored with BullMQ: a repeating reminder is a Job Scheduler and a one-shot
 * one a delayed job, both in one queue whose delayed set is ordered by due time, so only due
 * reminders are ever read. Each grain also keeps a hash of its reminders, for listing.
 */
export class ReminderTable {
  readonly #queues = new Map<string, Queue>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly root: RedisQueueBackend,
  ) {}

  /** The queue that holds `grain`'s reminders (opened on first use). */
  #queueOf(grain: GrainId): Queue {
    const name = queueOf(reminderQueues(this.redis), grain);
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new Queue(
        name,
        { connection: this.redis, prefix: this.keys.bullPrefix, skipMetasUpdate: true },
        () => this.root.forQueue(name) as RedisQueueBackend,
      );
      queue.on('error', () => undefined); // failures reject the calls themselves
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Registers (or replaces) a reminder of `grain`; `dueAt` fixes when a one-shot one fires. */
  async register(
    grain: GrainId,
    name: string,
    schedule: ReminderSchedule,
    method: string,
    serializedArgs: string,
    dueAt?: number,
  ): Promise<void> {
    const checked = validate(name, schedule);
    // Registered from an outbox after the turn that asked: a one-shot reminder keeps its due time.
    const plan = checked.kind === 'once' && dueAt !== undefined ? { ...checked, at: dueAt } : checked;
    await this.forget(grain, name);
    // Listed first: a reminder in BullMQ is always listed, so `forget` finds whatever exists.
    const info = {
      kind: plan.kind,
      method,
      schedule: { ...schedule, ...('at' in schedule ? { at: new Date(schedule.at).getTime() } : {}) },
      registeredAt: Date.now(),
    };
    await this.redis.hset(this.keys.reminders(grain), name, JSON.stringify(info));
    const id = reminderId(grain, name);
    const data: ReminderJobData = { g: grain.tag, n: name, m: method, a: serializedArgs, p: plan.missed };
    if (plan.kind === 'once') {
      await this.#queueOf(grain).add(
        'tick',
        { ...data, o: true },
        { ...JOB_OPTIONS, jobId: `once/${id}`, delay: Math.max(0, plan.at - Date.now()) },
      );
    } else {
      // An `every` reminder first fires one period from now (BullMQ's default would be now).
      const repeat =
        plan.kind === 'every'
          ? { every: plan.every, startDate: Date.now() + plan.every }
          : { pattern: plan.cron, ...(plan.tz === undefined ? {} : { tz: plan.tz }) };
      await this.#queueOf(grain).upsertJobScheduler(id, repeat, {
        name: 'tick',
        data: { ...data, ...(plan.kind === 'every' ? { e: plan.every } : {}) },
        opts: JOB_OPTIONS,
      });
    }
  }

  /** Removes a reminder; returns whether it existed. */
  async forget(grain: GrainId, name: string): Promise<boolean> {
    const listed = await this.redis.hget(this.keys.reminders(grain), name);
    if (listed === null) return false;
    const id = reminderId(grain, name);
    const { kind } = JSON.parse(listed) as { kind: Plan['kind'] };
    const queue = this.#queueOf(grain);
    if (kind === 'once') await queue.remove(`once/${id}`);
    else await queue.removeJobScheduler(id);
    await this.redis.hdel(this.keys.reminders(grain), name);
    return true;
  }

  /** Whether `grain` has a reminder named `name`. */
  async has(grain: GrainId, name: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.reminders(grain), name)) === 1;
  }

  /** The reminders a grain has registered. */
  async list(grain: GrainId): Promise<ReminderInfo[]> {
    const fields = await this.redis.hgetall(this.keys.reminders(grain));
    return Object.entries(fields)
      .map(([name, text]) => {
        const info = JSON.parse(text) as { method: string; schedule: ReminderSchedule; registeredAt: number };
        const schedule = 'at' in info.schedule ? { ...info.schedule, at: new Date(info.schedule.at) } : info.schedule;
        return { name, method: info.method, schedule, registeredAt: new Date(info.registeredAt) };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Drops the listing of a one-shot reminder once it has fired. */
  async fired(grain: GrainId, name: string): Promise<void> {
    await this.redis.hdel(this.keys.reminders(grain), name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
  }
}

/**
 * Checks a reminder's name and schedule (throwing InvalidTimerError) and returns when a one-shot
 * reminder is due (undefined for a repeating one), so one registered later (from a grain's outbox)
 * still fires when it was asked to.
 */
export function dueTime(name: string, schedule: ReminderSchedule): number | undefined {
  const plan = validate(name, schedule);
  return plan.kind === 'once' ? plan.at : undefined;
}

/** The id of a reminder in BullMQ: grain tag and name, with nothing BullMQ reserves (`:`). */
function reminderId(grain: GrainId, name: string): string {
  return `${grain.tag}/${encodeURIComponent(name)}`;
}

type Plan =
  | { kind: 'once'; at: number; missed: MissedTickPolicy }
  | { kind: 'every'; every: number; missed: MissedTickPolicy }
  | { kind: 'cron'; cron: string; tz: string | undefined; missed: MissedTickPolicy };

function validate(name: string, schedule: ReminderSchedule): Plan {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new InvalidTimerError('A reminder needs a name of 1 to 256 characters');
  }
  if (typeof schedule !== 'object' || schedule === null) throw new InvalidTimerError(`Reminder "${name}": a schedule is required`);
  const missed = schedule.missed ?? 'once';
  if (missed !== 'once' && missed !== 'skip' && missed !== 'all') {
    throw new InvalidTimerError(`Reminder "${name}": missed must be 'once', 'skip' or 'all'`);
  }
  const kinds = (['at', 'after', 'every', 'cron'] as const).filter((k) => k in schedule);
  if (kinds.length !== 1) throw new InvalidTimerError(`Reminder "${name}": give exactly one of at, after, every or cron`);
  if ('at' in schedule) {
    const at = new Date(schedule.at).getTime();
    if (!Number.isFinite(at)) throw new InvalidTimerError(`Reminder "${name}": at must be a Date or a time in ms`);
    return { kind: 'once', at, missed };
  }
  if ('after' in schedule) {
    if (!Number.isFinite(schedule.after) || schedule.after < 0)
      throw new InvalidTimerError(`Reminder "${name}": after must be a number of ms`);
    return { kind: 'once', at: Date.now() + schedule.after, missed };
  }
  if ('every' in schedule) {
    if (!Number.isFinite(schedule.every) || schedule.every < 10)
      throw new InvalidTimerError(`Reminder "${name}": every must be at least 10 ms`);
    return { kind: 'every', every: schedule.every, missed };
  }
  if (typeof schedule.cron !== 'string' || !/^\S+(\s+\S+){4,5}$/.test(schedule.cron.trim())) {
    throw new InvalidTimerError(`Reminder "${name}": cron must be a 5- or 6-field pattern, got ${JSON.stringify(schedule.cron)}`);
  }
  const cron = schedule.cron.trim();
  if (schedule.tz !== undefined && typeof schedule.tz !== 'string')
    throw new InvalidTimerError(`Reminder "${name}": tz must be a time zone name`);
  // Parsed as BullMQ's scheduler will parse it, with its next time computed: a field out of range,
  // an impossible date or an unknown time zone is refused here, not when the turn's outbox is
  // carried out (where it could only fail for ever).
  try {
    CronExpressionParser.parse(cron, schedule.tz === undefined ? {} : { tz: schedule.tz }).next();
  } catch (error) {
    throw new InvalidTimerError(
      `Reminder "${name}": cron ${JSON.stringify(cron)}${schedule.tz === undefined ? '' : ` in ${JSON.stringify(schedule.tz)}`} cannot be scheduled (${describeError(error)})`,
    );
  }
  return { kind: 'cron', cron, tz: schedule.tz, missed };
}
