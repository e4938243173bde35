import type { GrainId } from '../grain/grain-id.ts';

/**
 * Builds every Redis key name redgrain uses; nothing else concatenates key strings.
 *
 * Layout (prefix `P`):
 * - `P:q:{<grain>}:*`       the grain's BullMQ mailbox (BullMQ prefix `P:q`, queue name `{<grain>}`)
 * - `P:g:{<grain>}:dir`     directory entry: owning silo, activation epoch
 * - `P:g:{<grain>}:state`   persisted state, one hash field per top-level state property
 * - `P:g:{<grain>}:outbox`  effects of committed turns not carried out yet (a list)
 * - `P:g:{<grain>}:seen`    the last message processed from each grain that sent one (sender -> place)
 * - `P:g:{<grain>}:journal` an event-sourced grain's events (a stream, entry ids `0-<seq>`)
 * - `P:machines`            state machines of the types that declare one (type -> JSON), for the dashboard
 * - `P:silos`               set of silo ids that ever joined and have not been swept
 * - `P:s:{<silo>}:info`     one silo's membership record
 * - `P:s:{<silo>}:inbox`    wake-ups for the grains that silo owns or should place
 * - `P:s:{<silo>}:taking`   wake-ups that silo took and has not finished handling
 * - `P:s:{<silo>}:grains`   grains that silo may own, for takeover when it dies
 * - `P:deadletters`         stream of dead-lettered messages
 * - `P:failed-mailboxes`    grains whose mailbox has had a failed message (tag -> last failure, ms)
 * - `P:types`               every grain type a silo has ever registered
 * - `P:t:{<type>}:pending`  wake-ups for grains of a type no live silo hosts right now
 * - `P:query:<silo>`       pub/sub channel of one silo's direct read-only calls
 * - `P:reply:<client>`      pub/sub channel carrying `ask` replies to one client
 *
 * Every key of one grain carries the same Redis Cluster hash tag (the encoded grain id), so
 * multi-key scripts on a grain stay in one slot and grains spread across slots.
 */
export class RedisKeys {
  readonly bullPrefix: string;

  constructor(readonly prefix: string) {
    assertValidPrefix(prefix);
    this.bullPrefix = `${prefix}:q`;
  }

  /** BullMQ queue name of a grain's mailbox (BullMQ forbids `:` in queue names). */
  queueName(grain: GrainId): string {
    return `{${grain.tag}}`;
  }

  directory(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:dir`;
  }

  state(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:state`;
  }

  /** Effects of the grain's committed turns not carried out yet, oldest first. */
  outbox(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:outbox`;
  }

  /** The last message the grain processed from each grain that sent it one (sender digest -> `<epoch>.<n>`). */
  seen(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:seen`;
  }

  /** An event-sourced grain's journal: a stream whose entry `0-<seq>` is its event number `seq`. */
  journal(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:journal`;
  }

  /** The outcome of a message sent with an idempotency key, kept for the retention window. */
  idempotency(grain: GrainId, idempotencyKey: string): string {
    return `${this.prefix}:g:{${grain.tag}}:idem:${encodeURIComponent(idempotencyKey)}`;
  }

  /** The reminders a grain has registered (name -> schedule), for listing. */
  reminders(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:reminders`;
  }

  /** One of BullMQ's keys of a grain's mailbox (`wait`, `active`, ...). */
  mailbox(grain: GrainId, part: string): string {
    return `${this.bullPrefix}:${this.queueName(grain)}:${part}`;
  }

  /** The BullMQ hash of one job (message) in a grain's mailbox. */
  job(grain: GrainId, jobId: string): string {
    return `${this.bullPrefix}:${this.queueName(grain)}:${jobId}`;
  }

  /** The BullMQ lock key of one job in a grain's mailbox. */
  jobLock(grain: GrainId, jobId: string): string {
    return `${this.job(grain, jobId)}:lock`;
  }

  silos(): string {
    return `${this.prefix}:silos`;
  }

  siloInfo(siloId: string): string {
    return `${this.prefix}:s:{${siloId}}:info`;
  }

  /** Grains this silo may own (added before a claim, removed after a release): what a takeover scans. */
  siloGrains(siloId: string): string {
    return `${this.prefix}:s:{${siloId}}:grains`;
  }

  /**
   * Grains whose mailbox has had a message failed (tag -> time of the last failure, ms), so tools
   * still find their failed messages once no silo holds the grain. Written only when a message
   * fails; an entry outlives an emptied failed list, and readers skip those.
   */
  failedMailboxes(): string {
    return `${this.prefix}:failed-mailboxes`;
  }

  /** Dead letters: messages that kept killing or hanging their activation. */
  deadLetters(): string {
    return `${this.prefix}:deadletters`;
  }

  /** Held while one dead letter is being redriven (so it is redriven once). */
  deadLetterRedrive(id: string): string {
    return `${this.prefix}:deadletters:redrive:${id}`;
  }

  siloInbox(siloId: string): string {
    return `${this.prefix}:s:{${siloId}}:inbox`;
  }

  /**
   * What every key of one silo starts with, up to its id: `siloInfo(id)` is this, the id, then
   * `}:info`; `siloInbox(id)` ends in `}:inbox` instead (for wakeOwner-1.lua, which learns the id
   * inside Redis).
   */
  siloKeyStart(): string {
    return `${this.prefix}:s:{`;
  }

  /** Wake-ups a silo took from its inbox and has not finished handling. */
  siloTaking(siloId: string): string {
    return `${this.prefix}:s:{${siloId}}:taking`;
  }

  grainTypes(): string {
    return `${this.prefix}:types`;
  }

  /** The state machines of the grain types that declare one (type -> JSON), for the dashboard. */
  grainMachines(): string {
    return `${this.prefix}:machines`;
  }

  pendingForType(type: string): string {
    return `${this.prefix}:t:{${encodeURIComponent(type)}}:pending`;
  }

  /** Grains subscribed to one exact topic (a set of "<tag> <method>"). */
  exactSubscribers(topic: string): string {
    return `${this.prefix}:sub:{=${topic}}`;
  }

  /** The wildcard patterns whose first segment is `bucket` (or `*` for wildcard roots). */
  patternBucket(bucket: string): string {
    return `${this.prefix}:sub:{${bucket}}:patterns`;
  }

  /** Grains subscribed to one wildcard pattern; shares its bucket's hash tag. */
  patternSubscribers(bucket: string, pattern: string): string {
    return `${this.prefix}:sub:{${bucket}}:p:${pattern}`;
  }

  /** A grain's own subscriptions (pattern -> method). */
  grainSubscriptions(grain: GrainId): string {
    return `${this.prefix}:g:{${grain.tag}}:subs`;
  }

  /** Implicit subscriptions of grain types ("<type> <pattern>" -> { key, method }). */
  implicitSubscriptions(): string {
    return `${this.prefix}:implicit-subs`;
  }

  /** The pub/sub channel external subscribers hear a topic on. */
  topicChannel(topic: string): string {
    return `${this.prefix}:topic:${topic}`;
  }

  replyChannel(clientId: string): string {
    return `${this.prefix}:reply:${clientId}`;
  }

  /** The pub/sub channel a silo takes direct read-only calls on. */
  siloQueries(siloId: string): string {
    return `${this.prefix}:query:${siloId}`;
  }
}

export const DEFAULT_KEY_PREFIX = 'redgrain';

function assertValidPrefix(prefix: string): void {
  if (prefix.length === 0 || prefix.length > 64 || /[{}\s]/.test(prefix)) {
    throw new TypeError(`Invalid key prefix ${JSON.stringify(prefix)}: use 1-64 characters without braces or whitespace`);
  }
}
