import { describeError } from '../errors/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { MembershipTable } from './membership-table.ts';
import { takesWakeUps } from './silo-record.ts';

/**
 * Watches the other silos' heartbeats and declares a silo dead once this monitor has itself seen
 * its heartbeat stand still for longer than the limit. The declaration is atomic, so exactly one
 * monitor wins it and runs the takeover of the dead silo's grains.
 *
 * Why watched, not just read: a record whose heartbeat looks old may only be one this monitor
 * could not see being written. The Redis (or cluster master) holding it was down, so the silo
 * could not beat either, or a failover promoted a replica that missed the last beats. A
 * heartbeat that changes (forward or back) starts the watch again, and so does a round in which
 * the records could not be read.
 */
export class MembershipMonitor {
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  /** Per silo: the heartbeat last seen, and since when (this process's clock) it has not changed. */
  readonly #watched = new Map<string, { heartbeatAt: number; since: number }>();

  constructor(
    private readonly table: MembershipTable,
    private readonly selfId: string,
    private readonly intervalMs: number,
    private readonly silenceMs: number,
    private readonly takeOver: (deadSiloId: string) => Promise<void>,
    private readonly log: Logger,
    /** Since when this silo's own heartbeats have succeeded without a break. */
    private readonly healthySince: () => number | undefined,
  ) {}

  start(): void {
    this.#timer ??= setInterval(() => {
      this.#checking ??= this.check()
        .catch((error: unknown) => {
          this.#watched.clear(); // what could not be read was not seen standing still
          this.log.warn('membership check failed', { error: describeError(error) });
        })
        .finally(() => {
          this.#checking = undefined;
        });
    }, this.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
  }

  /** One round: declare the silent silos dead, take over the ones this monitor declared, and
   *  finish takeovers a monitor that died mid-way left behind. */
  async check(): Promise<void> {
    // After an outage of Redis (or of this silo's link to it) every heartbeat looks old: judge
    // others only once this silo itself has been connected for a whole silence window.
    const since = this.healthySince();
    if (since === undefined) {
      this.#watched.clear();
      return;
    }
    // While this silo has not been healthy for a whole window it only watches, so that once it
    // has, it can judge at once what it has seen standing still since.
    const judging = Date.now() - since >= this.silenceMs;
    const reading = Date.now();
    const silos = (await this.table.readAll()).filter((s) => s.id !== this.selfId);
    const now = Date.now();
    // A read that took longer than a round waited out a disconnect (Redis restarting, the command
    // held until the connection came back): the others could not beat meanwhile either, so that
    // time was not seen as silence. Start watching again from what this read shows.
    if (now - reading > this.intervalMs) {
      this.#watched.clear();
      for (const silo of silos) this.#watched.set(silo.id, { heartbeatAt: silo.heartbeatAt, since: now });
      return;
    }
    const silent: string[] = [];
    for (const silo of silos) {
      if (!takesWakeUps(silo.status)) continue;
      // A heartbeat that is not a number was not written by a silo: as good as none.
      if (!Number.isFinite(silo.heartbeatAt)) {
        silent.push(silo.id);
        continue;
      }
      const seen = this.#watched.get(silo.id);
      if (seen === undefined || seen.heartbeatAt !== silo.heartbeatAt)
        this.#watched.set(silo.id, { heartbeatAt: silo.heartbeatAt, since: now });
      else if (now - seen.since > this.silenceMs) silent.push(silo.id);
    }
    const listed = new Set(silos.map((s) => s.id));
    for (const id of this.#watched.keys()) if (!listed.has(id)) this.#watched.delete(id);
    if (!judging) return;
    // The script checks the silence again, by the Redis clock, in the same step as the declaration.
    const declared = await this.table.declareDead(silent, this.silenceMs);
    for (const id of declared) this.#watched.delete(id);
    const unfinished = silos.filter((s) => s.status === 'dead').map((s) => s.id);
    for (const id of new Set([...declared, ...unfinished])) {
      if (declared.includes(id)) this.log.warn('declared a silent silo dead; taking over its grains', { deadSilo: id });
      await this.takeOver(id);
    }
  }
}
