import type { MembershipTable } from './membership-table.ts';
import type { SiloRecord } from './silo-record.ts';

/**
 * A process's cached picture of the membership table, refreshed on use when older than `maxAgeMs`
 * (so an idle process sends no commands), or at once when a caller finds it stale.
 */
export class MembershipView {
  #silos: SiloRecord[] = [];
  #readAt = 0;
  #reading: Promise<SiloRecord[]> | undefined;

  constructor(
    private readonly table: MembershipTable,
    private readonly maxAgeMs: number,
  ) {}

  async silos(fresh = false): Promise<SiloRecord[]> {
    if (!fresh && Date.now() - this.#readAt < this.maxAgeMs) return this.#silos;
    this.#reading ??= this.table.readAll().then(
      (silos) => {
        this.#silos = silos;
        this.#readAt = Date.now();
        this.#reading = undefined;
        return silos;
      },
      (error: unknown) => {
        this.#reading = undefined;
        throw error;
      },
    );
    return this.#reading;
  }

  /** Active silos hosting a grain type: the candidates for placing a new activation. */
  async hostsOf(type: string, fresh = false): Promise<SiloRecord[]> {
    return (await this.silos(fresh)).filter((s) => s.status === 'active' && s.types.includes(type));
  }
}
