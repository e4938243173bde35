import type { RedisClient } from '../redis/connection.ts';
import { execEach } from '../redis/commands.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import { recordFromHash, recordToHash, type SiloRecord, type SiloStatus } from './silo-record.ts';

/** How long the record of a silo that left stays readable (for inspection), in seconds. */
const LEFT_RECORD_TTL_SECONDS = 3600;

/**
 * The membership table in Redis: one record per silo plus the set of silo ids, and the set of
 * grain types ever registered. Storage only; the silo's own agent decides what to write.
 */
export class MembershipTable {
  constructor(
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
  ) {}

  /** Adds a silo; an id that was ever used (and whose record has not expired) is refused. */
  async join(record: SiloRecord): Promise<void> {
    if (!(await this.rejoin(record))) {
      throw new Error(`Silo id "${record.id}" was used before; a silo never comes back under the same id`);
    }
  }

  /**
   * Writes a silo's record only while none exists: a first join, or a running silo whose record
   * disappeared (deleted, flushed, lost in a failover), so a record written meanwhile (dead, left)
   * wins. Returns whether it was written.
   */
  async rejoin(record: SiloRecord): Promise<boolean> {
    if ((await this.redis.hsetnx(this.keys.siloInfo(record.id), 'id', record.id)) === 0) return false;
    // Three keys in three Redis Cluster slots, so three writes, in an order that leaves nothing
    // unseen if the silo dies between them: listed before its record is complete (a listed silo
    // without a full record is skipped), and its types before it can be found hosting them.
    if (record.types.length > 0) await this.redis.sadd(this.keys.grainTypes(), ...record.types);
    await this.redis.sadd(this.keys.silos(), record.id);
    await this.redis.hset(this.keys.siloInfo(record.id), recordToHash(record));
    return true;
  }

  /** Records a heartbeat (Redis server time); returns the status forbidding it when the silo is dead or gone. */
  async heartbeat(siloId: string, activations: number, stats?: object): Promise<'ok' | 'dead' | 'left' | 'missing'> {
    const args = stats === undefined ? [activations] : [activations, JSON.stringify(stats)];
    return (await this.redis.heartbeat(this.keys.siloInfo(siloId), ...args)) as 'ok' | 'dead' | 'left' | 'missing';
  }

  /** Declares each silo dead whose heartbeat is older than `silenceMs`; returns those declared now. */
  async declareDead(siloIds: string[], silenceMs: number): Promise<string[]> {
    if (siloIds.length === 0) return [];
    const results = await execEach(
      this.redis,
      siloIds.map((id) => ['declareDead', this.keys.siloInfo(id), silenceMs]),
    );
    return siloIds.filter((_, i) => results[i]?.[0] === null && results[i]?.[1] === 1);
  }

  /** Drops a dead silo from the set of silos once its grains were taken over; its record expires. */
  async forget(siloId: string): Promise<void> {
    // The silo's own keys share its hash tag; the set of silos is elsewhere, and is left last so
    // that a checker that dies half-way finds the silo again and finishes.
    await this.redis.multi().expire(this.keys.siloInfo(siloId), LEFT_RECORD_TTL_SECONDS).del(this.keys.siloGrains(siloId)).exec();
    await this.redis.srem(this.keys.silos(), siloId);
  }

  async setStatus(siloId: string, status: SiloStatus): Promise<void> {
    await this.redis.hset(this.keys.siloInfo(siloId), 'status', status);
  }

  /** Marks the silo as gone for good: no wake-up is pushed to its inbox from now on. */
  async leave(siloId: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.siloInfo(siloId), { status: 'left', heartbeatAt: String(Date.now()), activations: '0' })
      .expire(this.keys.siloInfo(siloId), LEFT_RECORD_TTL_SECONDS)
      .del(this.keys.siloGrains(siloId), this.keys.siloTaking(siloId))
      .exec();
    await this.redis.srem(this.keys.silos(), siloId);
  }

  /** One silo's record, or undefined when it has none (never joined, expired, or deleted). */
  async record(siloId: string): Promise<SiloRecord | undefined> {
    return recordFromHash(await this.redis.hgetall(this.keys.siloInfo(siloId)));
  }

  async status(siloId: string): Promise<SiloStatus | undefined> {
    return ((await this.redis.hget(this.keys.siloInfo(siloId), 'status')) ?? undefined) as SiloStatus | undefined;
  }

  /**
   * The records of every listed silo, and of the silos in `also` that are no longer listed but
   * whose record has not expired yet (a dead silo is unlisted once its grains were taken over).
   */
  async readAll(also: Iterable<string> = []): Promise<SiloRecord[]> {
    const ids = [...new Set([...(await this.redis.smembers(this.keys.silos())), ...also])];
    if (ids.length === 0) return [];
    const results = await execEach(
      this.redis,
      ids.map((id) => ['hgetall', this.keys.siloInfo(id)]),
    );
    const records: SiloRecord[] = [];
    for (const [error, hash] of results) {
      if (error !== null) throw error;
      const record = recordFromHash(hash as Record<string, string>);
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  async isTypeRegistered(type: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.grainTypes(), type)) === 1;
  }
}
