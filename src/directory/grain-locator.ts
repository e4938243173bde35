import type { RedisClient } from '../redis/connection.ts';
import type { GrainId } from '../grain/grain-id.ts';
import type { MembershipView } from '../membership/membership-view.ts';
import type { PlacementStrategy } from '../placement/placement.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import type { GrainDirectory } from './grain-directory.ts';
import { CARRIED_DATA_BYTES, encodeWakeEntry } from './wake-entry.ts';

/**
 * Gets a grain's queued messages processed: wakes the silo that owns the grain, or, when no silo
 * does, the silo placement picks (which then claims it). When no live silo hosts the type at all,
 * the wake-up waits in the type's pending list until one starts.
 *
 * Wake-ups are hints: the messages themselves are already durable in the grain's mailbox, so a
 * duplicate wake-up costs one lookup and a missing one is what this class exists to prevent.
 */
export class GrainLocator {
  constructor(
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
    private readonly directory: GrainDirectory,
    private readonly membership: MembershipView,
    private readonly placement: PlacementStrategy,
    private readonly localSiloId: string | undefined,
  ) {}

  /** The owning silo of a grain, if any; start it alongside the enqueue to save a round trip. */
  locate(grain: GrainId): Promise<string | undefined> {
    return this.directory.owner(grain);
  }

  /**
   * Makes sure a silo will look at the grain's mailbox. `owner` is the result of `locate` when the
   * caller already has it; `exclude` is a silo that must not be chosen (one that is stopping).
   */
  async wake(grain: GrainId, owner?: string, exclude?: string, recover = false): Promise<void> {
    if (owner !== undefined && owner !== exclude && (await this.notify(owner, grain, recover))) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const fresh = attempt > 0;
      const candidates = (await this.membership.hostsOf(grain.type, fresh)).filter((s) => s.id !== exclude);
      if (candidates.length === 0) {
        await this.redis.lpush(this.keys.pendingForType(grain.type), grain.tag);
        // A silo that joined after our read drains the pending list after joining, so a fresh read
        // that still shows no host means the wake-up is safely parked.
        if ((await this.membership.hostsOf(grain.type, true)).filter((s) => s.id !== exclude).length === 0) return;
        continue;
      }
      const target = this.placement.pick(candidates, {
        grainType: grain.type,
        grainKey: grain.key,
        localSiloId: this.localSiloId,
      });
      if (await this.notify(target.id, grain, recover)) return;
    }
    // Every silo we tried refused (all stopping at once): park it for the next one to start.
    await this.redis.lpush(this.keys.pendingForType(grain.type), grain.tag);
  }

  /**
   * On one Redis (not a Redis Cluster): wakes the grain's owner in one step with reading who that
   * is (wakeOwner-3.lua; the wake-up carries the message when it is the mailbox's only one, see
   * `CarriedMessage`), else routes the wake-up as `wake` does. Sent right behind the enqueue of
   * the grain's message on the same connection, it costs the sender no round trip of its own.
   * Resolves to true when nothing waited in the mailbox (see the script): call it again once the
   * enqueue is acknowledged.
   */
  async wakeOwner(grain: GrainId): Promise<boolean> {
    const woken = await this.redis.wakeOwner(
      this.keys.directory(grain),
      this.keys.mailbox(grain, 'wait'),
      this.keys.mailbox(grain, 'active'),
      this.keys.siloKeyStart(),
      encodeWakeEntry(grain),
      this.keys.mailbox(grain, ''),
      CARRIED_DATA_BYTES,
    );
    if (woken === 2) return true;
    // 0: no silo owns the grain, or its owner takes no wake-ups (it left or died).
    if (woken === 0) await this.wake(grain);
    return false;
  }

  /** Pushes a wake-up to one silo; `recover` marks it (`!<tag>`) to take back released messages first. */
  async notify(siloId: string, grain: GrainId, recover = false): Promise<boolean> {
    const entry = encodeWakeEntry(grain, recover);
    return (await this.redis.notifySilo(this.keys.siloInfo(siloId), this.keys.siloInbox(siloId), entry)) === 1;
  }
}
