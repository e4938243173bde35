import { describeError } from '../errors/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { MembershipTable } from './membership-table.ts';
import { takesWakeUps } from './silo-record.ts';

/**
 * Watches the other silos' heartbeats and declares a silo dead once it has been silent longer
 * than the limit. The declaration is atomic, so exactly one monitor wins it and runs the
 * takeover of the dead silo's grains.
 */
export class MembershipMonitor {
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

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
        .catch((error: unknown) => this.log.warn('membership check failed', { error: describeError(error) }))
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
    if (since === undefined || Date.now() - since < this.silenceMs) return;
    const silos = (await this.table.readAll()).filter((s) => s.id !== this.selfId);
    const declared = await this.table.declareDead(
      silos.filter((s) => takesWakeUps(s.status)).map((s) => s.id),
      this.silenceMs,
    );
    const unfinished = silos.filter((s) => s.status === 'dead').map((s) => s.id);
    for (const id of new Set([...declared, ...unfinished])) {
      if (declared.includes(id)) this.log.warn('declared a silent silo dead; taking over its grains', { deadSilo: id });
      await this.takeOver(id);
    }
  }
}
