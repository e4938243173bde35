/**
 * The benchmark suite: `npm run bench` (about 3.5 minutes; run it alone, not beside the tests).
 *
 * Measures the raw substrate first (an awaited Redis round trip, a raw BullMQ one-queue
 * concurrency-1 drain, raw BullMQ add -> process latency), then redgrain on the same private
 * Redis in the same run, and prints redgrain's figures as ratios to the raw ones. Results go to
 * bench/results/bench.json and bench/results/bench.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { connect, Silo } from 'redgrain';
import { startRedisServer } from 'redgrain/testing';
import { Counter } from '../grains/counter.ts';
import { EventTally, Forwarder, UnsnapshottedTally } from './bench-grains.ts';
import { measureDashboard } from './dashboard-scale.ts';
import { measureScaleOut } from './scale-out.ts';
import { median, percentile, seededRandom, shuffled, since, sleep, withConcurrency } from './stats.ts';

const server = await startRedisServer();
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const rows: { measure: string; value: string; ratio?: string }[] = [];
const results: Record<string, number> = {};
const record = (key: string, measure: string, value: number, unit: string, ratio?: { to: number; label: string; invert?: boolean }) => {
  results[key] = value;
  const r = ratio === undefined ? undefined : `${(ratio.invert ? ratio.to / value : value / ratio.to).toFixed(2)}× ${ratio.label}`;
  rows.push({ measure, value: `${Number.isInteger(value) ? value : value.toFixed(2)} ${unit}`, ...(r === undefined ? {} : { ratio: r }) });
  process.stderr.write(`${measure}: ${value.toFixed(2)} ${unit}${r ? ` (${r})` : ''}\n`);
};
let prefixSeq = 0;
const prefix = (): string => `bench${++prefixSeq}`;
/** Redis's own CPU time so far (user + system, s). */
const redisCpuSeconds = async (): Promise<number> => {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
};

try {
  // ---- the raw substrate -------------------------------------------------------------------
  const rtts: number[] = [];
  for (let i = 0; i < 3_000; i++) {
    const t = performance.now();
    await redis.ping();
    rtts.push(since(t) * 1_000);
  }
  const rtt = median(rtts);
  record('redisRoundTripUs', 'raw: awaited Redis round trip (median)', rtt, 'µs');

  const N = 5_000;
  const rawDrain = async (processor: () => Promise<unknown>): Promise<number> => {
    const name = `raw-${prefix()}`;
    const queue = new Queue(name, { connection: redis });
    await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'j', data: { i }, opts: { removeOnComplete: true } })));
    let done = 0;
    let finished!: () => void;
    const all = new Promise<void>((resolve) => (finished = resolve));
    const start = performance.now();
    const worker = new Worker(
      name,
      async () => {
        await processor();
        if (++done === N) finished();
      },
      { connection: redis, concurrency: 1 },
    );
    await all;
    const rate = N / (since(start) / 1_000);
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    return rate;
  };
  // The first drain runs on a cold process (its code not yet optimized) and read 3,988 jobs/s in a
  // run whose later drains read 6,809: a warm-up drain first, not recorded.
  await rawDrain(async () => undefined);
  const rawTrivial = await rawDrain(async () => undefined);
  record('rawDrainPerSec', 'raw BullMQ: one queue, concurrency 1, trivial processor', rawTrivial, 'jobs/s');
  const rawWithState = await rawDrain(() => redis.hset('bench:raw-state', 'n', '1'));
  record('rawDrainWithHsetPerSec', 'raw BullMQ: same, processor also HSETs state', rawWithState, 'jobs/s', {
    to: rawTrivial,
    label: 'raw trivial',
  });

  const latencyQueue = new Queue('raw-latency', { connection: redis });
  const latencies: number[] = [];
  let onProcessed: (() => void) | undefined;
  const latencyWorker = new Worker(
    'raw-latency',
    async (job) => {
      latencies.push(performance.now() - (job.data as { t: number }).t);
      onProcessed?.();
    },
    { connection: redis, concurrency: 1 },
  );
  await latencyWorker.waitUntilReady();
  for (let i = 0; i < 1_000; i++) {
    const processed = new Promise<void>((resolve) => (onProcessed = resolve));
    await latencyQueue.add('j', { t: performance.now() }, { removeOnComplete: true });
    await processed;
  }
  await latencyWorker.close();
  await latencyQueue.close();
  const rawP50 = percentile(latencies, 50);
  const rawP99 = percentile(latencies, 99);
  record('rawAddToProcessP50Ms', 'raw BullMQ: add -> process latency p50', rawP50, 'ms');
  record('rawAddToProcessP99Ms', 'raw BullMQ: add -> process latency p99', rawP99, 'ms');

  // BullMQ's own request/response: add a job, wait for its result through QueueEvents.
  const rrQueue = new Queue('raw-rr', { connection: redis });
  const rrEventsConnection = redis.duplicate(); // QueueEvents blocks on its connection; ours to close
  const rrEvents = new QueueEvents('raw-rr', { connection: rrEventsConnection });
  const rrWorker = new Worker('raw-rr', async (job) => (job.data as { n: number }).n + 1, { connection: redis, concurrency: 1 });
  await Promise.all([rrWorker.waitUntilReady(), rrEvents.waitUntilReady()]);
  const rrLatencies: number[] = [];
  for (let i = 0; i < 1_000; i++) {
    const t = performance.now();
    const job = await rrQueue.add('j', { n: i }, { removeOnComplete: true });
    await job.waitUntilFinished(rrEvents);
    rrLatencies.push(since(t));
  }
  // Kept open: the unloaded ask is measured alternating with it again (see below).
  const requestResponse = async (n: number) => {
    const job = await rrQueue.add('j', { n }, { removeOnComplete: true });
    await job.waitUntilFinished(rrEvents);
  };
  const rrP50 = percentile(rrLatencies, 50);
  const rrP99 = percentile(rrLatencies, 99);
  record('rawRequestResponseP50Ms', 'raw BullMQ request/response (add, then job.waitUntilFinished) p50', rrP50, 'ms');
  record('rawRequestResponseP99Ms', 'raw BullMQ request/response p99', rrP99, 'ms');

  // ---- redgrain ----------------------------------------------------------------------------
  const keyPrefix = prefix();
  const client = await connect({ redis: server.url, keyPrefix });
  /**
   * Hot grain drain: N messages queued to one grain while no silo runs, then one silo (with this
   * `turnBatchSize`) drains them. Returns the rate and the running silo.
   */
  const drainHot = async (c: typeof client, kp: string, turnBatchSize: number) => {
    const parking = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: kp, logLevel: 'error' });
    await parking.stop();
    const hot = c.getGrain(Counter, 'hot');
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, () => hot.send('add', 1)));
    const start = performance.now();
    const silo = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: kp, logLevel: 'error', turnBatchSize });
    const total = await hot.ask('get'); // queued behind the N adds
    const rate = N / (since(start) / 1_000);
    if (total !== N) throw new Error(`hot grain counted ${total}, expected ${N}`);
    return { rate, silo, hot };
  };
  // Batching and packing off: one message per job and per turn commit.
  {
    const kp = prefix();
    const c = await connect({ redis: server.url, keyPrefix: kp, maxPackMessages: 1 });
    const { rate, silo } = await drainHot(c, kp, 1);
    record('hotDrainUnbatchedPerSec', 'hot grain drain, batching and packing off (turnBatchSize 1, maxPackMessages 1)', rate, 'msg/s', {
      to: rawTrivial,
      label: 'raw BullMQ c=1 drain',
    });
    await silo.stop();
    await c.close();
  }
  // Batches of up to 16 (the default); the same silo and grain serve the measures after it.
  {
    const { rate, silo, hot } = await drainHot(client, keyPrefix, 16);
    record('hotDrainPerSec', 'hot grain drain, state committed with every message (batches of ≤ 16)', rate, 'msg/s', {
      to: rawTrivial,
      label: 'raw BullMQ c=1 drain',
    });

    // 64 sends in flight from one client while the grain drains them, packing off then on: the
    // rate sent and processed, and Redis's CPU per message.
    const sendAndDrain = async (ref: typeof hot) => {
      const before = await ref.ask('get');
      const cpuBefore = await redisCpuSeconds();
      const sendStart = performance.now();
      await withConcurrency(64, N, () => ref.send('add', 1));
      const sendRate = N / (since(sendStart) / 1_000);
      const after = await ref.ask('get');
      if (after !== before + N) throw new Error(`hot grain counted ${after - before} of ${N}`);
      const drained = N / (since(sendStart) / 1_000);
      return { sendRate, rate: drained, cpuUs: (((await redisCpuSeconds()) - cpuBefore) * 1e6) / N };
    };
    // Three rounds, each with a raw drain beside it (the machine's speed drifts over a run by more
    // than the difference measured); the medians are reported.
    const unpackedClient = await connect({ redis: server.url, keyPrefix, maxPackMessages: 1 });
    const rounds: { raw: number; unpacked: Awaited<ReturnType<typeof sendAndDrain>>; packed: Awaited<ReturnType<typeof sendAndDrain>> }[] =
      [];
    for (let round = 0; round < 3; round++) {
      const raw = await rawDrain(async () => undefined);
      const unpacked = await sendAndDrain(unpackedClient.getGrain(Counter, 'hot'));
      rounds.push({ raw, unpacked, packed: await sendAndDrain(hot) });
    }
    const rawBeside = median(rounds.map((r) => r.raw));
    const unpackedRate = median(rounds.map((r) => r.unpacked.rate));
    const besideLabel = 'raw BullMQ c=1 drain measured beside it';
    record('rawDrainBesideHotPerSec', 'raw BullMQ c=1 drain, measured beside the two rows below (median of 3)', rawBeside, 'jobs/s');
    record(
      'hotSendPerSec',
      'hot grain send (one client, 64 in flight), enqueue rate',
      median(rounds.map((r) => r.packed.sendRate)),
      'msg/s',
    );
    record(
      'hotSendAndDrainUnpackedPerSec',
      'hot grain: 64 sends in flight, sent and processed (state every message), packing off',
      unpackedRate,
      'msg/s',
      { to: rawBeside, label: besideLabel },
    );
    record(
      'hotSendAndDrainPerSec',
      'hot grain: 64 sends in flight, sent and processed (state every message), packing on',
      median(rounds.map((r) => r.packed.rate)),
      'msg/s',
      { to: rawBeside, label: besideLabel },
    );
    const unpackedCpu = median(rounds.map((r) => r.unpacked.cpuUs));
    record('redisCpuPerMessageUnpackedUs', 'Redis CPU per message of that hot grain, packing off', unpackedCpu, 'µs');
    record(
      'redisCpuPerMessagePackedUs',
      'Redis CPU per message of that hot grain, packing on',
      median(rounds.map((r) => r.packed.cpuUs)),
      'µs',
      {
        to: unpackedCpu,
        label: 'of packing off',
      },
    );

    // ask throughput and latency, unloaded; each ask alternates with the same ask from a client
    // that never packs (an unloaded ask must pay nothing for packing) and with BullMQ's own
    // request/response, so all three see the same machine at the same moments. Their order is
    // shuffled every round (seeded): whatever the call before leaves running (BullMQ's worker and
    // event reader re-arming their reads) falls on each of them alike. (Turning the order by one
    // each round did not: the packed ask then followed BullMQ's call in two rounds of three, and
    // read 3-5% slower than the unpacked one; alone, the two measure the same.)
    const unpackedHot = unpackedClient.getGrain(Counter, 'hot');
    const askLat: number[] = [];
    const unpackedLat: number[] = [];
    const alternatingRr: number[] = [];
    const calls: [() => Promise<unknown>, number[]][] = [
      [() => hot.ask('add', 1), askLat],
      [() => unpackedHot.ask('add', 1), unpackedLat],
      [() => requestResponse(alternatingRr.length), alternatingRr],
    ];
    const random = seededRandom(7);
    for (let i = 0; i < 2_000; i++) {
      for (const [call, samples] of shuffled(calls, random)) {
        const t = performance.now();
        await call();
        samples.push(since(t));
      }
    }
    await rrWorker.close();
    await rrEvents.close();
    rrEventsConnection.disconnect();
    await rrQueue.close();
    record('askSequentialPerSec', 'hot grain ask, one at a time', 2_000 / (askLat.reduce((a, b) => a + b, 0) / 1_000), 'asks/s');
    await unpackedClient.close();
    const p50 = percentile(askLat, 50);
    const p99 = percentile(askLat, 99);
    record('askP50Ms', 'ask latency p50, unloaded', p50, 'ms', { to: rawP50, label: 'raw add->process p50' });
    record('askP99Ms', 'ask latency p99, unloaded', p99, 'ms', { to: rawP99, label: 'raw add->process p99' });
    record('askP50PackingOffMs', 'ask latency p50, unloaded, from a client with packing off', percentile(unpackedLat, 50), 'ms', {
      to: p50,
      label: 'packing on',
      invert: true,
    });
    // Against BullMQ's request/response measured in the same loop (the machine's speed drifts
    // between the raw section and this one).
    const rrAlternatingP50 = percentile(alternatingRr, 50);
    const rrAlternatingP99 = percentile(alternatingRr, 99);
    record(
      'rawRequestResponseAlternatingP50Ms',
      'raw BullMQ request/response p50, alternating with the asks below',
      rrAlternatingP50,
      'ms',
    );
    record('askP50VsRequestResponse', 'ask latency p50, unloaded (state committed)', p50, 'ms', {
      to: rrAlternatingP50,
      label: 'BullMQ request/response p50 (alternating)',
    });
    record('askP99VsRequestResponse', 'ask latency p99, unloaded (state committed)', p99, 'ms', {
      to: rrAlternatingP99,
      label: 'BullMQ request/response p99 (alternating)',
    });

    const concStart = performance.now();
    await withConcurrency(32, N, () => hot.ask('add', 1));
    record('askConcurrentPerSec', 'hot grain ask, 32 in flight', N / (since(concStart) / 1_000), 'asks/s', {
      to: rawTrivial,
      label: 'raw BullMQ c=1 drain',
    });

    // ask latency with background sends to other grains at half the rate a hot grain's messages
    // are sent and processed without packing (the same load as before packing existed)
    const halfRate = unpackedRate / 2;
    const load = { on: true };
    const background = (async () => {
      const others = Array.from({ length: 20 }, (_, i) => client.getGrain(Counter, `load-${i}`));
      let i = 0;
      while (load.on) {
        const tick = performance.now();
        const batch = Math.max(1, Math.round(halfRate / 100));
        await Promise.all(Array.from({ length: batch }, () => (others[i++ % others.length] as typeof hot).send('add', 1)));
        const spare = 10 - since(tick);
        if (spare > 0) await sleep(spare);
      }
    })();
    await sleep(500);
    const loaded: number[] = [];
    for (let j = 0; j < 1_000; j++) {
      const t = performance.now();
      await hot.ask('get');
      loaded.push(since(t));
    }
    load.on = false;
    await background;
    record('askP50AtHalfLoadMs', `ask latency p50 with ${halfRate.toFixed(0)} msg/s sent to other grains`, percentile(loaded, 50), 'ms', {
      to: rawP50,
      label: 'raw add->process p50',
    });
    record('askP99AtHalfLoadMs', 'ask latency p99 with that load', percentile(loaded, 99), 'ms', {
      to: rawP99,
      label: 'raw add->process p99',
    });

    // cold activation vs warm: time and Redis commands per ask
    const commands = async (): Promise<number> => {
      const info = await redis.info('commandstats');
      return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const coldTimes: number[] = [];
    const c0 = await commands();
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await client.getGrain(Counter, `cold-${i}`).ask('add', 1);
      coldTimes.push(since(t));
    }
    const coldCommands = ((await commands()) - c0 - 1) / 200;
    const warmTimes: number[] = [];
    const w0 = await commands();
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await client.getGrain(Counter, `cold-${i}`).ask('add', 1);
      warmTimes.push(since(t));
    }
    const warmCommands = ((await commands()) - w0 - 1) / 200;
    record('coldAskMs', 'cold ask (activates the grain), median', median(coldTimes), 'ms', { to: median(warmTimes), label: 'warm ask' });
    record('warmAskMs', 'warm ask, median', median(warmTimes), 'ms');
    record('coldAskCommands', 'Redis commands per cold ask (Lua inner calls included)', coldCommands, 'commands');
    record('warmAskCommands', 'Redis commands per warm ask (Lua inner calls included)', warmCommands, 'commands');
    await silo.stop();
  }

  // A turn with one send: N messages queued to a Forwarder, each counted and sent on to its sink
  // through the outbox (committed with the state, then enqueued); done when the sink has all N.
  {
    const kp = prefix();
    const c = await connect({ redis: server.url, keyPrefix: kp });
    const parking = await Silo.start({ redis: server.url, grains: [Forwarder, Counter], keyPrefix: kp, logLevel: 'error' });
    const forwarder = c.getGrain(Forwarder, 'f');
    const sink = c.getGrain(Counter, 'sink-f');
    await sink.ask('get');
    await parking.stop();
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, () => forwarder.send('pass')));
    const start = performance.now();
    const silo = await Silo.start({ redis: server.url, grains: [Forwarder, Counter], keyPrefix: kp, logLevel: 'error' });
    while ((await sink.ask('get')) < N) await sleep(5);
    const rate = N / (since(start) / 1_000);
    if ((await forwarder.ask('get')) !== N) throw new Error('the forwarder did not count every message');
    record('forwardDrainPerSec', 'turn with one send: a grain drained, each message counted and sent on', rate, 'msg/s', {
      to: results.hotDrainPerSec ?? rate,
      label: 'hot drain (no send)',
    });
    await silo.stop();
    await c.close();
  }

  // Event-sourced activation: a grain with 100,000 events (plus 99, the most a snapshot every 100
  // can leave behind), activated from its latest snapshot vs by replaying the whole journal.
  {
    const kp = prefix();
    const c = await connect({ redis: server.url, keyPrefix: kp });
    const grains = [EventTally, UnsnapshottedTally];
    let silo = await Silo.start({ redis: server.url, grains, keyPrefix: kp, logLevel: 'error' });
    for (const cls of grains) {
      const ref = c.getGrain(cls, 'es');
      for (let i = 0; i < 100; i++) await ref.ask('addMany', 1_000);
      await ref.ask('addMany', 99);
    }
    const activation: Record<string, number[]> = { EventTally: [], UnsnapshottedTally: [] };
    for (let run = 0; run < 3; run++) {
      await silo.stop();
      silo = await Silo.start({ redis: server.url, grains, keyPrefix: kp, logLevel: 'error' });
      for (const cls of grains) {
        const t = performance.now();
        if ((await c.getGrain(cls, 'es').ask('get')) !== 100_099) throw new Error(`${cls.type} lost events`);
        activation[cls.type]?.push(since(t));
      }
    }
    const replay = median(activation.UnsnapshottedTally ?? []);
    record(
      'esActivationSnapshotMs',
      'event-sourced grain with 100,000 events: activation, snapshot every 100 (median)',
      median(activation.EventTally ?? []),
      'ms',
      {
        to: replay,
        label: 'faster than full replay',
        invert: true,
      },
    );
    record('esActivationFullReplayMs', 'event-sourced grain with 100,000 events: activation by full replay (median)', replay, 'ms');
    await silo.stop();
    await c.close();
  }

  // Many grains: aggregate drain, connections, idle commands, memory per activation.
  for (const grains of [1, 1_000, 10_000]) {
    const kp = prefix();
    const c = await connect({ redis: server.url, keyPrefix: kp });
    const parking = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: kp, logLevel: 'error' });
    await parking.stop();
    const perGrain = Math.max(1, Math.floor(10_000 / grains));
    const refs = Array.from({ length: grains }, (_, i) => c.getGrain(Counter, `g${i}`));
    for (let i = 0; i < refs.length; i += 200) {
      await Promise.all(
        refs.slice(i, i + 200).map(async (r) => {
          for (let k = 0; k < perGrain; k++) await r.send('add', 1);
        }),
      );
    }
    // Every grain handles its sends and then the ask that tells us it is done: all are turns.
    const messages = grains * (perGrain + 1);
    (globalThis as { gc?: () => void }).gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const start = performance.now();
    const silo = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: kp, logLevel: 'error', heartbeatIntervalMs: 60_000 });
    for (let i = 0; i < refs.length; i += 500) await Promise.all(refs.slice(i, i + 500).map((r) => r.ask('get')));
    const rate = messages / (since(start) / 1_000);
    record(`aggregatePerSec_${grains}`, `${grains} grains × (${perGrain} sends + 1 ask): aggregate turns incl. activation`, rate, 'msg/s', {
      to: rawTrivial,
      label: 'raw BullMQ c=1 drain',
    });
    const list = (await redis.client('LIST')) as string;
    const connections = list.split('\n').filter((l) => l.includes(`name=redgrain:silo:${silo.id}`)).length;
    record(`siloConnections_${grains}`, `silo connections at ${grains} active grains`, connections, 'connections');
    const i0 = await redis.info('commandstats');
    await sleep(5_000);
    const i1 = await redis.info('commandstats');
    const count = (info: string) => [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    record(
      `idleCommandsPerSec_${grains}`,
      `idle Redis commands/s at ${grains} active grains (silo beat stretched to 60 s)`,
      (count(i1) - count(i0) - 1) / 5,
      'commands/s',
    );
    (globalThis as { gc?: () => void }).gc?.();
    if (grains >= 1_000) {
      const perActivation = (process.memoryUsage().heapUsed - heapBefore) / grains / 1024;
      record(
        `memoryPerActivationKb_${grains}`,
        `heap per idle activation at ${grains} grains (client and silo in one process)`,
        perActivation,
        'KB',
      );
    }
    if (grains >= 10_000) {
      // The dashboard with these grains active and 100 silos in the membership table.
      const dash = await measureDashboard(server.url, kp, 100);
      if (dash.listedSilos !== 100) throw new Error(`the dashboard listed ${dash.listedSilos} silos, not 100`);
      record('dashboardOverviewMs', 'dashboard: cluster overview with 100 silos (median request)', dash.overviewMs, 'ms', {
        to: rtt / 1_000,
        label: 'raw Redis round trips',
      });
      record(
        'dashboardGrainsPageMs',
        `dashboard: deepest mailboxes page with ${grains} active grains (median request)`,
        dash.grainsPageMs,
        'ms',
        {
          to: rtt / 1_000,
          label: 'raw Redis round trips',
        },
      );
    }
    await c.close();
    await silo.stop();
    if (grains >= 10_000) await recordRestingCost(kp, grains);
  }
  // Activations at scale: 100,000 grains on one silo, and the cost of one message as the number
  // of live activations grows (1 -> 100,000); it must stay flat.
  {
    const kp = prefix();
    const c = await connect({ redis: server.url, keyPrefix: kp });
    const silo = await Silo.start({ redis: server.url, grains: [Counter], keyPrefix: kp, logLevel: 'error', heartbeatIntervalMs: 60_000 });
    const hot = c.getGrain(Counter, 'hot');
    await hot.ask('get');
    const M = 2_000;
    /** Node + Redis time per message on one warm grain, with however many activations are live. */
    const perMessageUs = async (): Promise<number> => {
      const start = performance.now();
      for (let i = 0; i < M; i += 100) await Promise.all(Array.from({ length: 100 }, () => hot.send('add', 1)));
      await hot.ask('get');
      return (since(start) * 1_000) / M;
    };
    (globalThis as { gc?: () => void }).gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let active = 1;
    let failures = 0;
    const activationStart = performance.now();
    let baseline = 0;
    for (const checkpoint of [1, 1_000, 10_000, 100_000]) {
      for (; active < checkpoint; active += 1_000) {
        const batch = Array.from({ length: Math.min(1_000, checkpoint - active) }, (_, i) => c.getGrain(Counter, `a${active + i}`));
        const settled = await Promise.allSettled(batch.map((r) => r.ask('get')));
        failures += settled.filter((x) => x.status === 'rejected').length;
      }
      active = checkpoint;
      const cost = await perMessageUs();
      if (checkpoint === 1) baseline = cost;
      record(`perMessageUs_${checkpoint}`, `per-message cost (send + turn) with ${checkpoint} live activations`, cost, 'µs', {
        to: baseline,
        label: 'cost at 1 activation',
      });
    }
    const activationSeconds = since(activationStart) / 1_000;
    record('activations100k', 'activations held on one silo', silo.activationCount, 'activations');
    record('activationFailures100k', 'failed asks while activating 100,000 grains', failures, 'errors');
    record(
      'activationRate100k',
      'activation rate to 100,000 (cold ask each, 1,000 in flight)',
      100_000 / activationSeconds,
      'activations/s',
    );
    (globalThis as { gc?: () => void }).gc?.();
    record(
      'memoryPerActivationKb_100000',
      'heap per idle activation at 100,000 grains (client and silo in one process)',
      (process.memoryUsage().heapUsed - heapBefore) / 100_000 / 1024,
      'KB',
    );
    await c.close();
    await silo.stop();
    await recordRestingCost(kp, 100_000);
  }
  await client.close();
  // Past one Redis: the many-grains scenario on one Redis and on a 3-master cluster.
  await measureScaleOut(record);
} finally {
  redis.disconnect();
  await server.stop();
}

/** Redis keys and bytes (MEMORY USAGE) per grain once every grain of a prefix is deactivated. */
async function recordRestingCost(kp: string, grains: number): Promise<void> {
  let keys = 0;
  let bytes = 0;
  for (const space of ['g', 'q']) {
    for await (const batch of redis.scanStream({ match: `${kp}:${space}:{*`, count: 1_000 }) as AsyncIterable<string[]>) {
      const pipeline = redis.pipeline();
      for (const key of batch) pipeline.memory('USAGE', key);
      for (const [, used] of (await pipeline.exec()) ?? []) bytes += Number(used ?? 0);
      keys += batch.length;
    }
  }
  record(`restingGrainBytes_${grains}`, `Redis memory per idle grain that handled messages, ${grains} grains`, bytes / grains, 'B');
  record(`restingGrainKeys_${grains}`, `Redis keys per idle grain that handled messages, ${grains} grains`, keys / grains, 'keys');
}

const table = [
  '| measure | value | ratio |',
  '| --- | ---: | --- |',
  ...rows.map((r) => `| ${r.measure} | ${r.value} | ${r.ratio ?? ''} |`),
].join('\n');
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/bench.json', `${JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
writeFileSync('bench/results/bench.md', `${table}\n`);
console.log(table);
