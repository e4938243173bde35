import { describeError } from '../errors/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Activation } from './activation.ts';

/**
 * Deactivates activations that have been idle for their type's collection age (or the silo's):
 * sweeps every quarter of the shortest age (between 50 ms and a minute). An activation draining
 * messages or still forwarding its outbox is not idle.
 */
export class IdleCollector {
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly activations: () => Iterable<Activation>,
    private readonly defaultAgeMs: number,
    shortestAgeMs: number,
    private readonly log: Logger,
  ) {
    this.#timer = setInterval(() => this.#sweep(), Math.max(50, Math.min(shortestAgeMs / 4, 60_000))).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const now = Date.now();
    for (const activation of this.activations()) {
      const age = activation.type.collectionAgeMs ?? this.defaultAgeMs;
      if (activation.status === 'valid' && !activation.draining && !activation.forwarding && now - activation.lastActiveAt >= age) {
        activation
          .deactivate('idle')
          .catch((error: unknown) =>
            this.log.error('deactivation failed', { grain: activation.id.toString(), error: describeError(error) }),
          );
      }
    }
  }
}
