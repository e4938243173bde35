import { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError, type GrainClient } from 'redgrain';
import { startRedisCluster, startRedisServer, TestCluster, type RedisCluster, type RedisServer, type SiloProcess } from 'redgrain/testing';
import { Relay } from '../grains/relay.ts';
import { Tally, type TallyState } from '../grains/tally.ts';

export type Fault = 'kill' | 'pause' | 'redis-restart' | 'poison';

export interface ChaosOptions {
  /** Rounds to run; with `durationMs`, the least number of rounds. */
  rounds: number;
  /** Keep striking rounds until this much time has passed since the first one (ms). */
  durationMs?: number;
  /** Load time before each fault and after it (ms). */
  roundMs: number;
  faults: Fault[];
  silos?: number;
  grains?: number;
  senders?: number;
  log?: (line: string) => void;
  /**
   * Send to Relay grains, which forward what they count to their sinks in the same turn: proves a
   * turn's sends take effect exactly once, in order, across kills and takeovers.
   */
  relay?: boolean;
  /**
   * Sends each sender keeps in flight to one grain (default 4): sent at once, all but the first
   * travel as one pack. 1 sends one message at a time.
   */
  window?: number;
  /**
   * Run on a private 3-master Redis Cluster (every node AOF, fsync always) instead of one
   * redis-server; silos get it as REDIS_CLUSTER. A `redis-restart` then crashes one master (picked
   * at random) and starts it again.
   */
  redisCluster?: boolean;
}

export interface RoundResult {
  round: number;
  fault: Fault;
  /** Messages acknowledged to senders during the round. */
  messages: number;
  /** Time from the fault until the cluster had taken the dead silo's grains over (kill, pause). */
  takeoverMs: number | undefined;
}

export interface ChaosReport {
  rounds: RoundResult[];
  acknowledged: number;
  /** Acknowledged messages never applied and not in the dead letters. */
  lost: number;
  /** Healthy messages dead-lettered because they were in flight on silos a poison message killed. */
  deadLetteredBystanders: number;
  doubleApplied: number;
  senderRetries: number;
  deadLetters: number;
  gaps: string[];
  doubles: string[];
  /** Relay runs: messages the relays sent on, and those their sinks got twice or never. */
  relayed?: { sent: number; lost: string[]; doubles: string[] };
  /** BullMQ jobs the senders' grains got (a pack is one job for several messages). */
  jobs: number;
}

const GRAIN_MODULES = ['../grains/tally.ts', '../grains/relay.ts'].map((path) => new URL(path, import.meta.url).pathname);
/** Detection in 3 s: 500 ms heartbeats, 6 missed. */
const SILENCE_MS = 3_000;
/** Batches of 16 whatever the default: taken and released batches are where order is most at risk. */
const ENV = {
  REDGRAIN_HEARTBEAT_INTERVAL_MS: '500',
  REDGRAIN_MISSED_HEARTBEATS_LIMIT: '6',
  REDGRAIN_MAX_MESSAGE_ATTEMPTS: '2',
  REDGRAIN_TURN_BATCH_SIZE: '16',
};

/** The private Redis of a run: one redis-server, or a Redis Cluster. */
type ChaosRedis = { server: RedisServer } | { redisCluster: RedisCluster };

/**
 * Runs senders against a cluster of silo processes on a private Redis (AOF, fsync always), or a
 * private Redis Cluster, while faults strike one per round, then checks every grain's record of
 * what it applied.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const redis: ChaosRedis =
    options.redisCluster === true
      ? { redisCluster: await startRedisCluster({ masters: 3, appendOnly: true }) }
      : { server: await startRedisServer({ appendOnly: true }) };
  const observer =
    'server' in redis
      ? new Redis(redis.server.url, { maxRetriesPerRequest: null })
      : new Cluster(redis.redisCluster.startupNodes, { scaleReads: 'master', redisOptions: { maxRetriesPerRequest: null } });
  observer.on('error', () => undefined); // it reconnects after the Redis restart
  let cluster: TestCluster | undefined;
  try {
    cluster = await TestCluster.start({
      grains: GRAIN_MODULES,
      silos: options.silos ?? 3,
      ...('server' in redis ? { redisUrl: redis.server.url } : { redisCluster: redis.redisCluster.urls }),
      env: ENV,
    });
    const grainKeys = Array.from({ length: options.grains ?? 12 }, (_, i) => `tally-${i}`);
    const senders = await Promise.all(
      Array.from(
        { length: options.senders ?? 4 },
        async (_, i) =>
          new Sender(`s${i}`, await cluster!.connect({ redisTimeoutMs: 2_000 }), grainKeys, options.relay ?? false, options.window ?? 4),
      ),
    );
    const running = senders.map((s) => s.run());
    const rounds: RoundResult[] = [];
    let poisoned = 0;
    const startedAt = Date.now();
    for (let round = 1; round <= options.rounds || Date.now() - startedAt < (options.durationMs ?? 0); round++) {
      const fault = options.faults[(round - 1) % options.faults.length] as Fault;
      const before = acknowledged(senders);
      await sleep(options.roundMs);
      log(`round ${round}: ${fault}`);
      let takeoverMs: number | undefined;
      if (fault === 'kill' || fault === 'pause') {
        const victim = pick(cluster.silos.filter((s) => s.isRunning));
        takeoverMs = await strike(cluster, observer, victim, fault);
      } else if (fault === 'redis-restart') {
        log(`  ${await restartRedis(redis)}`);
      } else {
        poisoned += 1;
        const grain = pick(senders).client.getGrain(Tally, pick(grainKeys));
        await retrying(() => grain.send('crash'));
        // Each attempt kills a silo: keep the cluster at strength while the poison burns out.
        await replaceDeadSilos(cluster, observer, 2);
      }
      await sleep(options.roundMs);
      rounds.push({ round, fault, messages: acknowledged(senders) - before, takeoverMs });
    }
    log('stopping the senders');
    for (const sender of senders) sender.stop();
    await Promise.all(running);
    log(`verifying ${acknowledged(senders)} acknowledged messages`);
    // Every poison message burns out into the dead letters (healthy bystanders may join them, so
    // count the poison messages themselves, not the stream's length).
    const letters = (senders[0] as Sender).client.deadLetters;
    const deadLetters = await waitUntil(async () => {
      const list = await letters.list(10_000);
      return list.filter((letter) => letter.method === 'crash').length >= poisoned ? list.length : undefined;
    }, 60_000);
    const report = await verify(senders, grainKeys, options.relay ?? false).catch(async (error: unknown) => {
      log(`verification failed: ${String(error)}\n${await diagnose(observer, cluster!, grainKeys)}`);
      throw error;
    });
    const relayed = options.relay === true ? await verifyRelays((senders[0] as Sender).client, grainKeys) : undefined;
    // Each grain's mailbox counts the jobs it was given (BullMQ's id counter; no grain was at rest).
    const type = options.relay === true ? 'Relay' : 'Tally';
    const ids = await Promise.all(grainKeys.map((key) => observer.get(`${cluster!.keyPrefix}:q:{${type}/${key}}:id`)));
    const jobs = ids.reduce((sum, id) => sum + Number(id ?? 0), 0);
    log(`${acknowledged(senders)} messages travelled in ${jobs} jobs`);
    return { rounds, ...report, deadLetters, jobs, ...(relayed === undefined ? {} : { relayed }) };
  } finally {
    observer.disconnect();
    await cluster?.stop();
    await ('server' in redis ? redis.server.stop() : redis.redisCluster.stop());
  }
}

class Sender {
  readonly acked = new Map<string, number>();
  #stopped = false;

  constructor(
    readonly id: string,
    readonly client: GrainClient,
    private readonly grainKeys: string[],
    private readonly relay: boolean,
    private readonly window: number,
  ) {}

  stop(): void {
    this.#stopped = true;
  }

  /**
   * Sends seq 0, 1, 2 ... to each grain in turn, `window` at a time (so they travel in packs).
   * When one fails, those from it on are sent again with attempt + 1: each carries an idempotency
   * key, so one that was enqueued after all runs once. A send that resolved is acknowledged.
   */
  async run(): Promise<void> {
    while (!this.#stopped) {
      for (const key of this.grainKeys) {
        if (this.#stopped) return;
        let next = this.acked.get(key) ?? 0;
        const end = next + this.window;
        let attempt = 1;
        while (next < end) {
          const seqs = Array.from({ length: end - next }, (_, i) => next + i);
          const results = await Promise.allSettled(seqs.map((seq) => this.#send(key, seq, attempt)));
          const failed = results.findIndex((result) => result.status === 'rejected');
          const failure = results[failed];
          if (failure?.status === 'rejected' && !(failure.reason instanceof RedisUnavailableError)) throw failure.reason;
          next = failed === -1 ? end : next + failed;
          this.acked.set(key, next);
          if (failed !== -1) {
            attempt += 1;
            await sleep(50);
          }
        }
      }
    }
  }

  #send(key: string, seq: number, attempt: number): Promise<void> {
    const once = { idempotencyKey: `${this.id}:${key}:${seq}` };
    return this.relay
      ? this.client.getGrain(Relay, key).with(once).send('forward', this.id, seq, attempt)
      : this.client.getGrain(Tally, key).with(once).send('apply', this.id, seq, attempt);
  }
}

async function verify(
  senders: Sender[],
  grainKeys: string[],
  relay: boolean,
): Promise<Omit<ChaosReport, 'rounds' | 'deadLetters' | 'jobs'>> {
  const client = (senders[0] as Sender).client;
  // Healthy messages a poison message took down with it: set aside, not lost.
  const setAside = new Set<string>();
  for (const letter of await client.deadLetters.list(10_000)) {
    if (letter.method !== 'apply' && letter.method !== 'forward') continue;
    const envelope = letter.message as { a: string };
    const [sender, seq] = (JSON.parse(envelope.a) as { json: [string, number, number] }).json;
    setAside.add(`${letter.grainKey}|${sender}|${seq}`);
  }
  let acked = 0;
  let lost = 0;
  let bystanders = 0;
  let retries = 0;
  const gaps: string[] = [];
  const doubles: string[] = [];
  for (const key of grainKeys) {
    const expected = new Map(senders.map((s) => [s.id, s.acked.get(key) ?? 0]));
    acked += [...expected.values()].reduce((a, b) => a + b, 0);
    const excused = (sender: string, seq: number): boolean => setAside.has(`${key}|${sender}|${seq}`);
    // Wait until the grain has applied everything acknowledged to it (or report what is missing).
    const ask = (): Promise<TallyState> =>
      relay
        ? client.getGrain(Relay, key).with({ timeoutMs: 5_000 }).ask('report')
        : client.getGrain(Tally, key).with({ timeoutMs: 5_000 }).ask('report');
    const state = await waitUntil(async () => {
      const report = await ask().catch(() => undefined);
      if (report === undefined) return undefined;
      const done = [...expected].every(([sender, n]) => (report.next[sender] ?? 0) >= n || excused(sender, n - 1));
      return done ? report : undefined;
    }, 60_000).catch(ask);
    const missing: [string, number][] = [];
    for (const [sender, n] of expected) for (let seq = state.next[sender] ?? 0; seq < n; seq++) missing.push([sender, seq]);
    for (const gap of state.gaps) {
      const [sender, from, to] = gap.split(':') as [string, string, string];
      for (let seq = Number(from); seq < Number(to); seq++) missing.push([sender, seq]);
    }
    for (const [sender, seq] of missing) {
      if (excused(sender, seq)) bystanders += 1;
      else {
        lost += 1;
        gaps.push(`${key} ${sender} seq ${seq}`);
      }
    }
    doubles.push(...state.doubles.map((d) => `${key} ${d}`));
    retries += state.retries;
  }
  return {
    acknowledged: acked,
    lost,
    deadLetteredBystanders: bystanders,
    doubleApplied: doubles.length,
    senderRetries: retries,
    gaps,
    doubles,
  };
}

/**
 * Each relay's sink got what the relay counted, exactly once and in order: seq 0 .. count-1 from
 * sender `relay`, no gap, no double (waiting until the last forwards have arrived).
 */
async function verifyRelays(client: GrainClient, grainKeys: string[]): Promise<NonNullable<ChaosReport['relayed']>> {
  let sent = 0;
  const lost: string[] = [];
  const doubles: string[] = [];
  for (const key of grainKeys) {
    const { count } = await client.getGrain(Relay, key).with({ timeoutMs: 5_000 }).ask('report');
    sent += count;
    const sink = client.getGrain(Tally, `sink-${key}`).with({ timeoutMs: 5_000 });
    const state = await waitUntil(async () => {
      const report = await sink.ask('report');
      return (report.next.relay ?? 0) >= count ? report : undefined;
    }, 60_000).catch(() => sink.ask('report'));
    if ((state.next.relay ?? 0) !== count) lost.push(`sink-${key}: got ${state.next.relay ?? 0} of ${count}`);
    lost.push(...state.gaps.map((gap) => `sink-${key} ${gap}`));
    doubles.push(...state.doubles.map((double) => `sink-${key} ${double}`));
  }
  return { sent, lost, doubles };
}

/** Kills or pauses a silo, starts a replacement, and times the takeover of the victim's grains. */
async function strike(cluster: TestCluster, observer: Redis | Cluster, victim: SiloProcess, fault: 'kill' | 'pause'): Promise<number> {
  const at = Date.now();
  victim.signal(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
  await cluster.addSilo();
  // Taken over: the victim is declared dead and dropped from the silo set after its grains moved.
  await waitUntil(async () => ((await observer.sismember(`${cluster.keyPrefix}:silos`, victim.id)) === 0 ? true : undefined), 60_000);
  const takeoverMs = Date.now() - at;
  if (fault === 'pause') {
    victim.signal('SIGCONT');
    await victim.exited; // it learns it was declared dead, and exits
  }
  return takeoverMs;
}

async function replaceDeadSilos(cluster: TestCluster, observer: Redis | Cluster, expectedDeaths: number): Promise<void> {
  let replaced = 0;
  const deadline = Date.now() + 60_000;
  while (replaced < expectedDeaths && Date.now() < deadline) {
    const dead = cluster.silos.filter((s) => !s.isRunning && !s.replaced);
    for (const silo of dead) {
      silo.replaced = true;
      replaced += 1;
      await cluster.addSilo();
    }
    if (replaced < expectedDeaths) await sleep(100);
  }
  void observer;
}

/** Crashes Redis (one master of a cluster) and starts it again; says what it restarted. */
async function restartRedis(redis: ChaosRedis): Promise<string> {
  // A crash: AOF with fsync always keeps every acknowledged write.
  if ('server' in redis) {
    await redis.server.kill();
    await sleep(500);
    await redis.server.restart();
    return `restarted redis-server ${redis.server.port}`;
  }
  const node = pick(redis.redisCluster.nodes.filter((n) => n.role === 'master'));
  await node.kill();
  await sleep(500);
  await node.restart();
  return `restarted cluster master ${node.port}`;
}

function acknowledged(senders: Sender[]): number {
  return senders.reduce((sum, s) => sum + [...s.acked.values()].reduce((a, b) => a + b, 0), 0);
}

async function retrying(send: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      return await send();
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      await sleep(100);
    }
  }
}

async function waitUntil<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`chaos: condition not reached within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function pick<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { SILENCE_MS };

/** What Redis holds for each grain: for a chaos run that gets stuck. */
async function diagnose(redis: Redis | Cluster, cluster: TestCluster, grainKeys: string[]): Promise<string> {
  const p = cluster.keyPrefix;
  const lines: string[] = [];
  for (const key of grainKeys) {
    const q = `${p}:q:{Tally/${key}}`;
    const active = await redis.lrange(`${q}:active`, 0, -1);
    const locks = await Promise.all(active.map((id) => redis.get(`${q}:${id}:lock`)));
    const wait = await redis.llen(`${q}:wait`);
    const dir = await redis.hgetall(`${p}:g:{Tally/${key}}:dir`);
    if (active.length > 0 || wait > 0)
      lines.push(`${key}: wait=${wait} active=${JSON.stringify(active)} locks=${JSON.stringify(locks)} dir=${JSON.stringify(dir)}`);
  }
  const silos = await redis.smembers(`${p}:silos`);
  for (const id of silos)
    lines.push(
      `silo ${id}: ${JSON.stringify(await redis.hgetall(`${p}:s:{${id}}:info`))} inbox=${await redis.llen(`${p}:s:{${id}}:inbox`)}`,
    );
  for (const silo of cluster.silos) if (silo.isRunning) lines.push(`--- ${silo.id} logs ---\n${silo.logs.slice(-3000)}`);
  return lines.join('\n');
}
