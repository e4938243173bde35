import { writeFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { OPTIONS, resolveOption, resolveRedis } from '../config/options-schema.ts';
import { hasRedisServer, startRedisServer, type RedisServer } from '../testing/redis-server.ts';
import { runLoadTest, type LoadTestPlan } from './load-test.ts';
import { loadTestHtml, loadTestSummary } from './load-test-report.ts';

interface Flags {
  module: string;
  type?: string;
  method: string;
  args: string;
  keys: string;
  distribution: string;
  mode: string;
  rate?: string;
  concurrency?: string;
  duration?: string;
  messages?: string;
  silos: string;
  redis?: string;
  prefix?: string;
  json?: boolean;
  report: string | false;
  warmup?: string;
}

/** `redgrain loadtest`: drive a grain type hard and report what it did. */
export function addLoadTestCommand(program: Command, out: (text: string) => void): void {
  program
    .command('loadtest')
    .description('load-test a grain: throughput, latency percentiles, errors, mailbox depth, exactly-once check')
    .requiredOption('-m, --module <path>', 'module exporting the grain class')
    .option('-t, --type <type>', "grain type to target (default: the module's only grain class)")
    .requiredOption('--method <name>', 'handler to call')
    .option('--args <json>', 'handler arguments as a JSON array', '[]')
    .option('-k, --keys <n>', 'distinct grain keys (1 = one hot grain)', '1')
    .option('--distribution <d>', 'how keys are picked: uniform or zipf (skewed)', 'uniform')
    .option('--mode <mode>', 'send (one-way) or ask (request/response)', 'ask')
    .option('-r, --rate <n>', 'fixed rate, messages per second (open loop); this or --concurrency is required')
    .option('-c, --concurrency <n>', 'fixed concurrency: calls in flight (closed loop); this or --rate is required')
    .option('-d, --duration <time>', 'how long: 30s, 2m, 500ms; this or --messages is required')
    .option('-n, --messages <n>', 'how many messages; this or --duration is required')
    .option(
      '--warmup <time|n>',
      'left out of the latency and throughput figures: a time (5s) or a number of messages (default: the first 10% of the run; 0 for none)',
    )
    .option('-s, --silos <n>', 'silos to start in this process (0: use the silos already running)', '1')
    .option(
      '--redis <url>',
      'Redis URL (default REDIS_CLUSTER, REDIS_SENTINELS or REDIS_URL; with silos started here and none set, a private redis-server)',
    )
    .option('--prefix <prefix>', 'key prefix (default REDGRAIN_PREFIX, else redgrain; a fresh one when silos start here)')
    .option('--json', 'print the result as JSON')
    .option('--report <path>', 'write the HTML report here', 'redgrain-loadtest.html')
    .option('--no-report', 'write no HTML report')
    .action(async (flags: Flags) => {
      const silos = wholeNumber(flags.silos, '--silos');
      const env = process.env;
      let server: RedisServer | undefined;
      // A Redis Cluster or Sentinels in the environment count as given (they win over REDIS_URL).
      const given =
        flags.redis !== undefined ||
        [OPTIONS.redis.env, OPTIONS.redisCluster.env, OPTIONS.redisSentinels.env].some((name) => (env[name] ?? '') !== '');
      if (!given) {
        if (silos === 0) throw new Error('--silos 0 uses running silos: give --redis (or REDIS_URL, REDIS_CLUSTER or REDIS_SENTINELS)');
        if (!hasRedisServer()) {
          throw new Error(
            'No --redis / REDIS_URL / REDIS_CLUSTER / REDIS_SENTINELS given and redis-server is not installed to start a private one',
          );
        }
        server = await startRedisServer();
      }
      try {
        const redis = resolveRedis(server?.url ?? flags.redis, env, '--redis');
        // Silos started here get a prefix of their own, deleted whole after the run; a prefix
        // someone gave may hold other grains, so only this run's grains are deleted there.
        const ownPrefix = flags.prefix === undefined && silos > 0;
        const keyPrefix = ownPrefix ? `loadtest-${Date.now().toString(36)}` : resolveOption('keyPrefix', flags.prefix, env, '--prefix');
        const messages = flags.messages === undefined ? undefined : Number(flags.messages);
        const durationMs = flags.duration === undefined ? undefined : parseDuration(flags.duration);
        const plan: LoadTestPlan = {
          module: flags.module,
          method: flags.method,
          args: parseArgs(flags.args),
          keys: wholeNumber(flags.keys, '--keys'),
          distribution: oneOf(flags.distribution, ['uniform', 'zipf'], '--distribution'),
          mode: oneOf(flags.mode, ['send', 'ask'], '--mode'),
          silos,
          redis,
          keyPrefix,
          cleanup: server !== undefined ? 'none' : ownPrefix ? 'prefix' : silos > 0 ? 'grains' : 'none',
          ...(flags.type === undefined ? {} : { type: flags.type }),
          ...(flags.rate === undefined ? {} : { rate: Number(flags.rate) }),
          ...(flags.concurrency === undefined ? {} : { concurrency: Number(flags.concurrency) }),
          ...(durationMs === undefined ? {} : { durationMs }),
          ...(messages === undefined ? {} : { messages }),
          ...warmup(flags.warmup, durationMs, messages),
        };
        const interactive = flags.json !== true && process.stderr.isTTY;
        const bar = new SingleBar(
          {
            format: ' {bar} {percentage}% | {value}/{total} | {rate} msg/s | errors {errors} | mailbox depth {depth}',
            stream: process.stderr,
            noTTYOutput: false,
          },
          Presets.shades_classic,
        );
        const total = plan.messages ?? Math.ceil((plan.durationMs ?? 0) / 1000);
        if (interactive) bar.start(total, 0, { rate: 0, errors: 0, depth: 0 });
        const result = await runLoadTest(plan, (p) => {
          const value = plan.messages !== undefined ? p.sent : Math.floor(p.elapsedMs / 1000);
          if (interactive) bar.update(Math.min(total, value), { rate: p.ratePerSecond, errors: p.errors, depth: p.mailboxDepth });
          else if (flags.json !== true)
            process.stderr.write(
              `${(p.elapsedMs / 1000).toFixed(0)} s: ${p.ratePerSecond} msg/s, ${p.errors} errors, mailbox depth ${p.mailboxDepth}\n`,
            );
        });
        if (interactive) {
          bar.update(total);
          bar.stop();
        }
        if (flags.report !== false) writeFileSync(flags.report, loadTestHtml(result));
        out(
          flags.json === true
            ? JSON.stringify(result, null, 2)
            : `${loadTestSummary(result)}${flags.report === false ? '' : `\n\nHTML report: ${flags.report}`}`,
        );
        if (result.exactlyOnce.checked && ((result.exactlyOnce.lost ?? 0) > 0 || (result.exactlyOnce.duplicated ?? 0) > 0))
          process.exitCode = 3;
        // Not one call went through (no silo hosts the type, Redis refused every one): the run
        // measured nothing, which a script must not take for success.
        else if (result.acknowledged === 0 && Object.keys(result.errorsByType).length > 0) process.exitCode = 4;
      } finally {
        await server?.stop();
      }
    });
}

function parseArgs(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`--args must be a JSON array, got ${text}`);
  }
  if (!Array.isArray(value)) throw new Error(`--args must be a JSON array, got ${text}`);
  return value;
}

function wholeNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number, got "${text}"`);
  return n;
}

function oneOf<T extends string>(text: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got "${text}"`);
  return text as T;
}

/**
 * The warm-up: `--warmup 5s` (a time), `--warmup 200` (messages), or by default the first 10% of
 * the run (of its duration, or of its messages).
 */
function warmup(
  text: string | undefined,
  durationMs: number | undefined,
  messages: number | undefined,
): { warmupMs?: number; warmupMessages?: number } {
  if (text === undefined) {
    if (durationMs !== undefined) return { warmupMs: durationMs / 10 };
    return messages === undefined ? {} : { warmupMessages: Math.floor(messages / 10) };
  }
  if (/^\d+$/.test(text.trim())) return { warmupMessages: Number(text) };
  return { warmupMs: parseDuration(text, '--warmup') };
}

/** `30s`, `2m`, `500ms`, or a number of seconds. */
export function parseDuration(text: string, flag = '--duration'): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) throw new Error(`${flag} must look like 30s, 2m or 500ms, got "${text}"`);
  const n = Number(match[1]);
  return match[2] === 'ms' ? n : match[2] === 'm' ? n * 60_000 : n * 1_000;
}
