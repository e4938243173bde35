import { execEach } from '../redis/commands.ts';
import { ActivationFailedError, describeError } from '../errors/errors.ts';
import { errorToData } from '../errors/error-converter.ts';
import { GrainMailbox } from '../mailbox/grain-mailbox.ts';
import { asEnvelope } from '../messaging/envelope.ts';
import { jobMessages } from '../messaging/message-pack.ts';
import { ActivationSupervisor, type SupervisionSettings } from './activation-supervisor.ts';
import type { GrainDirectory } from '../directory/grain-directory.ts';
import type { GrainLocator } from '../directory/grain-locator.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { GrainTypeRegistry } from '../grain/grain-type.ts';
import type { MembershipTable } from '../membership/membership-table.ts';
import { takesWakeUps } from '../membership/silo-record.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Activation, GrainActivationError } from './activation.ts';
import { parseWakeEntry } from '../directory/wake-entry.ts';
import { IdleCollector } from './idle-collector.ts';
import { LockRenewer } from './lock-renewer.ts';
import type { ActivationHost } from './activation-host.ts';

export interface CatalogSettings {
  /** Default idle time after which an activation is deactivated. */
  collectionAgeMs: number;
  supervision: SupervisionSettings;
  lockDurationMs: number;
  /** How many grains deactivate at once when the silo stops. */
  shutdownConcurrency: number;
}

export interface CatalogDeps {
  host: Omit<ActivationHost, 'ended' | 'wakeOwner' | 'retryLater'>;
  registry: GrainTypeRegistry;
  directory: GrainDirectory;
  locator: GrainLocator;
  membership: MembershipTable;
  log: Logger;
}

/**
 * The activations one silo holds: creates them when a wake-up arrives for a grain this silo may
 * host (claiming it in the directory first) and forwards wake-ups for grains other silos own. Its
 * IdleCollector deactivates idle ones; its LockRenewer renews the message locks of long turns.
 */
export class Catalog {
  readonly #activations = new Map<string, Activation>();
  readonly #host: ActivationHost;
  readonly #idle: IdleCollector;
  readonly #locks: LockRenewer;
  readonly #supervisor: ActivationSupervisor;
  readonly #retries = new Set<NodeJS.Timeout>();
  /** Consecutive Redis failures per grain, for backoff; cleared when the grain activates. */
  readonly #infraFailures = new Map<string, number>();
  /** Activations being created; a stopping silo waits for them before it leaves. */
  readonly #creating = new Set<Promise<void>>();
  /** Wake-ups being passed on to other silos; a stopping silo waits for them too. */
  readonly #forwarding = new Set<Promise<void>>();
  #stopping = false;

  constructor(
    private readonly deps: CatalogDeps,
    private readonly settings: CatalogSettings,
  ) {
    this.#supervisor = new ActivationSupervisor(settings.supervision);
    this.#host = {
      ...deps.host,
      ended: (activation) => this.#ended(activation),
      wakeOwner: (grain, recover) => void this.#forward(grain, recover, false).catch(() => undefined),
      retryLater: (grain) => this.#retryInfrastructure(grain.tag),
    };
    const shortestAge = Math.min(
      settings.collectionAgeMs,
      ...deps.registry.names().map((name) => deps.registry.get(name)?.collectionAgeMs ?? Infinity),
    );
    const activations = () => this.#activations.values();
    this.#idle = new IdleCollector(activations, settings.collectionAgeMs, shortestAge, deps.log);
    this.#locks = new LockRenewer(activations, settings.lockDurationMs, deps.log);
  }

  get size(): number {
    return this.#activations.size;
  }

  get(tag: string): Activation | undefined {
    return this.#activations.get(tag);
  }

  /** Live activations per grain type. */
  countByType(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const activation of this.#activations.values()) {
      if (activation.status === 'valid') counts.set(activation.id.type, (counts.get(activation.id.type) ?? 0) + 1);
    }
    return counts;
  }

  /** Messages left waiting at each activation's last take, summed: a free estimate of the depth. */
  waitingHint(): number {
    let total = 0;
    for (const activation of this.#activations.values()) total += activation.waitingHint;
    return total;
  }

  /** Messages waiting in the mailboxes of this silo's activations, per grain type (one pipeline). */
  async mailboxDepthByType(): Promise<Map<string, number>> {
    const activations = [...this.#activations.values()];
    const replies = await execEach(
      this.#host.redis,
      activations.map((activation) => ['llen', this.#host.keys.mailbox(activation.id, 'wait')]),
    );
    const depths = new Map<string, number>();
    activations.forEach((activation, i) => {
      const depth = Number(replies[i]?.[1] ?? 0);
      depths.set(activation.id.type, (depths.get(activation.id.type) ?? 0) + depth);
    });
    return depths;
  }

  /**
   * A wake-up for one grain arrived in this silo's inbox (or its type's pending list). An entry
   * `!<tag>` also asks to take back messages a stale activation released.
   */
  wake(entry: string): Promise<void> {
    const { tag: given, recover, carried } = parseWakeEntry(entry);
    // Entries come from Redis, where anyone with access may write anything: only the canonical
    // tag of a valid grain id names an activation, so one grain never gets two.
    let id: GrainId;
    try {
      id = GrainId.fromTag(given);
    } catch (error) {
      this.deps.log.warn('ignored a malformed wake-up', { tag: given, error: describeError(error) });
      return Promise.resolve();
    }
    const tag = id.tag;
    const activation = this.#activations.get(tag);
    if (activation !== undefined) {
      if (activation.status === 'deactivating') activation.wokenWhileDeactivating = true;
      else activation.wake(recover, carried);
      return Promise.resolve();
    }
    const type = this.deps.registry.get(id.type);
    if (this.#stopping || type === undefined) return this.#forward(id, recover, true);
    const suspension = this.#supervisor.suspension(tag);
    if (suspension !== undefined) {
      this.#answerSuspended(id, suspension.lastError, suspension.answered);
      return Promise.resolve();
    }
    const created = new Activation(id, type, this.#host);
    this.#activations.set(tag, created);
    // Recorded before the claim, so a takeover of this silo finds every grain it may own; from
    // then on the wake-up itself may be forgotten.
    const recorded = this.#host.redis.sadd(this.#host.keys.siloGrains(this.#host.siloId), tag).then(() => undefined);
    const creating = this.#activate(created, recorded).then(
      () => {
        this.#supervisor.succeeded(tag);
        this.#infraFailures.delete(tag);
      },
      (error: unknown) => this.#activationFailed(created, error),
    );
    this.#creating.add(creating);
    void creating.finally(() => this.#creating.delete(creating));
    return recorded;
  }

  /** Stops creating activations and deactivates every one, handing queued work to other silos. */
  async deactivateAll(): Promise<void> {
    this.#stopping = true;
    this.#idle.stop();
    for (const timer of this.#retries) clearTimeout(timer);
    try {
      // Activations being created finish, then hand themselves over (they see #stopping).
      await Promise.all(this.#creating);
      const all = [...this.#activations.values()];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < all.length) {
          const activation = all[next++] as Activation;
          await this.#deactivateAndHandOver(activation);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.settings.shutdownConcurrency, all.length) }, worker));
    } finally {
      // Only now: a turn still running when the stop began keeps its locks until it commits.
      this.#locks.stop();
    }
  }

  async #activate(activation: Activation, recorded: Promise<void>): Promise<void> {
    const { directory, locator } = this.deps;
    const siloId = this.#host.siloId;
    // The claim and the state read go out behind the silo's grain-set record on one connection, so
    // Redis runs them in that order (recorded, then claimed, then read) in one round trip.
    const claiming = directory.claim(activation.id, siloId);
    claiming.catch(() => undefined);
    activation.prefetch();
    try {
      await recorded;
    } catch (error) {
      const first = await claiming.catch(() => undefined);
      if (first?.claimed) await directory.release(activation.id, siloId, first.epoch).catch(() => false);
      throw error;
    }
    let claim = await claiming;
    if (!claim.claimed) {
      activation.dropPrefetch();
      this.#host.metrics.directoryConflict(activation.id.type);
      // Held by this silo without a live activation here (a previous one failed): take it back.
      // Held by a silo that no longer takes wake-ups, or that does not host the type (an entry
      // no silo of ours wrote): no one will process it there, supersede it.
      // Held by a live silo hosting the type: that silo processes the grain; pass the wake-up on.
      const owner = claim.owner;
      if (owner !== siloId && (await this.#mayOwn(owner, activation.id.type)) && (await locator.notify(owner, activation.id))) {
        this.#dropUnclaimed(activation);
        return;
      }
      claim = await directory.claim(activation.id, siloId, owner);
      if (!claim.claimed) {
        this.#dropUnclaimed(activation);
        await locator.wake(activation.id, claim.owner, siloId);
        return;
      }
    }
    await activation.activate(claim.epoch);
    if (this.#stopping) {
      await this.#deactivateAndHandOver(activation);
      return;
    }
    activation.wake();
  }

  /** Whether a silo can own a grain of `type`: it takes wake-ups and hosts the type. */
  async #mayOwn(siloId: string, type: string): Promise<boolean> {
    const record = await this.deps.membership.record(siloId);
    return record !== undefined && takesWakeUps(record.status) && record.types.includes(type);
  }

  /** Releases the claim of an activation that failed, then retries it later or suspends the grain. */
  async #activationFailed(activation: Activation, error: unknown): Promise<void> {
    const { id } = activation;
    const tag = id.tag;
    if (this.#activations.get(tag) === activation) this.#activations.delete(tag);
    if (activation.epoch !== '') {
      await this.deps.directory.release(id, this.#host.siloId, activation.epoch).catch(() => false);
      await this.#host.redis.srem(this.#host.keys.siloGrains(this.#host.siloId), tag).catch(() => 0);
    }
    if (!(error instanceof GrainActivationError)) {
      // Redis, not the grain: retry until it is back, without counting towards suspension.
      this.deps.log.warn('activation interrupted by a Redis failure; retrying', { grain: id.toString(), error: describeError(error) });
      this.#retryInfrastructure(tag);
      return;
    }
    const decision = this.#supervisor.failed(tag, describeError(error.original));
    if (decision.action === 'retry') {
      this.deps.log.warn('activation failed; retrying', { grain: id.toString(), error: describeError(error), retryInMs: decision.delayMs });
      const timer = setTimeout(() => {
        this.#retries.delete(timer);
        if (!this.#stopping) void this.#wakeLogged(tag);
      }, decision.delayMs);
      this.#retries.add(timer);
      return;
    }
    this.deps.log.error('activation keeps failing; grain suspended, its messages wait in its mailbox', {
      grain: id.toString(),
      error: decision.lastError,
      suspendedUntil: new Date(decision.untilMs).toISOString(),
    });
    const suspension = this.#supervisor.suspension(tag);
    if (suspension !== undefined) this.#answerSuspended(id, suspension.lastError, suspension.answered);
  }

  /** Wakes a grain again after a Redis failure, backing off while failures repeat. */
  #retryInfrastructure(tag: string): void {
    const failures = (this.#infraFailures.get(tag) ?? 0) + 1;
    this.#infraFailures.set(tag, failures);
    const delay = Math.min(100 * 2 ** Math.min(failures - 1, 10), 5_000);
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      if (!this.#stopping) void this.#wakeLogged(tag);
    }, delay);
    this.#retries.add(timer);
  }

  /** Tells the `ask` callers waiting on a suspended grain that it cannot be activated (once each). */
  #answerSuspended(id: GrainId, lastError: string, answered: Set<string>): void {
    const mailbox = new GrainMailbox(
      this.#host.mailboxRoot,
      this.#host.redis,
      this.#host.turns,
      this.#host.keys,
      id,
      this.#host.siloId,
      this.#host.lockDurationMs,
    );
    const reply = errorToData(new ActivationFailedError(id.toString(), lastError));
    mailbox
      .peekWaiting(1_000)
      .then((waiting) => {
        for (const { jobId, data } of waiting) {
          for (const [at, message] of (jobMessages(data) ?? []).entries()) {
            const envelope = asEnvelope(message);
            const place = `${jobId}.${at}`;
            if (envelope?.r === undefined || answered.has(place)) continue;
            answered.add(place);
            this.#host.reply(envelope.r.c, { i: envelope.r.i, ok: false, e: reply });
          }
        }
      })
      .catch((error: unknown) =>
        this.deps.log.warn('could not answer callers of a suspended grain', { grain: id.toString(), error: describeError(error) }),
      );
  }

  #dropUnclaimed(activation: Activation): void {
    if (this.#activations.get(activation.id.tag) === activation) this.#activations.delete(activation.id.tag);
    this.#host.redis.srem(this.#host.keys.siloGrains(this.#host.siloId), activation.id.tag).catch(() => undefined);
  }

  /**
   * Drops every activation without committing or releasing anything: this silo was declared dead,
   * its grains belong to others now, and whatever it would write is fenced anyway.
   */
  abandonAll(): void {
    this.#stopping = true;
    this.#idle.stop();
    this.#locks.stop();
    for (const timer of this.#retries) clearTimeout(timer);
    for (const activation of this.#activations.values()) activation.abandon();
    this.#activations.clear();
  }

  async #deactivateAndHandOver(activation: Activation): Promise<void> {
    await activation.deactivate('silo stopping');
    if (this.#activations.get(activation.id.tag) === activation) this.#activations.delete(activation.id.tag);
    // Messages waiting, or effects it could not carry out before letting go: another silo takes it on.
    const effectsLeft = (await this.#host.redis.llen(this.#host.keys.outbox(activation.id))) > 0;
    if (effectsLeft || (await activation.mailbox.waitingCount()) > 0) {
      await this.deps.locator.wake(activation.id, undefined, this.#host.siloId);
    }
  }

  /** A wake-up from inside the silo (a retry, a re-wake): failures are logged, not returned. */
  #wakeLogged(tag: string): Promise<void> {
    return this.wake(tag).catch((error: unknown) =>
      this.deps.log.warn('could not wake a grain', { grain: tag, error: describeError(error) }),
    );
  }

  /** Wakes every activation (after a wake-up may have been lost); idle ones find nothing. */
  wakeAll(): void {
    for (const activation of this.#activations.values()) if (activation.status === 'valid') activation.wake(true);
  }

  /** Resolves once no wake-up is being forwarded. */
  async idle(): Promise<void> {
    while (this.#forwarding.size > 0) await Promise.all(this.#forwarding);
  }

  /** Passes a wake-up on to the grain's owner (or placement); rejects if that failed. */
  #forward(id: GrainId, recover: boolean, excludeSelf: boolean): Promise<void> {
    const { locator } = this.deps;
    const forwarding = locator.locate(id).then((owner) => locator.wake(id, owner, excludeSelf ? this.#host.siloId : undefined, recover));
    const settled = forwarding.catch((error: unknown) =>
      this.deps.log.error('could not forward a wake-up', { grain: id.toString(), error: describeError(error) }),
    );
    this.#forwarding.add(settled);
    void settled.finally(() => this.#forwarding.delete(settled));
    return forwarding;
  }

  #ended(activation: Activation): void {
    const tag = activation.id.tag;
    if (this.#activations.get(tag) !== activation) return;
    this.#activations.delete(tag);
    if (activation.wokenWhileDeactivating) void this.#wakeLogged(tag);
  }
}
