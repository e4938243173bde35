import { describeError } from '../errors/errors.ts';
import type { Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.ts';

/** Longest a blocking read waits before it is re-issued (BullMQ caps its own at 10 s too). */
export const INBOX_BLOCK_SECONDS = 10;
const BATCH = 1_000;

/**
 * Reads this silo's inbox of wake-ups on the silo's one blocking connection and hands each grain
 * tag to the catalog, once per batch however many messages a hot grain received.
 */
export class InboxReader {
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly blocking: Redis,
    private readonly inboxKey: string,
    private readonly onWake: (tag: string) => void,
    private readonly log: Logger,
    /** Called after the connection came back: wake-ups popped by a read whose reply was lost are gone. */
    private readonly onReconnected: () => void,
  ) {}

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops reading; wake-ups still in the inbox stay there for `drainRemaining`. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.blocking.disconnect();
    await this.#loop;
  }

  #dispatch(reply: [string, string[]] | null): void {
    if (reply !== null) for (const tag of new Set(reply[1])) this.onWake(tag);
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
      this.onReconnected();
    };
    this.blocking.on('close', onClose);
    this.blocking.on('ready', onReady);
    while (!this.#stopped) {
      try {
        // A read sent while connected and still in flight when the connection drops is neither
        // failed nor sent again by ioredis: stop waiting for it at the drop. A read issued while
        // disconnected waits in ioredis' offline queue and is sent once the connection is back,
        // so it is awaited like any other. Whatever a read returns is dispatched, even late.
        const sentWhileConnected = this.blocking.status === 'ready';
        const read = this.blocking.call('BLMPOP', INBOX_BLOCK_SECONDS, 1, this.inboxKey, 'RIGHT', 'COUNT', BATCH) as Promise<
          [string, string[]] | null
        >;
        let reply: [string, string[]] | null | 'dropped';
        if (sentWhileConnected) {
          let closed: (() => void) | undefined;
          const dropped = new Promise<'dropped'>((resolve) => {
            closed = () => resolve('dropped');
            this.blocking.once('close', closed);
          });
          reply = await Promise.race([read, dropped]).finally(() => {
            if (closed !== undefined) this.blocking.off('close', closed);
          });
          if (reply === 'dropped') {
            read.then((late) => this.#dispatch(late), () => undefined);
            continue;
          }
        } else {
          reply = await read;
        }
        this.#dispatch(reply);
        failures = 0;
      } catch (error) {
        if (this.#stopped) return;
        failures += 1;
        this.log.warn('inbox read failed; retrying', { error: describeError(error), failures });
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5_000)));
      }
    }
    this.blocking.off('close', onClose);
    this.blocking.off('ready', onReady);
  }
}

/** Pops every wake-up left in a list, without blocking. */
export async function popAll(redis: Redis, key: string): Promise<string[]> {
  const tags: string[] = [];
  for (;;) {
    const batch = await redis.rpop(key, BATCH);
    if (batch === null || batch.length === 0) return [...new Set(tags)];
    tags.push(...batch);
  }
}
