import type { RedisClient } from '../redis/connection.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';

export type ClaimResult = { claimed: true; epoch: string } | { claimed: false; owner: string; epoch: string };

/**
 * The grain directory in Redis: grain id -> owning silo and activation epoch. Claims are atomic
 * (Lua), each claim gets a new epoch, and a release only takes effect while the entry still names
 * the releasing activation.
 */
export class GrainDirectory {
  constructor(
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
  ) {}

  async owner(grain: GrainId): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.directory(grain), 'silo')) ?? undefined;
  }

  /** Claims the grain for `siloId`; `supersede` names a silo known to be gone whose hold may be taken. */
  async claim(grain: GrainId, siloId: string, supersede = ''): Promise<ClaimResult> {
    const reply = (await this.redis.claimActivation(this.keys.directory(grain), siloId, supersede, Date.now())) as [
      number,
      string | number,
      string | number | undefined,
    ];
    return reply[0] === 1
      ? { claimed: true, epoch: String(reply[1]) }
      : { claimed: false, owner: String(reply[1]), epoch: String(reply[2]) };
  }

  async release(grain: GrainId, siloId: string, epoch: string): Promise<boolean> {
    return (await this.redis.releaseActivation(this.keys.directory(grain), siloId, epoch)) === 1;
  }
}
