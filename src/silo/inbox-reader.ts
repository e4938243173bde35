import type { RedisClient } from '../redis/connection.ts';
import { describeError } from '../errors/errors.ts';
import type { RedisKeys } from '../redis/keys.ts';
import type { ScriptCommands } from '../redis/scripts.ts';
import type { Logger } from '../telemetry/logger.ts';

/** Longest a blocking read waits before it is re-issued (BullMQ caps its own at 10 s too). */
export const INBOX_BLOCK_SECONDS = 10;
const BATCH = 1_000;
/** What a blocking read gives when its connection dropped under it. */
const DROPPED: unique symbol = Symbol('dropped');

/**
 * Reads this silo's inbox of wake-ups on the silo's one blocking connection and hands each grain
 * tag to the catalog, once per batch however many messages a hot grain received.
 *
 * Reliable: wake-ups are moved onto the silo's taking list as they are read, and cleared only
 * once every one of them is handled (the grain claimed or the wake-up passed on). A batch whose
 * reply was lost in a disconnect, or that was not fully handled, is handled again from the taking
 * list; a dead silo's taking list is part of its takeover.
 *
 * One read is two commands, sent together and run by Redis in order: a script that takes what the
 * last read handled off the taking list and moves what waits in the inbox onto it (answered at
 * once), and a wait for the next wake-up (BLMOVE). What the script moved is handled while the BLMOVE waits;
 * the next read goes once both are handled, so the clearing never drops a wake-up not yet handled.
 */
export class InboxReader {
  #stopped = false;
  #loop: Promise<void> | undefined;
  /** Handle the taking list again before reading more (after a reconnect or a failed batch). */
  #retake = true;

  constructor(
    private readonly blocking: RedisClient & ScriptCommands,
    private readonly redis: RedisClient & ScriptCommands,
    private readonly keys: RedisKeys,
    private readonly siloId: string,
    /** Handles one wake-up; resolves once it is safe to forget it. */
    private readonly onWake: (entry: string) => Promise<void>,
    private readonly log: Logger,
    /** Called after the connection came back: wake the activations, in case a wake-up was lost. */
    private readonly onReconnected: () => void,
  ) {}

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops reading; wake-ups still in the inbox or the taking list stay there for `drainRemaining`. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.blocking.disconnect();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let failures = 0;
    let lostConnection = false;
    const onClose = (): void => {
      lostConnection = true;
    };
    const onReady = (): void => {
      if (!lostConnection) return;
      lostConnection = false;
      this.#retake = true;
      this.onReconnected();
    };
    this.blocking.on('close', onClose);
    this.blocking.on('ready', onReady);
    const inbox = this.keys.siloInbox(this.siloId);
    const taking = this.keys.siloTaking(this.siloId);
    /** Wake-ups on the taking list already handled (as they were moved): the next read clears them. */
    let handled: readonly string[] = [];
    while (!this.#stopped) {
      try {
        if (this.#retake) {
          this.#retake = false;
          const left = await this.redis.lrange(taking, 0, -1);
          await this.#handle(left);
          handled = left;
        }
        const moved = this.blocking.takeInbox(inbox, taking, BATCH, ...handled) as Promise<string[]>;
        const next = this.#blockingMove(inbox, taking);
        next.catch(() => undefined);
        // Handled while the BLMOVE waits; what it brings is handled at once when it comes.
        const handlingMoved = moved.then((entries) => this.#handle(entries));
        handlingMoved.catch(() => undefined);
        const first = await next;
        handled = [];
        if (first === DROPPED) {
          // What the script moved (its reply may be lost with the connection, and then never
          // settles) is on the taking list: handled again once the connection is back.
          this.#retake = true;
          continue;
        }
        failures = 0;
        await Promise.all([handlingMoved, first === null ? undefined : this.#handle([first])]);
        handled = [...(await moved), ...(first === null ? [] : [first])];
      } catch (error) {
        if (this.#stopped) return;
        this.#retake = true;
        failures += 1;
        this.log.warn('inbox read failed; retrying', { error: describeError(error), failures });
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5_000)));
      }
    }
    this.blocking.off('close', onClose);
    this.blocking.off('ready', onReady);
  }

  /**
   * BLMOVE of the oldest wake-up onto the taking list. A read sent while connected and still in
   * flight when the connection drops is neither failed nor sent again by ioredis: stop waiting for
   * it at the drop (what it moved is on the taking list, handled after the reconnect). A read
   * issued while disconnected waits in ioredis' offline queue and is sent once the connection is
   * back, so it is awaited like any other.
   */
  async #blockingMove(inbox: string, taking: string): Promise<string | null | typeof DROPPED> {
    const sentWhileConnected = this.blocking.status === 'ready';
    const read = this.blocking.blmove(inbox, taking, 'RIGHT', 'LEFT', INBOX_BLOCK_SECONDS);
    if (!sentWhileConnected) return read;
    read.catch(() => undefined);
    let closed: (() => void) | undefined;
    const dropped = new Promise<typeof DROPPED>((resolve) => {
      closed = () => resolve(DROPPED);
      this.blocking.once('close', closed);
    });
    try {
      return await Promise.race([read, dropped]);
    } finally {
      if (closed !== undefined) this.blocking.off('close', closed);
    }
  }

  /** Handles wake-ups; rejects when one of them could not be (then the batch is taken again). */
  async #handle(entries: readonly string[]): Promise<void> {
    if (entries.length === 0) return;
    const results = await Promise.allSettled([...new Set(entries)].map((entry) => this.onWake(entry)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw new Error(`a wake-up could not be handled: ${describeError(failed.reason)}`);
  }
}

/** Pops every wake-up left in a list, without blocking. */
export async function popAll(redis: RedisClient, key: string): Promise<string[]> {
  const tags: string[] = [];
  for (;;) {
    const batch = await redis.rpop(key, BATCH);
    if (batch === null || batch.length === 0) return [...new Set(tags)];
    tags.push(...batch);
  }
}
