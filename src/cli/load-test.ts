import { execEach, scanKeys as scanEveryNode, type Command } from '../redis/commands.ts';
import { randomUUID } from 'node:crypto';
import { build } from 'hdr-histogram-js';
import { connect } from '../client/connect.ts';
import type { GrainClient } from '../client/grain-client.ts';
import { deserialize } from '../messaging/serializer.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { Grain, GrainClass } from '../grain/grain.ts';
import { grainClassesOf } from '../grain/grain-module.ts';
import { redactedText, redactUrl } from '../config/options-schema.ts';
import { closeRedis, isClusterInput, openRedis, type RedisClient, type RedisConnectionInput } from '../redis/connection.ts';
import { RedisKeys } from '../redis/keys.ts';
import { Silo } from '../silo/silo.ts';

/** What to load, how hard, and for how long. */
export interface LoadTestPlan {
  /** Module exporting the grain class (a path, as for `redgrain silo --grains`). */
  module: string;
  /** The grain type to target (its `static type`); default: the module's only grain class. */
  type?: string;
  method: string;
  args: unknown[];
  /** How many distinct grain keys: 1 is one hot grain. */
  keys: number;
  distribution: 'uniform' | 'zipf';
  mode: 'send' | 'ask';
  /** Fixed rate (messages/s, open loop) or fixed concurrency (closed loop). */
  rate?: number;
  concurrency?: number;
  durationMs?: number;
  messages?: number;
  /** Silos to start in this process; 0 uses silos already running on `redis`. */
  silos: number;
  redis: RedisConnectionInput;
  keyPrefix: string;
  /**
   * The warm-up left out of the latency and throughput figures (it stays in the timeline): the
   * messages sent in the first `warmupMs`, or the first `warmupMessages`. Neither: none.
   */
  warmupMs?: number;
  warmupMessages?: number;
  /**
   * What to delete from Redis after the run: every key under the prefix (a prefix made for this
   * run), the keys of the grains this run created (a prefix others may use), or nothing.
   */
  cleanup: 'prefix' | 'grains' | 'none';
}

/** One second of the run. */
export interface LoadTestSecond {
  second: number;
  sent: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  mailboxDepth: number;
}

export interface LoadTestResult {
  /** The plan, with the Redis location shown without its password. */
  plan: Omit<LoadTestPlan, 'args' | 'redis'> & { args: string; redis: string };
  durationMs: number;
  attempted: number;
  acknowledged: number;
  /** The warm-up left out of `latencyMs` and `throughputPerSecond`: its messages and its length. */
  warmup: { messages: number; ms: number };
  /** Acknowledged messages after the warm-up: what `latencyMs` and `throughputPerSecond` measure. */
  measured: number;
  throughputPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  errorsByType: Record<string, number>;
  timeline: LoadTestSecond[];
  /** Whether each acknowledged message was processed exactly once (checked only with silos started here). */
  exactlyOnce: {
    checked: boolean;
    processed?: number;
    expected?: number;
    lost?: number;
    duplicated?: number;
    pending?: number;
    note?: string;
  };
  /** What the run deleted from Redis afterwards. */
  cleanup: { removedKeys: number; note: string };
}

export interface LoadTestProgress {
  elapsedMs: number;
  sent: number;
  errors: number;
  ratePerSecond: number;
  mailboxDepth: number;
}

/** The state field a load-tested grain counts its processed messages in (exactly-once check). */
const PROCESSED_FIELD = '__loadtestProcessed';

/**
 * Runs a load test: sends `method(...args)` to one or many grains of a type at a fixed rate or
 * concurrency, records latency in an HDR histogram (from the intended send time at a fixed
 * rate, so a stall is not hidden), samples mailbox depth every second, and, when it started the
 * silos itself, checks that every acknowledged message was processed exactly once: the target
 * handler is wrapped to count its runs in a state field, committed with each turn.
 */
export async function runLoadTest(
  plan: LoadTestPlan,
  onProgress: (p: LoadTestProgress) => void = () => undefined,
): Promise<LoadTestResult> {
  validatePlan(plan);
  const target = await loadGrainClass(plan.module, plan.type);
  const counted = plan.silos > 0 ? countingSubclass(target, plan.method) : undefined;
  const silos: Silo[] = [];
  const sampler = openRedis(plan.redis, 'redgrain:loadtest:sampler');
  const run = randomUUID().slice(0, 8);
  let client: GrainClient | undefined;
  let outcome: Omit<LoadTestResult, 'cleanup'>;
  let cleanup: LoadTestResult['cleanup'] | undefined;
  // Under a prefix others may use, what was there before the run is not the run's to delete.
  const before = plan.cleanup === 'grains' ? await sharedKeys(sampler, plan.keyPrefix, target.type) : undefined;
  try {
    for (let i = 0; i < plan.silos; i++) {
      silos.push(await Silo.start({ redis: plan.redis, keyPrefix: plan.keyPrefix, grains: [counted as GrainClass], logLevel: 'error' }));
    }
    client = await connect({ redis: plan.redis, keyPrefix: plan.keyPrefix, askTimeoutMs: 60_000 });
    outcome = await drive(plan, target, client, sampler, run, counted !== undefined, onProgress);
  } finally {
    // Whatever happened, the silos stop and the run's keys go: a failed run leaves nothing behind.
    await client?.close().catch(() => undefined);
    for (const silo of silos) await silo.stop().catch(() => undefined);
    cleanup = await removeRunKeys(
      sampler,
      plan,
      run,
      target.type,
      silos.map((s) => s.id),
      before,
    ).catch((error: unknown) => ({
      removedKeys: 0,
      note: `could not remove the run's keys: ${error instanceof Error ? error.message : String(error)}`,
    }));
    await closeRedis(sampler);
  }
  return { ...outcome, cleanup };
}

/** Sends the plan's messages and measures them; the exactly-once check when `check` is set. */
async function drive(
  plan: LoadTestPlan,
  target: GrainClass,
  client: GrainClient,
  sampler: RedisClient,
  run: string,
  check: boolean,
  onProgress: (p: LoadTestProgress) => void,
): Promise<Omit<LoadTestResult, 'cleanup'>> {
  const keys = Array.from({ length: plan.keys }, (_, i) => (plan.keys === 1 ? `lt-${run}-hot` : `lt-${run}-${i}`));
  const ids = keys.map((key) => GrainId.of(target.type, key));
  const pick = plan.distribution === 'zipf' ? zipfPicker(plan.keys) : () => Math.floor(Math.random() * plan.keys);
  const acknowledgedPerKey = new Array<number>(plan.keys).fill(0);
  const histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const errorsByType: Record<string, number> = {};
  const timeline: LoadTestSecond[] = [];
  let perSecond = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 2 });
  let secondSent = 0;
  let secondErrors = 0;
  let attempted = 0;
  let acknowledged = 0;
  let warmupMessages = 0;
  /** When the first message after the warm-up was due: the measured window starts there. */
  let measuredFrom: number | undefined;
  let errors = 0;
  let depth = 0;
  const started = performance.now();
  const deadline = plan.durationMs === undefined ? Infinity : started + plan.durationMs;
  const budget = plan.messages ?? Infinity;

  const sendOne = async (intendedAt: number, sequence: number): Promise<void> => {
    const warm =
      (plan.warmupMessages !== undefined && sequence < plan.warmupMessages) ||
      (plan.warmupMs !== undefined && intendedAt - started < plan.warmupMs);
    if (!warm) measuredFrom = Math.min(measuredFrom ?? intendedAt, intendedAt);
    const index = pick();
    const ref = client.getGrain(target, keys[index] as string) as unknown as {
      send(m: string, ...a: unknown[]): Promise<void>;
      ask(m: string, ...a: unknown[]): Promise<unknown>;
    };
    try {
      if (plan.mode === 'ask') await ref.ask(plan.method, ...plan.args);
      else await ref.send(plan.method, ...plan.args);
      const micros = Math.max(1, Math.round((performance.now() - intendedAt) * 1000));
      if (warm) warmupMessages += 1;
      else histogram.recordValue(micros);
      perSecond.recordValue(micros);
      acknowledged += 1;
      acknowledgedPerKey[index] = (acknowledgedPerKey[index] ?? 0) + 1;
      secondSent += 1;
    } catch (error) {
      errors += 1;
      secondErrors += 1;
      const name = error instanceof Error ? error.name : 'Error';
      errorsByType[name] = (errorsByType[name] ?? 0) + 1;
    }
  };

  const ticker = setInterval(() => {
    void (async () => {
      const elapsedMs = performance.now() - started;
      depth = await mailboxDepth(sampler, new RedisKeys(plan.keyPrefix), ids).catch(() => depth);
      timeline.push({
        second: timeline.length + 1,
        sent: secondSent,
        errors: secondErrors,
        p50Ms: perSecond.totalCount === 0 ? 0 : perSecond.getValueAtPercentile(50) / 1000,
        p99Ms: perSecond.totalCount === 0 ? 0 : perSecond.getValueAtPercentile(99) / 1000,
        mailboxDepth: depth,
      });
      perSecond = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 2 });
      onProgress({ elapsedMs, sent: acknowledged, errors, ratePerSecond: secondSent, mailboxDepth: depth });
      secondSent = 0;
      secondErrors = 0;
    })();
  }, 1_000);

  try {
    if (plan.rate !== undefined) {
      // Open loop: message n is due at start + n / rate, whether earlier ones finished or not.
      const interval = 1_000 / plan.rate;
      const inFlight = new Set<Promise<void>>();
      while (attempted < budget) {
        const intendedAt = started + attempted * interval;
        if (intendedAt >= deadline) break;
        const wait = intendedAt - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        attempted += 1;
        const p = sendOne(intendedAt, attempted - 1).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size > 10_000) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } else {
      const workers = Array.from({ length: plan.concurrency ?? 1 }, async () => {
        while (attempted < budget && performance.now() < deadline) {
          attempted += 1;
          await sendOne(performance.now(), attempted - 1);
        }
      });
      await Promise.all(workers);
    }
  } finally {
    clearInterval(ticker);
  }
  const durationMs = performance.now() - started;

  let exactlyOnce: LoadTestResult['exactlyOnce'] = { checked: false, note: 'not checked: the silos were not started by this run' };
  if (check) {
    exactlyOnce = await checkExactlyOnce(sampler, new RedisKeys(plan.keyPrefix), ids, acknowledgedPerKey, plan.mode);
  }

  const value = (p: number) => (histogram.totalCount === 0 ? 0 : histogram.getValueAtPercentile(p) / 1000);
  const measured = histogram.totalCount;
  const measuredMs = measuredFrom === undefined ? 0 : durationMs - (measuredFrom - started);
  return {
    plan: { ...plan, type: target.type, args: JSON.stringify(plan.args), redis: describeRedis(plan.redis) },
    durationMs,
    attempted,
    acknowledged,
    warmup: { messages: warmupMessages, ms: measuredFrom === undefined ? durationMs : measuredFrom - started },
    measured,
    throughputPerSecond: measuredMs <= 0 ? 0 : measured / (measuredMs / 1_000),
    latencyMs: {
      p50: value(50),
      p90: value(90),
      p99: value(99),
      p999: value(99.9),
      max: histogram.maxValue / 1000,
      mean: histogram.mean / 1000,
    },
    errorsByType,
    timeline,
    exactlyOnce,
  };
}

/** Where the run went, for its report: a URL without its password, or host:port. */
function describeRedis(input: RedisConnectionInput): string {
  if (typeof input === 'string') return redactUrl(input);
  if (isClusterInput(input))
    return `cluster ${input.cluster.map((node) => (typeof node === 'string' ? redactUrl(node) : `${node.host}:${node.port}`)).join(',')}`;
  const { host, port, path } = input;
  return (
    path ??
    (host === undefined && port === undefined
      ? redactedText(input)
      : `${input.tls === undefined ? 'redis' : 'rediss'}://${host ?? '127.0.0.1'}:${port ?? 6379}`)
  );
}

/** Keys under a prefix that belong to no grain or silo (`P:types`, the reminders queue...), and whether `type` was registered. */
interface SharedKeys {
  names: Set<string>;
  typeRegistered: boolean;
}

async function sharedKeys(redis: RedisClient, prefix: string, type: string): Promise<SharedKeys> {
  const names = new Set((await scanKeys(redis, `${prefix}:*`)).filter((key) => !key.includes('{')));
  const typeRegistered = (await redis.sismember(new RedisKeys(prefix).grainTypes(), type)) === 1;
  return { names, typeRegistered };
}

async function scanKeys(redis: RedisClient, match: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of scanEveryNode(redis, match, 1_000)) keys.push(...batch);
  return keys;
}

/**
 * Deletes what the run left in Redis. A prefix made for the run goes whole. Under a prefix others
 * may use, only what the run created: the keys of its grains (their names carry the run id) and
 * of the silos it started, the prefix-wide keys that did not exist before it, and its grain type
 * when the run registered it. Keys are found with SCAN over the prefix, the one place redgrain
 * scans: it deletes a run's own keys, which nothing else reads.
 */
async function removeRunKeys(
  redis: RedisClient,
  plan: LoadTestPlan,
  run: string,
  type: string,
  siloIds: string[],
  before: SharedKeys | undefined,
): Promise<LoadTestResult['cleanup']> {
  if (plan.cleanup === 'none') {
    return {
      removedKeys: 0,
      note:
        plan.silos === 0
          ? `the grains of this run (keys lt-${run}-*) stay with the running silos under prefix ${plan.keyPrefix}, which deactivate them when idle`
          : 'nothing to remove: the private redis-server is stopped',
    };
  }
  const doomed =
    plan.cleanup === 'prefix'
      ? await scanKeys(redis, `${plan.keyPrefix}:*`)
      : [
          ...(await scanKeys(redis, `${plan.keyPrefix}:*lt-${run}-*`)),
          ...(await Promise.all(siloIds.map((id) => scanKeys(redis, `${plan.keyPrefix}:s:{${id}}:*`)))).flat(),
          ...(await scanKeys(redis, `${plan.keyPrefix}:*`)).filter((key) => !key.includes('{') && before?.names.has(key) === false),
        ];
  let removedKeys = 0;
  // One key per command: on a cluster the keys live in many slots.
  for (let i = 0; i < doomed.length; i += 1_000) {
    const replies = await execEach(
      redis,
      doomed.slice(i, i + 1_000).map((key): Command => ['unlink', key]),
    );
    for (const [error, removed] of replies) {
      if (error !== null) throw error;
      removedKeys += Number(removed);
    }
  }
  if (plan.cleanup === 'grains' && before?.typeRegistered === false) await redis.srem(new RedisKeys(plan.keyPrefix).grainTypes(), type);
  return {
    removedKeys,
    note:
      plan.cleanup === 'prefix'
        ? `removed every key under the run's prefix ${plan.keyPrefix}`
        : `removed the keys this run created under prefix ${plan.keyPrefix}`,
  };
}

/** Waits until every acknowledged message ran, then compares runs with acknowledgements per key. */
async function checkExactlyOnce(
  redis: RedisClient,
  keys: RedisKeys,
  ids: GrainId[],
  acknowledged: number[],
  mode: 'send' | 'ask',
): Promise<LoadTestResult['exactlyOnce']> {
  const expected = acknowledged.reduce((a, b) => a + b, 0);
  // One-way messages may still be queued: wait (bounded) for the mailboxes to drain.
  const until = Date.now() + 120_000;
  while ((await mailboxDepth(redis, keys, ids, true)) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  const pending = await mailboxDepth(redis, keys, ids, true);
  const replies = await execEach(
    redis,
    ids.map((id): Command => ['hget', keys.state(id), PROCESSED_FIELD]),
  );
  let processed = 0;
  let lost = 0;
  let duplicated = 0;
  replies.forEach(([, text], i) => {
    const runs = typeof text === 'string' ? Number(deserialize(text)) : 0;
    processed += runs;
    const diff = runs - (acknowledged[i] ?? 0);
    if (diff < 0) lost -= diff;
    if (diff > 0) duplicated += diff;
  });
  return {
    checked: true,
    processed,
    expected,
    lost,
    duplicated,
    pending,
    note:
      mode === 'ask'
        ? 'asks that failed (timeout) may still have run: those count as duplicated'
        : 'sends that failed with "may or may not have been enqueued" may have run: those count as duplicated',
  };
}

/** Messages waiting (and, with `withActive`, in progress) in the target grains' mailboxes. */
async function mailboxDepth(redis: RedisClient, keys: RedisKeys, ids: GrainId[], withActive = false): Promise<number> {
  const replies = await execEach(
    redis,
    ids.flatMap((id): Command[] => [
      ['llen', keys.mailbox(id, 'wait')],
      ...(withActive ? [['llen', keys.mailbox(id, 'active')] as Command] : []),
    ]),
  );
  return replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
}

/**
 * The target class with its method wrapped to count runs in a state field: committed with the
 * turn's other state changes, so the count is exactly the number of turns that took effect.
 */
function countingSubclass(target: GrainClass, method: string): GrainClass {
  const original = (target.prototype as Record<string, unknown>)[method];
  if (typeof original !== 'function') throw new TypeError(`${target.type} has no handler "${method}"`);
  const counted = class extends (target as unknown as new () => Grain<Record<string, unknown>>) {};
  Object.defineProperty(counted, 'type', { value: target.type });
  Object.defineProperty(counted, 'name', { value: target.name });
  Object.defineProperty(counted.prototype, method, {
    value: async function (this: Grain<Record<string, unknown>>, ...args: unknown[]) {
      const result: unknown = await (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      this.state[PROCESSED_FIELD] = Number(this.state[PROCESSED_FIELD] ?? 0) + 1;
      return result;
    },
    writable: true,
    configurable: true,
  });
  return counted as unknown as GrainClass;
}

async function loadGrainClass(module: string, type: string | undefined): Promise<GrainClass> {
  const classes = await grainClassesOf(module);
  const found = type === undefined ? (classes.length === 1 ? classes[0] : undefined) : classes.find((c) => c.type === type);
  if (found === undefined) {
    throw new TypeError(
      type === undefined
        ? `${module} exports ${classes.length} grain classes (${classes.map((c) => c.type).join(', ')}); choose one with --type`
        : `${module} exports no grain class of type "${type}" (it has ${classes.map((c) => c.type).join(', ') || 'none'})`,
    );
  }
  return found;
}

/** Zipf-like skew (s = 1.1): key 0 is the hottest. */
function zipfPicker(n: number): () => number {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** 1.1);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w / total));
  return () => {
    const r = Math.random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function validatePlan(plan: LoadTestPlan): void {
  const problems: string[] = [];
  if (!Number.isInteger(plan.keys) || plan.keys < 1) problems.push('--keys must be a whole number of at least 1');
  if ((plan.rate === undefined) === (plan.concurrency === undefined)) problems.push('give exactly one of --rate and --concurrency');
  if (plan.rate !== undefined && !(plan.rate > 0)) problems.push('--rate must be positive');
  if (plan.concurrency !== undefined && !(Number.isInteger(plan.concurrency) && plan.concurrency > 0))
    problems.push('--concurrency must be a positive whole number');
  if ((plan.durationMs === undefined) === (plan.messages === undefined)) problems.push('give exactly one of --duration and --messages');
  if (plan.durationMs !== undefined && !(plan.durationMs > 0)) problems.push('--duration must be positive');
  if (plan.messages !== undefined && !(Number.isInteger(plan.messages) && plan.messages > 0))
    problems.push('--messages must be a positive whole number');
  if (!Number.isInteger(plan.silos) || plan.silos < 0) problems.push('--silos must be a whole number (0 uses running silos)');
  if (!Array.isArray(plan.args)) problems.push('--args must be a JSON array');
  if (plan.warmupMs !== undefined && !(plan.warmupMs >= 0)) problems.push('--warmup must not be negative');
  if (plan.warmupMessages !== undefined && !(Number.isInteger(plan.warmupMessages) && plan.warmupMessages >= 0))
    problems.push('--warmup must be a whole number of messages');
  if (problems.length > 0) throw new TypeError(problems.join('; '));
}
