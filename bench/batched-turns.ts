/**
 * An experiment for the hot-grain moonshot, not part of the runtime: how fast could one grain's
 * mailbox drain if a turn took several messages at once and committed them together?
 *
 *   npm run bench:batched      (about 30 s; run it alone)
 *
 * On one private Redis it measures raw BullMQ's concurrency-1 drain, then drains the same number
 * of messages from one queue in batches of B: one MULTI takes B messages (BullMQ's moveToActive
 * B times), the "handler" applies them to an in-memory counter in order, and one MULTI writes the
 * state (HSET) and acknowledges all B (BullMQ's moveToFinished B times). Two round trips per batch,
 * against one per message today. It shows the ceiling batching would buy, before the work of
 * fencing, recovery order and replies that a real batched turn needs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Queue, raw2NextJobData, Worker, type RedisQueueBackend } from 'bullmq';
import { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { startRedisServer } from 'redgrain/testing';
import { createMailboxBackend } from '../src/mailbox/mailbox-backend.ts';
import { openTurnConnection } from '../src/mailbox/turn-connection.ts';
import { RedisKeys } from '../src/redis/keys.ts';
import { since } from './stats.ts';

const N = 6_000;
const BATCHES = [1, 4, 16, 64];
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

/** Redis's own CPU time so far (user + system), from INFO. */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
}

const server = await startRedisServer();
const redis = new Redis(server.url, { maxRetriesPerRequest: null });
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};
try {
  // Raw BullMQ: one queue, concurrency 1, trivial processor.
  const rawQueue = new Queue('raw', { connection: redis });
  await rawQueue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'm', data: { i } })));
  const workerConnection = redis.duplicate({ maxRetriesPerRequest: null });
  let done = 0;
  let resolveDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const start = performance.now();
  const worker = new Worker(
    'raw',
    async () => {
      done += 1;
      if (done === N) resolveDone();
    },
    { connection: workerConnection, concurrency: 1 },
  );
  await finished;
  const raw = N / (since(start) / 1_000);
  await worker.close();
  workerConnection.disconnect();
  say(`raw BullMQ c=1 drain: ${raw.toFixed(0)} jobs/s`);
  await rawQueue.close();

  const keys = new RedisKeys('exp');
  const root = await createMailboxBackend(redis, keys, { lockDurationMs: 30_000 });
  const turns = openTurnConnection(server.url, 'exp:turns');
  for (const batch of BATCHES) {
    const name = `b${batch}`;
    const queue = new Queue(name, { connection: redis, prefix: keys.bullPrefix });
    await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'm', data: { i } })));
    const backend = root.forQueue(name) as RedisQueueBackend;
    const key = (type: string) => backend.toKey(type);
    const takeKeys = ['wait', 'active', 'prioritized', 'events', 'stalled', 'limiter', 'delayed', 'paused', 'meta', 'pc', 'marker'].map(
      key,
    );
    let count = 0;
    let expected = 0;
    let tokenSeq = 0;
    const cpuBefore = await redisCpuSeconds(redis);
    const t0 = performance.now();
    for (;;) {
      const take = turns.multi() as ReturnType<Redis['multi']> & { moveToActive(...a: unknown[]): unknown };
      const tokens: string[] = [];
      for (let i = 0; i < batch; i++) {
        const token = `t${++tokenSeq}`;
        tokens.push(token);
        take.moveToActive(
          ...takeKeys,
          key(''),
          Date.now(),
          packer.pack({ token, lockDuration: 30_000, limiter: undefined, name: undefined }),
        );
      }
      const taken = ((await take.exec()) ?? []).map(([, reply], i) => ({
        next: raw2NextJobData(reply as unknown[]),
        token: tokens[i] as string,
      }));
      const jobs = taken.filter((t) => t.next[0] !== undefined && t.next[0] !== null);
      if (jobs.length === 0) break;
      for (const job of jobs) {
        // The "handler": apply in order, as a grain would.
        const i = Number((job.next[0] as { data: string }).data.match(/\d+/)?.[0]);
        if (i !== expected) throw new Error(`batch ${batch}: got message ${i}, expected ${expected}`);
        expected += 1;
        count += 1;
      }
      const commit = turns.multi() as ReturnType<Redis['multi']> & { moveToFinished(...a: unknown[]): unknown };
      commit.hset(`exp:state:${name}`, 'count', String(count));
      for (const job of jobs) {
        const args = backend.moveToCompletedArgs(
          { id: String(job.next[1]), opts: { attempts: 1 } } as never,
          undefined,
          true,
          job.token,
          false,
        );
        commit.moveToFinished(...args);
      }
      const replies = (await commit.exec()) ?? [];
      const failed = replies.find(([error, reply]) => error !== null || (typeof reply === 'number' && reply < 0));
      if (failed !== undefined) throw new Error(`batch ${batch}: acknowledgement refused: ${String(failed[0] ?? failed[1])}`);
    }
    const rate = N / (since(t0) / 1_000);
    const redisUs = (((await redisCpuSeconds(redis)) - cpuBefore) * 1e6) / N;
    say(
      `batches of ${batch}: ${rate.toFixed(0)} msg/s, in order, state written once per batch (${(rate / raw).toFixed(2)}× raw drain); Redis CPU ${redisUs.toFixed(0)} µs per message`,
    );
    await queue.close();
  }
  turns.disconnect();
  await root.close();
} finally {
  redis.disconnect();
  await server.stop();
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/batched-turns.md', `${lines.join('\n')}\n`);
