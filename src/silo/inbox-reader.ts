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

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        const reply = (await this.blocking.call('BLMPOP', INBOX_BLOCK_SECONDS, 1, this.inboxKey, 'RIGHT', 'COUNT', BATCH)) as
          | [string, string[]]
          | null;
        failures = 0;
        if (reply !== null) for (const tag of new Set(reply[1])) this.onWake(tag);
      } catch (error) {
        if (this.#stopped) return;
        failures += 1;
        this.log.warn('inbox read failed; retrying', { error: describeError(error), failures });
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5_000)));
      }
    }
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
