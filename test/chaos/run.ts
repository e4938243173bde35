/**
 * The long chaos run:
 *
 *   npm run chaos -- [--rounds 12] [--duration 300] [--round-ms 3000] [--faults kill,pause,redis-restart,poison]
 *                    [--grains 12] [--senders 4] [--window 4] [--relay] [--redis-cluster] [--out bench/results/chaos.json]
 *
 * `--duration` (seconds) keeps striking rounds until that much time has passed. `--relay` sends to
 * Relay grains, which count and send on to a sink in the same turn: their sends are checked too.
 * `--redis-cluster` runs on a private 3-master Redis Cluster (a Redis restart crashes one master).
 * `--window` is how many sends each sender keeps in flight to one grain (all but the first of them
 * travel as one pack; 1 sends one at a time).
 *
 * Prints one row per round and the totals, and writes them to a JSON file. Exits non-zero when a
 * message was lost or applied twice.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { runChaos, type Fault } from './chaos.ts';

const FAULTS: Fault[] = ['kill', 'pause', 'redis-restart', 'poison'];

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '12' },
    duration: { type: 'string' },
    'round-ms': { type: 'string', default: '3000' },
    faults: { type: 'string', default: FAULTS.join(',') },
    grains: { type: 'string', default: '12' },
    senders: { type: 'string', default: '4' },
    window: { type: 'string', default: '4' },
    relay: { type: 'boolean', default: false },
    'redis-cluster': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results/chaos.json' },
  },
});
const faults = values.faults.split(',') as Fault[];
for (const fault of faults) if (!FAULTS.includes(fault)) throw new Error(`unknown fault "${fault}"; use ${FAULTS.join(', ')}`);
const positive = (name: string, text: string | undefined): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
};

const started = Date.now();
const report = await runChaos({
  rounds: positive('rounds', values.rounds),
  ...(values.duration === undefined ? {} : { durationMs: positive('duration', values.duration) * 1_000 }),
  roundMs: positive('round-ms', values['round-ms']),
  faults,
  grains: positive('grains', values.grains),
  senders: positive('senders', values.senders),
  window: positive('window', values.window),
  relay: values.relay,
  redisCluster: values['redis-cluster'],
  log: (line) => process.stderr.write(`${line}\n`),
});
const takeovers = report.rounds.flatMap((r) => (r.takeoverMs === undefined ? [] : [r.takeoverMs])).sort((a, b) => a - b);
const median = takeovers.length === 0 ? undefined : takeovers[Math.floor((takeovers.length - 1) / 2)];

console.log('| round | fault | messages | takeover ms |');
console.log('| ---: | --- | ---: | ---: |');
for (const r of report.rounds) console.log(`| ${r.round} | ${r.fault} | ${r.messages} | ${r.takeoverMs ?? ''} |`);
console.log('');
console.log(
  '| acknowledged | jobs | lost | double-applied | sender retries | dead letters (poison + bystanders) | takeover p50 ms | takeover max ms | duration s |',
);
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
console.log(
  `| ${report.acknowledged} | ${report.jobs} | ${report.lost} | ${report.doubleApplied} | ${report.senderRetries} | ${report.deadLetters} (${report.deadLetters - report.deadLetteredBystanders} + ${report.deadLetteredBystanders}) | ` +
    `${median ?? ''} | ${takeovers.at(-1) ?? ''} | ${((Date.now() - started) / 1000).toFixed(0)} |`,
);
const out = values.out;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ at: new Date().toISOString(), ...report, takeoverP50: median, takeoverMax: takeovers.at(-1) }, null, 2)}\n`,
);
if (report.relayed !== undefined) {
  const { sent, lost, doubles } = report.relayed;
  console.log(`\nrelayed: ${sent} sent on, ${lost.length} lost, ${doubles.length} doubled`);
}
console.log(`\nwritten to ${out}`);
const relayFailed = (report.relayed?.lost.length ?? 0) + (report.relayed?.doubles.length ?? 0) > 0;
if (report.lost > 0 || report.doubleApplied > 0 || relayFailed) process.exit(1);
