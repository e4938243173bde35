/**
 * Runs one silo process:
 *
 *   tsx --import ./silos/instrumentation.ts silos/silo.ts --grains ./grains/counter.ts [--grains ./grains/campaign.ts ...]
 *
 * It hosts every Grain subclass the modules export and stops gracefully on SIGTERM / SIGINT.
 * Configuration comes from the environment; see the README's "Configuration" section.
 */
import { parseArgs } from 'node:util';
import { Silo, startEventLoopWatchdog, type GrainClass, type LogLevel } from '../src/index.ts';
import { grainClassesOf } from '../src/grain/grain-module.ts';
import { stopTelemetry } from './telemetry.ts';

/** Default event-loop watchdog deadline of a silo process. */
const DEFAULT_WATCHDOG_MS = 60_000;

const USAGE = 'usage: tsx silos/silo.ts --grains <module> [--grains <module> ...]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { grains: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const modules = values.grains ?? [];
  if (modules.length === 0) throw new Error(`no --grains module given\n${USAGE}`);
  const grains: GrainClass[] = [];
  for (const module of modules) {
    const found = await grainClassesOf(module);
    if (found.length === 0) throw new Error(`${module} exports no Grain subclass`);
    grains.push(...found);
  }
  const env = process.env;
  const silo = await Silo.start({
    grains: [...new Set(grains)],
    ...(env.REDGRAIN_SILO_ID ? { siloId: env.REDGRAIN_SILO_ID } : {}),
    ...numberFromEnv('collectionAgeMs', 'REDGRAIN_COLLECTION_AGE_MS'),
    ...numberFromEnv('lockDurationMs', 'REDGRAIN_LOCK_DURATION_MS'),
    ...numberFromEnv('heartbeatIntervalMs', 'REDGRAIN_HEARTBEAT_INTERVAL_MS'),
    ...numberFromEnv('missedHeartbeatsLimit', 'REDGRAIN_MISSED_HEARTBEATS_LIMIT'),
    ...numberFromEnv('maxMessageAttempts', 'REDGRAIN_MAX_MESSAGE_ATTEMPTS'),
    ...numberFromEnv('turnBatchSize', 'REDGRAIN_TURN_BATCH_SIZE'),
    ...numberFromEnv('askTimeoutMs', 'REDGRAIN_ASK_TIMEOUT_MS'),
    ...(env.REDGRAIN_LOG_LEVEL ? { logLevel: env.REDGRAIN_LOG_LEVEL as LogLevel } : {}),
  });
  // A handler that blocks the event loop past the deadline kills the process (0 turns it off).
  const watchdogMs = Number(env.REDGRAIN_WATCHDOG_MS ?? DEFAULT_WATCHDOG_MS);
  if (!Number.isFinite(watchdogMs) || watchdogMs < 0) throw new Error(`REDGRAIN_WATCHDOG_MS must be a number of ms, got "${env.REDGRAIN_WATCHDOG_MS}"`);
  const watchdog = watchdogMs > 0 ? startEventLoopWatchdog(watchdogMs) : undefined;
  void silo.stopped.then(() => watchdog?.stop());
  // One plain line on stdout says the silo takes messages (the test cluster waits for it).
  process.stdout.write(`redgrain silo ${silo.id} started\n`);
  // Declared dead after a pause: exit non-zero so a supervisor starts a fresh silo (a new id).
  void silo.stopped.then((reason) => {
    if (reason === 'declared-dead') void stopTelemetry().finally(() => process.exit(2));
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) process.exit(130); // a second signal: stop now
    void silo
      .stop()
      .then(
        () => 0,
        (error: unknown) => {
          process.stderr.write(`silo ${silo.id} failed to stop cleanly after ${signal}: ${String(error)}\n`);
          return 1;
        },
      )
      .then(async (code) => {
        await stopTelemetry(); // the last spans and metrics go out before the process does
        process.exit(code);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function numberFromEnv(option: string, variable: string): Record<string, number> {
  const text = process.env[variable];
  if (text === undefined || text === '') return {};
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${variable} must be a positive number, got "${text}"`);
  return { [option]: value };
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
