import { describeError, RedgrainError, RedisUnavailableError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { ActivationHost } from '../catalog/activation-host.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import { decodeEntry, type OutboxEffect, type OutboxEntry } from './outbox.ts';

/** Entries carried out between two trims of the outbox list. */
const TRIM_EVERY = 32;
/** Most messages to one grain carried out in one transaction. */
const MAX_GROUP = 64;
/** Longest pause between two attempts at an effect that failed (Redis down). */
const MAX_RETRY_DELAY_MS = 2_000;

/** An outbox entry as read from (or written to) Redis, and what it says. */
interface Held {
  raw: string;
  entry: OutboxEntry | undefined;
  /** Called once this entry is carried out (or forwarding stops). */
  done?: () => void;
}

/**
 * Carries out a grain's committed effects, one at a time in commit order, for the activation that
 * owns the grain: messages are enqueued in their grains' mailboxes (and the grains woken),
 * reminders and subscriptions written, live listeners told. An entry leaves the outbox list only
 * once its effect is durable; one that fails is retried (the effects behind it wait, so order
 * holds). If the silo dies meanwhile, the grain's next activation (a takeover wakes every grain
 * with effects left) forwards what is left, and receivers drop the messages they already have.
 */
export class OutboxForwarder {
  readonly #queue: Held[] = [];
  #running: Promise<void> | undefined;
  #stopped = false;
  #retry: { timer: NodeJS.Timeout; wake: () => void } | undefined;

  constructor(
    private readonly id: GrainId,
    private readonly host: ActivationHost,
  ) {}

  /** Effects not carried out yet, oldest first. */
  *pending(): Iterable<OutboxEffect> {
    for (const { entry } of this.#queue) if (entry !== undefined) yield entry;
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Takes what an earlier activation left in the outbox (read when this one activated). */
  load(raw: readonly string[]): void {
    for (const text of raw) this.#queue.push({ raw: text, entry: decodeEntry(text) });
    this.#kick();
  }

  /**
   * Takes the entries a commit has just written, and carries them out. Resolves once they (and
   * everything before them) are carried out, or forwarding stops (the next owner carries them out).
   */
  push(entries: readonly { raw: string; entry: OutboxEntry }[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const held: Held[] = entries.map(({ raw, entry }) => ({ raw, entry }));
    const done = new Promise<void>((resolve) => {
      (held[held.length - 1] as Held).done = resolve;
    });
    if (this.#stopped) return Promise.resolve();
    this.#queue.push(...held);
    this.#kick();
    return done;
  }

  /**
   * Resolves once everything taken so far is carried out, or after `timeoutMs` (Redis is down): then
   * the rest stays in the outbox for the grain's next activation. Returns whether all went out.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.#running === undefined) return this.#queue.length === 0;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([this.#running, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.#queue.length === 0;
  }

  /** Stops forwarding (the activation can no longer own the grain); what is left stays in Redis. */
  stop(): void {
    this.#stopped = true;
    for (const held of this.#queue) held.done?.();
    if (this.#retry !== undefined) {
      clearTimeout(this.#retry.timer);
      this.#retry.wake();
    }
  }

  #kick(): void {
    if (this.#running !== undefined || this.#stopped || this.#queue.length === 0) return;
    this.#running = this.#forward().finally(() => {
      this.#running = undefined;
      this.#kick();
    });
  }

  async #forward(): Promise<void> {
    let done: string[] = [];
    let failures = 0;
    try {
      while (!this.#stopped && this.#queue.length > 0) {
        const group = this.#nextGroup();
        const head = group[0] as Held;
        try {
          await this.#carryOut(group);
          failures = 0;
        } catch (error) {
          if (isPermanent(error)) {
            this.host.log.error('dropped an effect of a committed turn that can never be carried out', {
              grain: this.id.toString(),
              effect: head.entry?.k,
              effects: group.length,
              error: describeError(error),
            });
            this.#settle(group, done);
            continue;
          }
          failures += 1;
          this.host.log.warn('could not carry out an effect of a committed turn; retrying', {
            grain: this.id.toString(),
            effect: head.entry?.k,
            error: describeError(error),
          });
          await this.#pause(Math.min(MAX_RETRY_DELAY_MS, 50 * 2 ** failures));
          continue;
        }
        this.#settle(group, done);
        if (done.length >= TRIM_EVERY || this.#queue.length === 0) {
          await this.#trim(done);
          done = [];
        }
      }
    } finally {
      if (done.length > 0) await this.#trim(done).catch(() => undefined);
    }
  }

  /**
   * The entries to carry out next: the head, and when it is a message, the messages right behind
   * it to the same grain (up to MAX_GROUP), which go into that grain's mailbox in one transaction.
   */
  #nextGroup(): Held[] {
    const head = this.#queue[0] as Held;
    const group = [head];
    if (head.entry?.k !== 'send') return group;
    for (let i = 1; i < this.#queue.length && group.length < MAX_GROUP; i++) {
      const next = this.#queue[i] as Held;
      if (next.entry?.k !== 'send' || next.entry.g !== head.entry.g) break;
      group.push(next);
    }
    return group;
  }

  /** Takes a group carried out (or dropped) off the queue, to be trimmed from the list. */
  #settle(group: readonly Held[], done: string[]): void {
    this.#queue.splice(0, group.length);
    for (const held of group) {
      done.push(held.raw);
      held.done?.();
    }
  }

  /** Removes carried-out entries from the outbox list (each is unique: its place is in it). */
  async #trim(raw: readonly string[]): Promise<void> {
    const key = this.host.keys.outbox(this.id);
    const pipeline = this.host.redis.pipeline();
    for (const text of raw) pipeline.lrem(key, 1, text);
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([error]) => error !== null);
    // Left in the list, an entry is carried out again by a later activation; receivers drop it.
    if (failed !== undefined)
      this.host.log.warn('could not trim the outbox', { grain: this.id.toString(), error: describeError(failed[0]) });
  }

  async #carryOut(group: readonly Held[]): Promise<void> {
    const { client, reminders, subscriptions, log } = this.host;
    const { raw, entry } = group[0] as Held;
    if (entry === undefined) {
      log.warn('dropped an outbox entry redgrain did not write', { grain: this.id.toString(), entry: raw });
      return;
    }
    switch (entry.k) {
      case 'send': {
        let target: GrainId;
        try {
          target = GrainId.fromTag(entry.g);
        } catch {
          log.warn('dropped an outbox message to a malformed grain tag', { grain: this.id.toString(), entry: raw });
          return;
        }
        const envelopes = group.flatMap(({ entry: each }) => (each?.k === 'send' ? [each.e] : []));
        await client.forward(target, envelopes as [MessageEnvelope, ...MessageEnvelope[]]);
        return;
      }
      case 'topic':
        await client.publishLive(entry.t, entry.p);
        return;
      case 'remind':
        await reminders.register(this.id, entry.n, entry.s, entry.m, entry.a, entry.d);
        return;
      case 'forget':
        await reminders.forget(this.id, entry.n);
        return;
      case 'subscribe':
        await subscriptions.subscribe(this.id, entry.p, entry.m);
        return;
      case 'unsubscribe':
        await subscriptions.unsubscribe(this.id, entry.p);
        return;
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#retry = undefined;
        resolve();
      };
      this.#retry = { timer: setTimeout(wake, ms), wake };
    });
  }
}

/** An error retrying cannot cure (bad data): anything but Redis failing. */
function isPermanent(error: unknown): boolean {
  if (error instanceof RedisUnavailableError) return false;
  return error instanceof RedgrainError || error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError;
}
