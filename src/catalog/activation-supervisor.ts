/** How activation failures are retried. */
export interface SupervisionSettings {
  /** Failed activations allowed within `restartWindowMs` before the grain is suspended. */
  maxRestarts: number;
  restartWindowMs: number;
  /** First retry delay; doubles with each failure, up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

interface FailureRecord {
  failures: number;
  windowStart: number;
  lastError: string;
  /** Until when the grain is suspended (no activation attempt), or 0. */
  suspendedUntil: number;
  /** Asks already told the grain is suspended (job ids), so each hears it once. */
  answered: Set<string>;
}

export type FailureDecision = { action: 'retry'; delayMs: number } | { action: 'suspend'; untilMs: number; lastError: string };

/**
 * Decides what happens after an activation fails (onActivate threw, state could not be loaded):
 * retry with exponential backoff, or, past the restart limit within the window, suspend the grain
 * for a window so its callers get a typed error while its messages wait in the mailbox.
 */
export class ActivationSupervisor {
  readonly #records = new Map<string, FailureRecord>();

  constructor(private readonly settings: SupervisionSettings) {}

  failed(tag: string, error: string, now = Date.now()): FailureDecision {
    let record = this.#records.get(tag);
    if (record === undefined || now - record.windowStart > this.settings.restartWindowMs) {
      record = { failures: 0, windowStart: now, lastError: error, suspendedUntil: 0, answered: new Set() };
      this.#records.set(tag, record);
    }
    record.failures += 1;
    record.lastError = error;
    if (record.failures > this.settings.maxRestarts) {
      record.suspendedUntil = now + this.settings.restartWindowMs;
      return { action: 'suspend', untilMs: record.suspendedUntil, lastError: error };
    }
    const delayMs = Math.min(this.settings.baseDelayMs * 2 ** (record.failures - 1), this.settings.maxDelayMs);
    return { action: 'retry', delayMs };
  }

  /** The suspension in force for a grain, if any. */
  suspension(tag: string, now = Date.now()): { lastError: string; answered: Set<string> } | undefined {
    const record = this.#records.get(tag);
    if (record === undefined || record.suspendedUntil <= now) return undefined;
    return record;
  }

  succeeded(tag: string): void {
    this.#records.delete(tag);
  }
}
