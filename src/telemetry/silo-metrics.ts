import { metrics, type BatchObservableCallback, type Counter, type Histogram, type Meter, type ObservableGauge } from '@opentelemetry/api';
import { Attr, INSTRUMENTATION_NAME, Metrics } from './semantics.ts';

/** Histogram buckets in seconds: turns take from a fraction of a millisecond to seconds. */
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What a silo can tell about itself when its gauges are read (only when a meter provider reads them). */
export interface SiloObservations {
  /** Live activations per grain type. */
  activationsByType(): Map<string, number>;
  /** Messages waiting in the mailboxes of this silo's activations, per grain type. */
  mailboxDepthByType(): Promise<Map<string, number>>;
  /** Messages waiting behind this silo's activations as of their last takes (no Redis read). */
  waitingHint(): number;
}

/**
 * What a silo writes into its membership record with each heartbeat, for the dashboard: counters
 * since the silo started, and the turn latency over the last interval. Kept in memory, so it costs
 * no Redis command of its own.
 */
export interface SiloStats {
  /** Turns finished since start (completed or failed). */
  processed: number;
  failed: number;
  deadLettered: number;
  /** Turn duration percentiles over the last heartbeat interval (ms); 0 with no turn. */
  turnP50Ms: number;
  turnP99Ms: number;
  /** Live activations per grain type. */
  activationsByType: Record<string, number>;
  /** Messages waiting behind this silo's activations, as of their last takes. */
  mailboxDepth: number;
}

/** Most turn durations kept between two heartbeats (a sample beyond it replaces an older one). */
const LATENCY_SAMPLES = 4_096;

/**
 * A silo's metrics through the OpenTelemetry metrics API. Without a registered meter provider
 * every instrument is a no-op and the gauges are never read (so they cost no Redis command).
 * Attributes stay low-cardinality: grain type and method, never grain keys.
 */
export class SiloMetrics {
  readonly #meter: Meter;
  readonly #processed: Counter;
  readonly #failed: Counter;
  readonly #retried: Counter;
  readonly #duration: Histogram;
  readonly #queueWait: Histogram;
  readonly #activated: Counter;
  readonly #deactivated: Counter;
  readonly #conflicts: Counter;
  readonly #deadLetters: Counter;
  readonly #gauges: ObservableGauge[];
  readonly #observe: BatchObservableCallback;
  readonly #observations: SiloObservations;
  readonly #stats = { processed: 0, failed: 0, deadLettered: 0 };
  #durations: number[] = [];
  #seen = 0;

  constructor(
    private readonly siloId: string,
    observations: SiloObservations,
  ) {
    const meter = metrics.getMeter(INSTRUMENTATION_NAME);
    this.#meter = meter;
    this.#observations = observations;
    this.#processed = meter.createCounter(Metrics.messagesProcessed, {
      description: 'Messages whose turn finished (completed or failed)',
      unit: '{message}',
    });
    this.#failed = meter.createCounter(Metrics.messagesFailed, {
      description: 'Messages whose handler threw, or that were refused or dead-lettered',
      unit: '{message}',
    });
    this.#retried = meter.createCounter(Metrics.messagesRetried, {
      description: 'Messages delivered again after an activation died or hung during their turn',
      unit: '{message}',
    });
    const advice = { explicitBucketBoundaries: SECONDS_BUCKETS };
    this.#duration = meter.createHistogram(Metrics.messageDuration, {
      description: 'Turn duration: handler and state commit',
      unit: 's',
      advice,
    });
    this.#queueWait = meter.createHistogram(Metrics.messageQueueWait, {
      description: 'Time from send to the start of the turn',
      unit: 's',
      advice,
    });
    this.#activated = meter.createCounter(Metrics.activationsActivated, { description: 'Activations created', unit: '{activation}' });
    this.#deactivated = meter.createCounter(Metrics.activationsDeactivated, { description: 'Activations ended', unit: '{activation}' });
    this.#conflicts = meter.createCounter(Metrics.directoryConflicts, {
      description: 'Directory claims found held by another silo',
      unit: '{claim}',
    });
    this.#deadLetters = meter.createCounter(Metrics.deadLetters, {
      description: 'Messages moved to the dead-letter stream',
      unit: '{message}',
    });
    const live = meter.createObservableGauge(Metrics.activationsLive, {
      description: 'Live activations on this silo',
      unit: '{activation}',
    });
    const depth = meter.createObservableGauge(Metrics.mailboxDepth, {
      description: "Messages waiting in the mailboxes of this silo's activations",
      unit: '{message}',
    });
    this.#gauges = [live, depth];
    this.#observe = async (result) => {
      for (const [type, count] of observations.activationsByType()) result.observe(live, count, this.#attrs(type));
      for (const [type, count] of await observations.mailboxDepthByType()) result.observe(depth, count, this.#attrs(type));
    };
    meter.addBatchObservableCallback(this.#observe, this.#gauges);
  }

  turnFinished(
    type: string,
    method: string,
    outcome: 'completed' | 'failed',
    durationMs: number,
    queueWaitMs: number,
    errorType?: string,
  ): void {
    const attributes = { ...this.#attrs(type), [Attr.grainMethod]: method };
    this.#processed.add(1, { ...attributes, [Attr.outcome]: outcome });
    this.#stats.processed += 1;
    if (outcome === 'failed') this.#stats.failed += 1;
    // A uniform sample of the interval's turns, bounded in memory.
    this.#seen += 1;
    if (this.#durations.length < LATENCY_SAMPLES) this.#durations.push(durationMs);
    else {
      const slot = Math.floor(Math.random() * this.#seen);
      if (slot < LATENCY_SAMPLES) this.#durations[slot] = durationMs;
    }
    if (outcome === 'failed') this.#failed.add(1, { ...attributes, [Attr.errorType]: errorType ?? 'Error' });
    this.#duration.record(durationMs / 1000, attributes);
    this.#queueWait.record(Math.max(0, queueWaitMs) / 1000, attributes);
  }

  retried(type: string, method: string): void {
    this.#retried.add(1, { ...this.#attrs(type), [Attr.grainMethod]: method });
  }

  activated(type: string): void {
    this.#activated.add(1, this.#attrs(type));
  }

  deactivated(type: string, reason: string): void {
    this.#deactivated.add(1, { ...this.#attrs(type), [Attr.deactivationReason]: reason });
  }

  directoryConflict(type: string): void {
    this.#conflicts.add(1, this.#attrs(type));
  }

  deadLettered(type: string, method: string): void {
    this.#deadLetters.add(1, { ...this.#attrs(type), [Attr.grainMethod]: method });
    this.#stats.deadLettered += 1;
  }

  /** The stats for the next heartbeat; starts a new latency interval. */
  takeStats(): SiloStats {
    const sorted = this.#durations.sort((a, b) => a - b);
    const at = (p: number) => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0));
    const stats: SiloStats = {
      ...this.#stats,
      turnP50Ms: Math.round(at(0.5) * 100) / 100,
      turnP99Ms: Math.round(at(0.99) * 100) / 100,
      activationsByType: Object.fromEntries(this.#observations.activationsByType()),
      mailboxDepth: this.#observations.waitingHint(),
    };
    this.#durations = [];
    this.#seen = 0;
    return stats;
  }

  /** Stops the gauges from being read (the silo stopped). */
  close(): void {
    this.#meter.removeBatchObservableCallback(this.#observe, this.#gauges);
  }

  #attrs(type: string): Record<string, string> {
    return { [Attr.grainType]: type, [Attr.siloId]: this.siloId };
  }
}
