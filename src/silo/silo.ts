import { waitForReplicas } from '../redis/commands.ts';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Cluster } from 'ioredis';
import { Catalog } from '../catalog/catalog.ts';
import { parseWakeEntry } from '../directory/wake-entry.ts';
import { ReadOnlyQueries } from './read-only-queries.ts';
import { publishTo } from '../redis/channels.ts';
import { GrainClient } from '../client/grain-client.ts';
import { describeError, RedisUnavailableError } from '../errors/errors.ts';
import { ErrorClassRegistry } from '../errors/error-converter.ts';
import { GrainId } from '../grain/grain-id.ts';
import { GrainTypeRegistry } from '../grain/grain-type.ts';
import { GrainMailbox } from '../mailbox/grain-mailbox.ts';
import { MembershipMonitor } from '../membership/membership-monitor.ts';
import { takesWakeUps, type SiloRecord, type SiloStatus } from '../membership/silo-record.ts';
import type { ReplyMessage } from '../messaging/envelope.ts';
import { closeRedis, openRedis, type RedisClient } from '../redis/connection.ts';
import { openRuntime, readyWithin, type RedisRuntime } from '../redis/runtime.ts';
import { registerScripts, type ScriptCommands } from '../redis/scripts.ts';
import { createLogger, withTraceFields, type Logger } from '../telemetry/logger.ts';
import { SiloMetrics } from '../telemetry/silo-metrics.ts';
import { ReminderService } from '../reminders/reminder-service.ts';
import { ReminderTable } from '../reminders/reminder-table.ts';
import { openTurnConnection, type TurnConnection } from '../mailbox/turn-connection.ts';
import { INBOX_BLOCK_SECONDS, InboxReader, popAll } from './inbox-reader.ts';
import { assertNoEviction } from './redis-preflight.ts';
import { resolveSiloOptions, type ResolvedSiloOptions, type SiloOptions } from './silo-options.ts';
import { takeOverSilo } from './takeover.ts';

/** Why a silo stopped: `stop()` was called, or the cluster declared it dead while it was silent. */
export type SiloStopReason = 'stopped' | 'declared-dead';

/**
 * A process hosting grain activations. It joins the membership table, heartbeats, takes
 * wake-ups from its inbox, activates grains on demand, watches the other silos and takes over
 * the grains of one that dies, and on `stop()` finishes the turns in progress, deactivates its
 * grains, hands their queued messages to other silos and leaves.
 *
 * It holds four Redis connections at most, however many grains are active: commands, the
 * blocking inbox read, turn commits, and (once a grain uses `ask`) the reply subscription.
 *
 * ```ts
 * const silo = await Silo.start({ redis: 'redis://127.0.0.1:6379', grains: [Counter] });
 * await silo.stop();
 * ```
 */
export class Silo {
  #status: SiloStatus = 'joining';
  #stopping: Promise<void> | undefined;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #monitor: MembershipMonitor;
  readonly #stopped: Promise<SiloStopReason>;
  #resolveStopped: (reason: SiloStopReason) => void = () => undefined;
  /** Since when heartbeats have succeeded without a break (undefined while they fail). */
  #healthySince: number | undefined = Date.now();
  #types: string[] = [];
  readonly #startedAt = Date.now();

  private constructor(
    readonly id: string,
    private readonly options: ResolvedSiloOptions,
    private readonly runtime: RedisRuntime,
    private readonly turns: RedisClient,
    private readonly catalog: Catalog,
    private readonly inbox: InboxReader,
    /** The client grains use for `this.getGrain`; also usable by code embedding the silo. */
    readonly client: GrainClient,
    private readonly log: Logger,
    private readonly metrics: SiloMetrics,
    private readonly reminderTable: ReminderTable,
    private readonly reminderService: ReminderService,
    private readonly queries: ReadOnlyQueries,
  ) {
    this.#stopped = new Promise((resolve) => {
      this.#resolveStopped = resolve;
    });
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatIntervalMs).unref();
    this.#monitor = new MembershipMonitor(
      runtime.membership,
      id,
      options.heartbeatIntervalMs,
      options.heartbeatIntervalMs * options.missedHeartbeatsLimit,
      (deadId) => takeOverSilo(runtime, deadId, log),
      log,
      () => this.#healthySince,
    );
  }

  /** Starts a silo hosting `options.grains` and resolves once it takes messages. */
  static async start(options: SiloOptions): Promise<Silo> {
    const resolved = resolveSiloOptions(options);
    const registry = new GrainTypeRegistry(resolved.grains);
    const errorClasses = new ErrorClassRegistry();
    errorClasses.register(resolved.errors);
    for (const cls of resolved.grains) errorClasses.register(cls.errors);
    const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-');
    const id = resolved.siloId ?? `${host}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const log = withTraceFields(resolved.logger?.child({ silo: id }) ?? createLogger(resolved.logLevel, { silo: id }));
    const runtime = await openRuntime({
      input: resolved.redis,
      keyPrefix: resolved.keyPrefix,
      connectionName: `redgrain:silo:${id}`,
      placement: resolved.placement,
      localSiloId: id,
      lockDurationMs: resolved.lockDurationMs,
      connectTimeoutMs: resolved.connectTimeoutMs,
      membershipRefreshMs: resolved.membershipRefreshMs,
    });
    let blocking: (RedisClient & ScriptCommands) | undefined;
    let turns: TurnConnection | undefined;
    let reminderService: ReminderService | undefined;
    let queries: ReadOnlyQueries | undefined;
    try {
      await assertNoEviction(runtime.redis);
      blocking = registerScripts(openRedis(resolved.redis, `redgrain:silo:${id}:inbox`, { blockingSeconds: INBOX_BLOCK_SECONDS }));
      await readyWithin(blocking, resolved.connectTimeoutMs);
      turns = openTurnConnection(resolved.redis, `redgrain:silo:${id}:turns`);
      await readyWithin(turns, resolved.connectTimeoutMs);
      const redis = runtime.redis;
      const client = new GrainClient({
        redis,
        keys: runtime.keys,
        mailboxRoot: runtime.mailboxRoot,
        locator: runtime.locator,
        membership: runtime.membership,
        deadLetters: runtime.deadLetters,
        subscriptions: runtime.subscriptions,
        askTimeoutMs: resolved.askTimeoutMs,
        redisTimeoutMs: resolved.connectTimeoutMs,
        maxPayloadBytes: resolved.maxPayloadBytes,
        pack: { messages: resolved.maxPackMessages, bytes: resolved.maxPackBytes },
        knownClasses: resolved.grains,
        idempotencyWindowMs: resolved.idempotencyWindowMs,
        replicas: resolved.replicas,
        errorClasses,
        openSubscriber: () => openRedis(resolved.redis, `redgrain:silo:${id}:replies`, 'subscriber'),
        dispose: async () => undefined,
      });
      // The gauges read the catalog, which needs the metrics: they meet through this binding.
      let observed: Catalog | undefined;
      const metrics = new SiloMetrics(id, {
        activationsByType: () => observed?.countByType() ?? new Map(),
        mailboxDepthByType: async () => (observed === undefined ? new Map() : observed.mailboxDepthByType()),
        waitingHint: () => observed?.waitingHint() ?? 0,
      });
      const reminderTable = new ReminderTable(redis, runtime.keys, runtime.mailboxRoot);
      /** An `ask` reply as it is published: its caller's channel and the message. */
      const publication = (clientId: string, message: ReplyMessage) =>
        [runtime.keys.replyChannel(clientId), JSON.stringify(message)] as const;
      const reply = (clientId: string, message: ReplyMessage) => {
        publishTo(redis, ...publication(clientId, message)).catch((error: unknown) =>
          log.warn('could not publish a reply', { error: describeError(error) }),
        );
      };
      const repliesInCommit = !(redis instanceof Cluster) && resolved.replicas === 0;
      const replyPublication = (clientId: string, message: ReplyMessage) => (repliesInCommit ? publication(clientId, message) : undefined);
      const catalog = new Catalog(
        {
          host: {
            siloId: id,
            redis,
            turns,
            keys: runtime.keys,
            directory: runtime.directory,
            mailboxRoot: runtime.mailboxRoot,
            client,
            log,
            metrics,
            reminders: reminderTable,
            subscriptions: runtime.subscriptions,
            lockDurationMs: resolved.lockDurationMs,
            maxMessageAttempts: resolved.maxMessageAttempts,
            turnBatchSize: resolved.turnBatchSize,
            maxPayloadBytes: resolved.maxPayloadBytes,
            replicate: (grain: GrainId) =>
              waitForReplicas(turns as TurnConnection, resolved.replicas, resolved.lockDurationMs, runtime.keys.state(grain)),
            deadLetters: runtime.deadLetters,
            isStaleLock: async (token: string) => {
              const holder = GrainMailbox.tokenSilo(token);
              return holder === id || !takesWakeUps(await runtime.membership.status(holder));
            },
            reply,
            replyPublication,
          },
          registry,
          directory: runtime.directory,
          locator: runtime.locator,
          membership: runtime.membership,
          log,
        },
        {
          collectionAgeMs: resolved.collectionAgeMs,
          supervision: resolved.supervision,
          lockDurationMs: resolved.lockDurationMs,
          shutdownConcurrency: 32,
        },
      );
      observed = catalog;
      const inbox = new InboxReader(
        blocking,
        runtime.redis,
        runtime.keys,
        id,
        (entry) => catalog.wake(entry),
        log,
        () => {
          log.warn('inbox connection restored; waking every activation in case a wake-up was lost');
          catalog.wakeAll();
        },
      );
      reminderService = ReminderService.start(resolved.redis, `redgrain:silo:${id}:reminders`, runtime.keys, client, reminderTable, log);
      const querySubscriber = openRedis(resolved.redis, `redgrain:silo:${id}:queries`, 'subscriber');
      queries = new ReadOnlyQueries(querySubscriber, runtime.keys.siloQueries(id), catalog, reply, log);
      await queries.start();
      const silo = new Silo(id, resolved, runtime, turns, catalog, inbox, client, log, metrics, reminderTable, reminderService, queries);
      const machines: string[] = [];
      for (const name of registry.names()) {
        const type = registry.get(name);
        await runtime.subscriptions.registerImplicit(name, type?.implicitSubscriptions ?? []);
        if (type?.machine !== undefined) machines.push(name, JSON.stringify(type.machine));
      }
      // What the dashboard draws a state-machine grain's page with (it has no grain classes).
      if (machines.length > 0) await runtime.redis.hset(runtime.keys.grainMachines(), ...machines);
      await silo.#join(registry.names());
      return silo;
    } catch (error) {
      await queries?.close();
      await reminderService?.close();
      blocking?.disconnect();
      turns?.disconnect();
      await closeRedis(runtime.redis);
      throw error;
    }
  }

  get status(): SiloStatus {
    return this.#status;
  }

  /** Activations this silo holds right now. */
  get activationCount(): number {
    return this.catalog.size;
  }

  /** Resolves once the silo has stopped, with why: after `stop()`, or when declared dead. */
  get stopped(): Promise<SiloStopReason> {
    return this.#stopped;
  }

  /**
   * Stops gracefully: no new activations, the turns in progress finish, every grain is
   * deactivated (onDeactivate, state committed, directory entry released), queued messages are
   * handed to other silos, and the silo leaves the membership table. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop().then(
      () => this.#resolveStopped('stopped'),
      async (error: unknown) => {
        // Redis failed under the graceful stop (unreachable, or gone mid-way): what was not handed
        // over is taken over once the cluster declares this silo dead, as after a crash. Release
        // everything this silo holds in this process anyway, so that it stops.
        this.log.error('Redis failed while stopping; dropping the remaining activations', { error: describeError(error) });
        // Once it has left the membership table no silo takes it over: what it had not handed
        // over waits for the grains' next wake-up.
        const after =
          this.#status === 'left'
            ? 'it had left the cluster: messages of grains it had not handed over wait for their next wake-up'
            : 'the cluster takes its grains and wake-ups over once it declares this silo dead';
        await this.#release(true);
        this.#status = 'left';
        this.#resolveStopped('stopped');
        throw new RedisUnavailableError(
          `Redis failed while silo ${this.id} was stopping (${describeError(error)}): it stopped without handing over its remaining grains; ${after}`,
          error,
        );
      },
    );
    return this.#stopping;
  }

  /** The options this silo runs with, defaults filled in. */
  get settings(): Readonly<ResolvedSiloOptions> {
    return this.options;
  }

  /** This silo's membership record as it is now. */
  #record(): SiloRecord {
    return {
      id: this.id,
      status: 'active',
      host: hostname(),
      pid: process.pid,
      types: this.#types,
      startedAt: this.#startedAt,
      heartbeatAt: Date.now(),
      activations: this.catalog.size,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
    };
  }

  async #join(types: string[]): Promise<void> {
    this.#types = types;
    await this.runtime.membership.join(this.#record());
    await this.runtime.membership.heartbeat(this.id, 0);
    this.#status = 'active';
    this.inbox.start();
    this.#monitor.start();
    // Wake-ups parked while no silo hosted a type; joining first means a sender that parks one
    // after this read sees this silo on its re-check and wakes it directly.
    for (const type of types) {
      for (const tag of await popAll(this.runtime.redis, this.runtime.keys.pendingForType(type))) {
        this.catalog
          .wake(tag)
          .catch((error: unknown) => this.log.warn('could not wake a parked grain', { grain: tag, error: describeError(error) }));
      }
    }
    this.log.info('silo started', { types: types.join(','), keyPrefix: this.runtime.keys.prefix });
  }

  #beat(): void {
    this.runtime.membership
      .heartbeat(this.id, this.catalog.size, this.metrics.takeStats())
      .then(async (result) => {
        this.#healthySince ??= Date.now();
        if (result === 'dead' && this.#status !== 'dead') this.#die();
        if (result === 'missing' && this.#status === 'active') await this.#rejoin();
      })
      .catch((error: unknown) => {
        this.#healthySince = undefined;
        this.log.warn('heartbeat failed', { error: describeError(error) });
      });
  }

  /**
   * The silo's own record is gone (deleted, flushed, lost in a failover) while it runs: no sender
   * would find it and no monitor would watch it. Register it again, as it is: its activations stay
   * valid where the directory still names them, and commits are fenced where it does not.
   */
  async #rejoin(): Promise<void> {
    if (await this.runtime.membership.rejoin(this.#record())) {
      this.log.warn('this silo found its membership record missing and registered again', { types: this.#types.join(',') });
    }
  }

  /**
   * The cluster declared this silo dead while it was silent (paused, partitioned, overloaded)
   * and others own its grains now. It drops every activation without writing anything and stops;
   * run a new silo (a new id) instead.
   */
  #die(): void {
    if (this.#stopping !== undefined) return;
    this.#status = 'dead';
    this.log.error('this silo was declared dead by the cluster; dropping its activations and stopping');
    this.#stopping = this.#release(false).then(() => this.#resolveStopped('declared-dead'));
  }

  /**
   * Drops every activation without writing anything and closes what the silo holds: for a silo
   * declared dead, and for a stop that Redis failed. Never rejects; each part is bounded.
   */
  async #release(redisFailed: boolean): Promise<void> {
    clearInterval(this.#heartbeat);
    this.metrics.close();
    this.catalog.abandonAll();
    const parts: (() => Promise<void>)[] = [
      // With Redis up (a silo declared dead), a tick being delivered finishes: see ReminderService.close.
      () => this.reminderService.close(redisFailed),
      () => this.reminderTable.close(),
      () => this.#monitor.stop(),
      () => this.inbox.stop(),
      () => this.queries.close(),
      () => this.client.close(),
    ];
    for (const part of parts) {
      await part().catch((error: unknown) => this.log.warn('error while releasing the silo', { error: describeError(error) }));
    }
    this.turns.disconnect();
    this.runtime.redis.disconnect();
  }

  async #stop(): Promise<void> {
    const { membership, redis, keys, locator } = this.runtime;
    this.#status = 'stopping';
    this.log.info('silo stopping', { activations: this.catalog.size });
    await this.#monitor.stop();
    await membership.setStatus(this.id, 'stopping');
    // Heartbeats go on while the turns in progress finish, however long: a silo that fell silent
    // here would be declared dead and its grains taken over mid-turn (each such turn run twice).
    await this.catalog.deactivateAll();
    clearInterval(this.#heartbeat);
    // From here no sender can push to this inbox; whatever is in it goes to other silos.
    await membership.leave(this.id);
    this.#status = 'left';
    await this.inbox.stop();
    const left = [...(await popAll(redis, keys.siloTaking(this.id))), ...(await popAll(redis, keys.siloInbox(this.id)))];
    for (const entry of new Set(left)) {
      const { tag, recover } = parseWakeEntry(entry);
      let grain: GrainId;
      try {
        grain = GrainId.fromTag(tag);
      } catch (error) {
        this.log.warn('ignored a malformed wake-up', { tag, error: describeError(error) });
        continue;
      }
      await locator.wake(grain, await locator.locate(grain), this.id, recover);
    }
    await this.reminderService.close();
    await this.reminderTable.close();
    await this.catalog.idle();
    this.metrics.close();
    await this.queries.close();
    await this.client.close();
    await closeRedis(this.turns);
    await closeRedis(redis);
    this.log.info('silo stopped');
  }
}
