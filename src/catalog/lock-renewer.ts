import { describeError } from '../errors/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Activation } from './activation.ts';

/**
 * Renews the message locks of long turns: every third of the lock duration, each activation that
 * has held its batch that long gets its messages' locks extended by a whole duration. Runs until
 * the last turn has committed or been handed back (a stopping silo stops it last).
 */
export class LockRenewer {
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly activations: () => Iterable<Activation>,
    private readonly lockDurationMs: number,
    private readonly log: Logger,
  ) {
    this.#timer = setInterval(() => this.#renew(), Math.max(50, lockDurationMs / 3)).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #renew(): void {
    const now = Date.now();
    const threshold = this.lockDurationMs / 3;
    for (const activation of this.activations()) {
      if (activation.held.length === 0 || now - activation.heldSince < threshold) continue;
      for (const message of activation.held) {
        activation.mailbox
          .extendLock(message, this.lockDurationMs)
          .catch((error: unknown) =>
            this.log.warn('could not renew a message lock', { grain: activation.id.toString(), error: describeError(error) }),
          );
      }
    }
  }
}
