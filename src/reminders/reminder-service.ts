import { Worker, type Job } from 'bullmq';
import type { GrainClient } from '../client/grain-client.ts';
import { describeError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import { closeRedis, openRedis, type RedisConnectionInput, type RedisClient } from '../redis/connection.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { Logger } from '../telemetry/logger.ts';
import { reminderQueues, type ReminderJobData, type ReminderTable } from './reminder-table.ts';

/** How many reminders one silo delivers at once, per reminder queue. */
const CONCURRENCY = 16;
/**
 * How long the worker's blocking read waits when nothing is due (s). BullMQ wakes it at the due
 * time of the next delayed reminder anyway, so a long wait only saves idle commands.
 */
const IDLE_WAIT_SECONDS = 60;
/** How long a stopping silo waits for its reminder workers to finish what they fetched. */
const CLOSE_WAIT_MS = 5_000;
/** A late `cron` tick is skipped (policy `skip`) past this lateness. */
const CRON_SKIP_AFTER_MS = 60_000;

/** The scheduled times to deliver for one fired reminder job, by its missed-tick policy. */
export function ticksToDeliver(data: Pick<ReminderJobData, 'p' | 'e' | 'o'>, scheduledAt: number, now: number): number[] {
  if (data.o === true) return [scheduledAt]; // a one-shot reminder always fires once
  const lateness = now - scheduledAt;
  const period = data.e;
  const late = period === undefined ? lateness > CRON_SKIP_AFTER_MS : lateness >= period;
  if (!late) return [scheduledAt];
  if (data.p === 'skip') return [];
  if (data.p === 'all' && period !== undefined) {
    return Array.from({ length: Math.floor(lateness / period) + 1 }, (_, i) => scheduledAt + i * period);
  }
  return [scheduledAt];
}

/**
 * Delivers due reminders: a BullMQ worker on each reminders queue (every silo runs them; each due
 * reminder goes to one of them). A tick becomes a message in the grain's mailbox, so the grain is
 * activated wherever placement puts it. Delivery is at least once: each tick carries an
 * idempotency key made of its reminder and scheduled time, so a tick delivered twice (a silo died
 * between delivering and acknowledging it) runs once.
 */
export class ReminderService {
  readonly #workers: Worker<ReminderJobData>[];

  private constructor(
    private readonly connection: RedisClient,
    private readonly client: GrainClient,
    private readonly table: ReminderTable,
    private readonly log: Logger,
    keys: RedisKeys,
  ) {
    // One worker per reminder queue (one on one Redis); each has its own blocking connection.
    // Connection errors during a Redis outage are expected and retried by BullMQ; only say so once a minute.
    let lastWarned = 0;
    this.#workers = reminderQueues(connection).map((queue) => {
      const worker = new Worker<ReminderJobData>(queue, (job) => this.#fire(job), {
        connection,
        prefix: keys.bullPrefix,
        concurrency: CONCURRENCY,
        drainDelay: IDLE_WAIT_SECONDS,
      });
      worker.on('error', (error) => {
        if (Date.now() - lastWarned < 60_000) return;
        lastWarned = Date.now();
        log.warn('reminder worker error (retrying)', { error: describeError(error) });
      });
      worker.on('failed', (job, error) =>
        log.warn('a reminder could not be delivered; retrying', { reminder: job?.data.n, grain: job?.data.g, error: describeError(error) }),
      );
      return worker;
    });
  }

  static start(
    input: RedisConnectionInput,
    name: string,
    keys: RedisKeys,
    client: GrainClient,
    table: ReminderTable,
    log: Logger,
  ): ReminderService {
    const connection = openRedis(input, name, { blockingSeconds: IDLE_WAIT_SECONDS });
    return new ReminderService(connection, client, table, log, keys);
  }

  async #fire(job: Job<ReminderJobData>): Promise<void> {
    const data = job.data;
    const grain = GrainId.fromTag(data.g);
    const scheduledAt = job.opts.prevMillis ?? job.timestamp + (job.opts.delay ?? 0);
    const ticks = ticksToDeliver(data, scheduledAt, Date.now());
    if (ticks.length === 0) this.log.info('skipped a late reminder tick', { grain: grain.toString(), reminder: data.n, scheduledAt });
    for (const at of ticks) {
      await this.client.deliverTick(grain, data.m, data.a, { n: data.n, id: `${data.n}@${at}`, at });
    }
    if (data.o === true) await this.table.fired(grain, data.n);
  }

  /**
   * Stops delivering. Not forced by default: a worker first finishes what it has fetched, and
   * fetching a repeating reminder's tick is also when BullMQ schedules its next one, so a forced
   * close that dropped the connection in between left the reminder without a next tick until the
   * fetched one stalled and was fetched again (a minute late). BullMQ ends the blocking read at
   * once. Bounded (Redis may be down): past CLOSE_WAIT_MS the connection is closed anyway, and a
   * tick being delivered then is delivered again by another silo once its lock expires, and runs
   * once (its idempotency key). With `force` (Redis failed: a graceful close waits on commands
   * that wait for Redis, and a pending close cannot be forced later, while BullMQ keeps the
   * worker's timers and blocking connection going, so the process would not exit), the workers
   * are closed at once.
   */
  async close(force = false): Promise<void> {
    await Promise.allSettled(
      this.#workers.map((worker) => {
        let timer: NodeJS.Timeout | undefined;
        const waited = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_WAIT_MS);
        });
        return Promise.race([worker.close(force), waited]).finally(() => clearTimeout(timer));
      }),
    );
    if (force) this.connection.disconnect();
    else await closeRedis(this.connection);
  }
}
