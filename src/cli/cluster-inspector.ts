import type { SiloStats } from '../telemetry/silo-metrics.ts';
import { execEach, type Command } from '../redis/commands.ts';
import { Queue, type Job } from 'bullmq';
import { asEnvelope } from '../messaging/envelope.ts';
import { isPack, jobMessages, PACK_PROGRESS_FIELD } from '../messaging/message-pack.ts';
import { parseEntry } from '../storage/event-journal.ts';
import type { MachineDefinition } from '../grain/state-machine.ts';
import { deserialize } from '../messaging/serializer.ts';
import { GrainId } from '../grain/grain-id.ts';
import { DeadLetterStore, type DeadLetter } from '../mailbox/dead-letters.ts';
import { MembershipTable } from '../membership/membership-table.ts';
import { takesWakeUps, type SiloStatus } from '../membership/silo-record.ts';
import { parseWakeEntry } from '../directory/wake-entry.ts';
import { GrainTypeNotRegisteredError } from '../errors/errors.ts';
import { closeRedis, openRedis, type RedisConnectionInput, type RedisClient } from '../redis/connection.ts';
import { readyWithin } from '../redis/runtime.ts';
import { RedisKeys } from '../redis/keys.ts';
import { registerScripts, type ScriptCommands } from '../redis/scripts.ts';
import { OPTIONS, resolveOption, resolveRedis } from '../config/options-schema.ts';

/** How many waiting and failed messages a grain view lists. */
const MESSAGES_SHOWN = 10;
/** Jobs per list whose names are read to count the messages in packs. */
const PACKED_JOBS_READ = 10_000;

/**
 * A silo's status as the inspector shows it: the membership status, or `suspect` for a silo
 * that should be alive but has missed more than two heartbeats and is not declared dead yet.
 */
export type SiloViewStatus = SiloStatus | 'suspect';

export interface SiloView {
  id: string;
  status: SiloViewStatus;
  host: string;
  pid: number;
  types: string[];
  activations: number;
  startedAt: Date;
  /** Milliseconds since the silo's last heartbeat (Redis clock). */
  heartbeatAgeMs: number;
  /** What the silo reported with its last heartbeat (counters, turn latency, activations per type). */
  stats?: SiloStats;
}

export interface MessageView {
  id: string;
  method: string;
  correlationId: string | undefined;
  sentAt: Date | undefined;
  attempts: number;
  /** Why it failed (failed messages only). */
  reason?: string;
}

export interface MailboxCounts {
  waiting: number;
  active: number;
  failed: number;
  delayed: number;
}

export interface GrainView {
  grain: string;
  type: string;
  key: string;
  /** The activation that owns the grain, if any. */
  owner: { silo: string; siloStatus: SiloStatus | undefined; epoch: string; since: Date | undefined } | undefined;
  mailbox: MailboxCounts;
  waiting: MessageView[];
  failed: MessageView[];
  /** Persisted state fields, deserialized (a field that cannot be read shows its raw text). */
  state: Record<string, unknown>;
  /** Durable reminders the grain has registered (name, method, schedule). */
  reminders: { name: string; method: string; schedule: unknown }[];
  /** Durable subscriptions the grain has made (topic pattern, method). */
  subscriptions: { pattern: string; method: string }[];
  /**
   * An event-sourced grain's latest journal entries, newest first, as stored (not upcast: the
   * inspector has no grain classes); empty for other grains.
   */
  events: { seq: number; version: number; event: unknown; correlationId: string; at: Date }[];
  /** The state machine of a state-machine grain's type, as its silos registered it. */
  machine?: MachineDefinition;
}

export interface QueueDepth {
  grain: string;
  type: string;
  key: string;
  waiting: number;
  owner: string | undefined;
  /** The owner's membership status (`dead` when it died holding the grain), if it has a record. */
  ownerStatus: SiloStatus | undefined;
}

/** A grain mailbox as BullMQ sees it: what a queue dashboard (bull-board) needs to open it. */
export interface MailboxQueue {
  grain: string;
  /** BullMQ queue name. */
  name: string;
  /** BullMQ key prefix. */
  prefix: string;
}

export interface InspectOptions {
  /** Redis URL or ioredis options; default `REDIS_URL`, else redis://127.0.0.1:6379. */
  redis?: RedisConnectionInput | undefined;
  /** Key prefix of the application; default `REDGRAIN_PREFIX`, else `redgrain`. */
  keyPrefix?: string | undefined;
  connectTimeoutMs?: number | undefined;
}

/**
 * The Redis connection and keys of a command-line tool: each of `options` given, else its
 * environment variable (`REDIS_URL`, `REDGRAIN_PREFIX`, ...), else its default; ready within the
 * connect timeout or closed and thrown.
 */
export async function openToolConnection(
  options: InspectOptions,
  name: string,
): Promise<{ redis: RedisClient & ScriptCommands; keys: RedisKeys }> {
  const env = process.env;
  const keys = new RedisKeys(resolveOption('keyPrefix', options.keyPrefix, env, 'keyPrefix'));
  const connectTimeoutMs = resolveOption('connectTimeoutMs', options.connectTimeoutMs, env, 'connectTimeoutMs');
  const redis = registerScripts(openRedis(resolveRedis(options.redis, env, 'redis'), name));
  try {
    await readyWithin(redis, connectTimeoutMs);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  return { redis, keys };
}

/**
 * Reads a running cluster's state from Redis for operators: silos, one grain's owner, mailbox
 * and state, the deepest mailboxes, dead letters. It only reads; it never changes anything.
 * Grains are found through the silos' grain sets and inboxes, the pending lists and the list of
 * mailboxes with failed messages, never by scanning keys.
 */
export class ClusterInspector {
  readonly #membership: MembershipTable;
  readonly #deadLetters: DeadLetterStore;

  private constructor(
    private readonly redis: RedisClient & ScriptCommands,
    readonly keys: RedisKeys,
  ) {
    this.#membership = new MembershipTable(redis, keys);
    this.#deadLetters = new DeadLetterStore(redis, keys);
  }

  static async open(options: InspectOptions = {}): Promise<ClusterInspector> {
    const { redis, keys } = await openToolConnection(options, 'redgrain:inspect');
    return new ClusterInspector(redis, keys);
  }

  /**
   * Every silo in the membership table, active ones first; with `also`, those of these silos
   * that left the table but whose record is still kept (an hour after they left or were declared
   * dead and taken over).
   */
  async silos(also: Iterable<string> = []): Promise<SiloView[]> {
    const [records, now] = await Promise.all([this.#membership.readAll(also), this.#now()]);
    const order: Record<SiloViewStatus, number> = { active: 0, joining: 1, stopping: 2, suspect: 3, left: 4, dead: 5 };
    return records
      .map((r) => ({
        id: r.id,
        status: viewStatus(r.status, now - r.heartbeatAt, r.heartbeatIntervalMs),
        host: r.host,
        pid: r.pid,
        types: r.types,
        activations: r.activations,
        startedAt: new Date(r.startedAt),
        heartbeatAgeMs: Math.max(0, now - r.heartbeatAt),
        ...(r.stats === undefined ? {} : { stats: r.stats }),
      }))
      .sort((a, b) => order[a.status] - order[b.status] || a.id.localeCompare(b.id));
  }

  /** One grain: its owner, mailbox counts, first waiting and failed messages, and its state. */
  async grain(type: string, key: string): Promise<GrainView> {
    const id = GrainId.of(type, key);
    // A misspelt type would otherwise show as an empty grain: say it is unknown instead.
    if ((await this.redis.sismember(this.keys.grainTypes(), type)) === 0) {
      throw new GrainTypeNotRegisteredError(type, await this.redis.smembers(this.keys.grainTypes()));
    }
    const queue = this.#queue(id);
    try {
      const [directory, counts, waiting, failed, fields, reminders, subscriptions, journal, machine, packed] = await Promise.all([
        this.redis.hgetall(this.keys.directory(id)),
        queue.getJobCounts('wait', 'active', 'failed', 'delayed', 'prioritized'),
        queue.getWaiting(0, MESSAGES_SHOWN - 1),
        queue.getFailed(0, MESSAGES_SHOWN - 1),
        this.redis.hgetall(this.keys.state(id)),
        this.redis.hgetall(this.keys.reminders(id)),
        this.redis.hgetall(this.keys.grainSubscriptions(id)),
        this.redis.xrevrange(this.keys.journal(id), '+', '-', 'COUNT', MESSAGES_SHOWN),
        this.redis.hget(this.keys.grainMachines(), type),
        this.#packedMessages(id),
      ]);
      delete fields[PACK_PROGRESS_FIELD];
      const silo = directory.silo;
      return {
        grain: id.toString(),
        type,
        key,
        owner:
          silo === undefined
            ? undefined
            : {
                silo,
                siloStatus: await this.#membership.status(silo),
                epoch: directory.epoch ?? '',
                since: directory.since === undefined ? undefined : new Date(Number(directory.since)),
              },
        mailbox: {
          waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0) + packed.wait,
          active: (counts.active ?? 0) + packed.active,
          failed: counts.failed ?? 0,
          delayed: counts.delayed ?? 0,
        },
        // Oldest first: the order the grain will handle them.
        waiting: waiting
          .filter(Boolean)
          .flatMap((job) => messageViews(job))
          .slice(0, MESSAGES_SHOWN),
        failed: failed.filter(Boolean).map((job) => ({ ...messageView(job), reason: job.failedReason })),
        state: Object.fromEntries(
          Object.entries(fields)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([field, text]) => [field, readField(text)]),
        ),
        reminders: Object.entries(reminders).map(([name, text]) => {
          try {
            const info = JSON.parse(text) as { method: unknown; schedule: unknown };
            return { name, method: String(info.method), schedule: info.schedule };
          } catch {
            return { name, method: '', schedule: text }; // not an entry redgrain wrote: shown as it is
          }
        }),
        subscriptions: Object.entries(subscriptions)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([pattern, method]) => ({ pattern, method })),
        events: journal.flatMap((entry) => {
          try {
            const stored = parseEntry(entry);
            return [
              {
                seq: stored.seq,
                version: stored.version,
                event: readField(stored.text),
                correlationId: stored.correlationId,
                at: new Date(stored.at),
              },
            ];
          } catch {
            return []; // not an entry redgrain wrote
          }
        }),
        ...readMachine(machine),
      };
    } finally {
      await queue.close();
    }
  }

  /**
   * The grains with the most waiting messages, among those silos hold or were woken for (in their
   * inboxes, also of a silo that died) and those parked for a type no live silo hosts.
   */
  async topGrains(limit = 10): Promise<QueueDepth[]> {
    const tags = await this.#knownGrainTags();
    const ids = tags.flatMap((tag) => {
      try {
        return [GrainId.fromTag(tag)];
      } catch {
        return [];
      }
    });
    const replies = await execEach(
      this.redis,
      ids.flatMap((id): Command[] => [
        ['llen', this.keys.mailbox(id, 'wait')],
        ['hget', this.keys.directory(id), 'silo'],
      ]),
    );
    const top = ids
      .map((id, i) => ({
        grain: id.toString(),
        type: id.type,
        key: id.key,
        waiting: Number(replies[2 * i]?.[1] ?? 0),
        owner: (replies[2 * i + 1]?.[1] as string | null) ?? undefined,
      }))
      .sort((a, b) => b.waiting - a.waiting || a.grain.localeCompare(b.grain))
      .slice(0, limit);
    const owners = [...new Set(top.flatMap((g) => (g.owner === undefined ? [] : [g.owner])))];
    const statuses = new Map(await Promise.all(owners.map(async (o) => [o, await this.#membership.status(o)] as const)));
    return top.map((g) => ({ ...g, ownerStatus: g.owner === undefined ? undefined : statuses.get(g.owner) }));
  }

  /** Messages set aside after killing or hanging their activation, the newest `limit`, newest first. */
  deadLetters(limit = 100): Promise<DeadLetter[]> {
    return this.#deadLetters.newest(limit);
  }

  /** How many dead letters are kept. */
  deadLetterCount(): Promise<number> {
    return this.#deadLetters.count();
  }

  /**
   * The BullMQ queues of the grain mailboxes worth looking at (for bull-board and the like): every
   * grain a silo holds or has a wake-up for, or that waits for a silo of its type, and every grain
   * with failed messages, held or not. Sorted by grain.
   */
  async mailboxQueues(): Promise<MailboxQueue[]> {
    const [known, failing] = await Promise.all([this.#knownGrainTags(), this.#failingGrainTags()]);
    const grains = new Map<string, GrainId>();
    for (const tag of [...known, ...failing]) {
      try {
        const id = GrainId.fromTag(tag);
        grains.set(id.tag, id);
      } catch {
        // a malformed entry is skipped
      }
    }
    return [...grains.values()]
      .map((id) => ({ grain: id.toString(), name: this.keys.queueName(id), prefix: this.keys.bullPrefix }))
      .sort((a, b) => (a.grain < b.grain ? -1 : a.grain > b.grain ? 1 : 0));
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  /**
   * Grains the silos hold (their grain sets), have a wake-up for (inboxes and the wake-ups being
   * handled: a grain passed on by a stopping silo is there until its new owner claims it), or
   * that wait for a silo of their type (pending lists).
   */
  async #knownGrainTags(): Promise<string[]> {
    const [siloIds, types] = await Promise.all([this.redis.smembers(this.keys.silos()), this.redis.smembers(this.keys.grainTypes())]);
    const replies = await execEach(this.redis, [
      ...siloIds.flatMap((id): Command[] => [
        ['smembers', this.keys.siloGrains(id)],
        ['lrange', this.keys.siloInbox(id), 0, -1],
        ['lrange', this.keys.siloTaking(id), 0, -1],
      ]),
      ...types.map((type): Command => ['lrange', this.keys.pendingForType(type), 0, -1]),
    ]);
    const tags = new Set<string>();
    for (const [error, members] of replies) {
      if (error !== null) throw error;
      for (const entry of members as string[]) tags.add(parseWakeEntry(entry).tag);
    }
    return [...tags];
  }

  /** Grains listed as having had a failed message whose mailbox still keeps one. */
  async #failingGrainTags(): Promise<string[]> {
    const listed = await this.redis.zrange(this.keys.failedMailboxes(), '0', '-1');
    const ids = listed.flatMap((tag) => {
      try {
        return [GrainId.fromTag(tag)];
      } catch {
        return [];
      }
    });
    const replies = await execEach(
      this.redis,
      ids.map((id): Command => ['zcard', this.keys.mailbox(id, 'failed')]),
    );
    return ids.filter((_, i) => Number(replies[i]?.[1] ?? 0) > 0).map((id) => id.tag);
  }

  #queue(id: GrainId): Queue {
    const queue = new Queue(this.keys.queueName(id), { connection: this.redis, prefix: this.keys.bullPrefix, skipMetasUpdate: true });
    queue.on('error', () => undefined); // failures reject the reads themselves
    return queue;
  }

  /**
   * The messages beyond one per job that packs add to a grain's waiting and taken messages (read
   * from the jobs' names, up to PACKED_JOBS_READ jobs per list), so counts are of messages.
   */
  async #packedMessages(id: GrainId): Promise<{ wait: number; active: number }> {
    const extra = async (part: 'wait' | 'active') => {
      const jobIds = await this.redis.lrange(this.keys.mailbox(id, part), 0, PACKED_JOBS_READ - 1);
      const names = await execEach(
        this.redis,
        jobIds.map((jobId) => ['hget', this.keys.job(id, jobId), 'name']),
      );
      return names.reduce((sum, [, name]) => sum + extraInPack(name), 0);
    };
    const [wait, active] = await Promise.all([extra('wait'), extra('active')]);
    return { wait, active };
  }

  async #now(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }
}

/** Two heartbeat intervals of silence make a silo suspect; before that a heartbeat may just be due. */
const SUSPECT_AFTER_INTERVALS = 2;

function viewStatus(status: SiloStatus, silentMs: number, heartbeatIntervalMs: number): SiloViewStatus {
  const interval = heartbeatIntervalMs > 0 ? heartbeatIntervalMs : OPTIONS.heartbeatIntervalMs.default;
  return takesWakeUps(status) && silentMs > SUSPECT_AFTER_INTERVALS * interval ? 'suspect' : status;
}

function messageView(job: Job): MessageView {
  const envelope = asEnvelope(job.data);
  return {
    id: job.id ?? '',
    method: envelope?.m ?? job.name,
    correlationId: envelope?.c,
    sentAt: envelope === undefined ? undefined : new Date(envelope.t),
    attempts: job.attemptsStarted ?? job.attemptsMade,
  };
}

/** A job's messages, one line each: a pack's as `<job id>.<place>`. */
function messageViews(job: Job): MessageView[] {
  if (!isPack(job.data)) return [messageView(job)];
  return (jobMessages(job.data) ?? []).map((data, at) => {
    const envelope = asEnvelope(data);
    return {
      id: `${job.id ?? ''}.${at}`,
      method: envelope?.m ?? job.name,
      correlationId: envelope?.c,
      sentAt: envelope === undefined ? undefined : new Date(envelope.t),
      attempts: job.attemptsStarted ?? job.attemptsMade,
    };
  });
}

/** How many messages a job named `name` holds beyond its first (a pack's name says how many). */
function extraInPack(name: unknown): number {
  const count = typeof name === 'string' ? /^pack:(\d+)$/.exec(name)?.[1] : undefined;
  return count === undefined ? 0 : Math.max(0, Number(count) - 1);
}

function readField(text: string): unknown {
  try {
    return deserialize(text);
  } catch {
    return text;
  }
}

/** A registered machine, if the text reads as one (anyone may write the hash). */
function readMachine(text: string | null): { machine?: MachineDefinition } {
  if (text === null) return {};
  try {
    const machine = JSON.parse(text) as MachineDefinition;
    return typeof machine.initial === 'string' && typeof machine.states === 'object' && machine.states !== null ? { machine } : {};
  } catch {
    return {};
  }
}
