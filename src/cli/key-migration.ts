import { Queue } from 'bullmq';
import { KeyMigrationRefusedError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import { MembershipTable } from '../membership/membership-table.ts';
import { closeRedis, type RedisClient } from '../redis/connection.ts';
import { scanKeys } from '../redis/commands.ts';
import { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import { REMINDER_QUEUE, type ReminderJobData } from '../reminders/reminder-table.ts';
import { openToolConnection, type InspectOptions } from './cluster-inspector.ts';
import { encodeWakeEntry, parseWakeEntry } from '../directory/wake-entry.ts';

/** A silo whose heartbeat is younger than this may still be running. */
const LIVE_HEARTBEAT_MS = 30_000;

/** Keys read per SCAN step. */
const SCAN_COUNT = 1_000;

/** What a migration changed (or, in a dry run, would change). */
export interface KeyMigrationReport {
  dryRun: boolean;
  /** Grains whose keys moved: old tag -> current tag, and how many keys. */
  grains: { from: string; to: string; keys: number }[];
  /** Keys of a grain whose new name is already taken: left where they are. */
  conflicts: { from: string; to: string }[];
  /** Grain tags rewritten inside silo grain sets, inboxes, pending lists and subscriptions. */
  entries: number;
  /** Reminders (BullMQ job schedulers and one-shot jobs) moved to their new ids. */
  reminders: number;
}

/** One grain key to rename, and the grain it belongs to. */
interface Move {
  from: string;
  to: string;
  legacyTag: string;
  tag: string;
}

/**
 * Moves the Redis data of grains whose keys an older version encoded with `%` (any key with a
 * character outside [A-Za-z0-9-._]) to the names this version uses, offline: all silos stopped.
 * One SCAN over the prefix finds the grains' keys (renamed), the sets and lists that hold grain
 * tags (rewritten in place) and the reminders whose BullMQ ids carry a tag (re-registered under
 * the new id). Running it again finds nothing left to do.
 */
export class KeyMigration {
  private constructor(
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
  ) {}

  static async open(options: InspectOptions = {}): Promise<KeyMigration> {
    const { redis, keys } = await openToolConnection(options, 'redgrain:migrate-keys');
    return new KeyMigration(redis, keys);
  }

  async run({ dryRun }: { dryRun: boolean }): Promise<KeyMigrationReport> {
    await this.#refuseWhileSilosRun();
    const report: KeyMigrationReport = { dryRun, grains: [], conflicts: [], entries: 0, reminders: 0 };
    const moves: Move[] = [];
    const tagSets: string[] = [];
    const wakeLists: string[] = [];
    const reminderSchedulers: string[] = [];
    const reminderJobs: string[] = [];
    const prefix = `${this.keys.prefix}:`;
    for await (const batch of scanKeys(this.redis, `${globEscape(prefix)}*`, SCAN_COUNT)) {
      for (const key of batch) {
        const local = key.slice(prefix.length);
        const grainKey = /^([gq]):\{([^}]*)\}(:.*)$/.exec(local);
        if (grainKey !== null) {
          const [, space, legacyTag, rest] = grainKey as unknown as [string, string, string, string];
          const tag = currentTag(legacyTag);
          if (tag !== undefined) moves.push({ from: key, to: `${prefix}${space}:{${tag}}${rest}`, legacyTag, tag });
          continue;
        }
        if (/^s:\{[^}]*\}:grains$/.test(local) || /^sub:\{=[^}]*\}$/.test(local) || /^sub:\{[^}]*\}:p:/.test(local)) tagSets.push(key);
        else if (/^s:\{[^}]*\}:(inbox|taking)$/.test(local) || /^t:\{[^}]*\}:pending$/.test(local)) wakeLists.push(key);
        else if (local.startsWith(`q:${REMINDER_QUEUE}:`)) {
          const id = local.slice(`q:${REMINDER_QUEUE}:`.length);
          // A scheduler `repeat:<id>` and a one-shot job `once/<id>`; their locks, logs and
          // produced jobs (`repeat:<id>:<ms>`) have a `:` in the rest.
          const scheduler = /^repeat:([^:]+)$/.exec(id)?.[1];
          if (scheduler !== undefined && reminderTagMoves(scheduler) !== undefined) reminderSchedulers.push(scheduler);
          if (/^once\/[^:]+$/.test(id) && reminderTagMoves(id.slice('once/'.length)) !== undefined) reminderJobs.push(id);
        }
      }
    }

    const perGrain = new Map<string, { from: string; to: string; keys: number }>();
    // SCAN may return a key twice.
    const unique = [...new Map(moves.map((move) => [move.from, move])).values()].sort((a, b) => (a.from < b.from ? -1 : 1));
    for (const move of unique) {
      const taken = (await this.redis.exists(move.to)) === 1;
      if (taken) {
        report.conflicts.push({ from: move.from, to: move.to });
        continue;
      }
      if (!dryRun) await this.redis.renamenx(move.from, move.to);
      const grain = perGrain.get(move.legacyTag) ?? { from: move.legacyTag, to: move.tag, keys: 0 };
      grain.keys += 1;
      perGrain.set(move.legacyTag, grain);
    }
    report.grains = [...perGrain.values()];
    for (const key of new Set(tagSets)) report.entries += await this.#rewriteSet(key, dryRun);
    for (const key of new Set(wakeLists)) report.entries += await this.#rewriteList(key, dryRun);
    if (reminderSchedulers.length + reminderJobs.length > 0) {
      report.reminders = await this.#moveReminders([...new Set(reminderSchedulers)], [...new Set(reminderJobs)], dryRun);
    }
    return report;
  }

  async close(): Promise<void> {
    await closeRedis(this.redis);
  }

  async #refuseWhileSilosRun(): Promise<void> {
    const [records, [seconds, micros]] = await Promise.all([new MembershipTable(this.redis, this.keys).readAll(), this.redis.time()]);
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const live = records.filter(
      (r) => (r.status === 'joining' || r.status === 'active' || r.status === 'stopping') && now - r.heartbeatAt < LIVE_HEARTBEAT_MS,
    );
    if (live.length > 0) {
      throw new KeyMigrationRefusedError(
        `silos are running (${live.map((r) => r.id).join(', ')}); stop every silo first (a silo silent for ${LIVE_HEARTBEAT_MS / 1000} s counts as stopped)`,
      );
    }
  }

  /** Rewrites old tags among a set's members (`<tag>` or `<tag> <method>`). */
  async #rewriteSet(key: string, dryRun: boolean): Promise<number> {
    const changes = (await this.redis.smembers(key)).flatMap((member) => {
      const rewritten = rewriteMember(member);
      return rewritten === undefined ? [] : [[member, rewritten] as const];
    });
    if (!dryRun && changes.length > 0) {
      await this.redis
        .multi()
        .srem(key, ...changes.map(([old]) => old))
        .sadd(key, ...changes.map(([, current]) => current))
        .exec();
    }
    return changes.length;
  }

  /** Rewrites old tags among a list's wake-up entries (`<tag>` or `!<tag>`), keeping the order. */
  async #rewriteList(key: string, dryRun: boolean): Promise<number> {
    // Senders may push wake-ups meanwhile (a pending list): rewrite only if the list did not change.
    for (;;) {
      await this.redis.watch(key);
      const entries = await this.redis.lrange(key, 0, -1);
      const rewritten = entries.map((entry) => rewriteWakeEntry(entry) ?? entry);
      const changed = rewritten.filter((entry, i) => entry !== entries[i]).length;
      if (dryRun || changed === 0) {
        await this.redis.unwatch();
        return changed;
      }
      const done = await this.redis
        .multi()
        .del(key)
        .rpush(key, ...rewritten)
        .exec();
      if (done !== null) return changed;
    }
  }

  /** Registers each reminder that carries an old tag under its new id, then removes the old one. */
  async #moveReminders(schedulers: string[], jobs: string[], dryRun: boolean): Promise<number> {
    if (dryRun) return schedulers.length + jobs.length;
    const queue = new Queue<ReminderJobData>(REMINDER_QUEUE, {
      connection: this.redis,
      prefix: this.keys.bullPrefix,
      skipMetasUpdate: true,
    });
    queue.on('error', () => undefined); // failures reject the calls themselves
    let moved = 0;
    try {
      for (const id of schedulers) {
        const scheduler = await queue.getJobScheduler(id);
        const newId = reminderTagMoves(id);
        const data = scheduler?.template?.data;
        if (scheduler === undefined || newId === undefined || data === undefined) continue;
        const repeat =
          scheduler.every === undefined
            ? { pattern: scheduler.pattern ?? '', ...(scheduler.tz === undefined ? {} : { tz: scheduler.tz }) }
            : { every: scheduler.every, startDate: scheduler.next ?? Date.now() + scheduler.every };
        // The new one first: a crash in between leaves a reminder twice, never none (its ticks
        // carry their idempotency keys).
        await queue.upsertJobScheduler(newId, repeat, {
          name: scheduler.name,
          data: { ...data, g: retag(data.g) },
          opts: scheduler.template?.opts ?? {},
        });
        await queue.removeJobScheduler(id);
        moved += 1;
      }
      for (const jobId of jobs) {
        const job = await queue.getJob(jobId);
        const newId = reminderTagMoves(jobId.slice('once/'.length));
        if (job === undefined || newId === undefined) continue;
        const { jobId: _old, delay: _delay, ...opts } = job.opts;
        const dueAt = job.timestamp + (job.delay ?? 0);
        await queue.add(
          job.name,
          { ...job.data, g: retag(job.data.g) },
          { ...opts, jobId: `once/${newId}`, delay: Math.max(0, dueAt - Date.now()) },
        );
        await job.remove();
        moved += 1;
      }
    } finally {
      await queue.close();
    }
    return moved;
  }
}

/** The current tag for an old one; undefined when `tag` is current (or no tag at all). */
function currentTag(tag: string): string | undefined {
  return GrainId.isLegacyTag(tag) ? GrainId.fromTag(tag).tag : undefined;
}

function retag(tag: string): string {
  return currentTag(tag) ?? tag;
}

function rewriteMember(member: string): string | undefined {
  const space = member.indexOf(' ');
  const tag = currentTag(space < 0 ? member : member.slice(0, space));
  return tag === undefined ? undefined : space < 0 ? tag : `${tag}${member.slice(space)}`;
}

function rewriteWakeEntry(entry: string): string | undefined {
  const { raw, recover } = parseWakeEntry(entry);
  const tag = currentTag(raw);
  return tag === undefined ? undefined : encodeWakeEntry(tag, recover);
}

/** A reminder's id is `<tag>/<name>` (the tag holds one `/`): the id with the current tag, if it moves. */
function reminderTagMoves(id: string): string | undefined {
  const second = id.indexOf('/', id.indexOf('/') + 1);
  if (second < 0) return undefined;
  const tag = currentTag(id.slice(0, second));
  return tag === undefined ? undefined : `${tag}${id.slice(second)}`;
}

/** Escapes the glob characters of a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
