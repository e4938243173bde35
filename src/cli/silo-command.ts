import type { Command } from 'commander';
import { InvalidGrainModuleError } from '../errors/errors.ts';
import { grainClassesOf } from '../grain/grain-module.ts';
import type { GrainClass } from '../grain/grain.ts';
import { startEventLoopWatchdog } from '../silo/event-loop-watchdog.ts';
import { siloProcessSettings } from '../config/options-schema.ts';
import { Silo } from '../silo/silo.ts';

/**
 * `redgrain silo --grains <module> [--grains <module> ...]`: runs this process as one silo hosting
 * every Grain subclass the modules export, until SIGTERM or SIGINT. Configuration comes from the
 * environment (REDIS_URL or REDIS_CLUSTER, REDGRAIN_*, OTEL_*); see the README's "The silo process".
 */
export function addSiloCommand(program: Command, out: (text: string) => void): void {
  program
    .command('silo')
    .description(
      'run a silo hosting the grain classes the modules export (configured by REDIS_URL or REDIS_CLUSTER, REDGRAIN_* and OTEL_* variables)',
    )
    .requiredOption('--grains <module>', 'module exporting grain classes (.js, or .ts with tsx installed); repeat for more', collect)
    .action(async (flags: { grains: string[] }) => {
      await runSilo(flags.grains, out);
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

async function runSilo(modules: string[], out: (text: string) => void): Promise<void> {
  // The SDK first (when OTEL_* asks for export), so the silo's meters and tracer are real ones.
  // Imported here, not at the top, so `inspect` and `loadtest` never load it.
  const { stopTelemetry } = await import('../instrumentation/index.ts');
  let silo: Silo;
  let watchdogMs: number;
  try {
    const grains: GrainClass[] = [];
    for (const module of modules) {
      const found = await grainClassesOf(module);
      if (found.length === 0) throw new InvalidGrainModuleError(module, 'it exports no Grain subclass with a static type');
      grains.push(...found);
    }
    // Every REDGRAIN_* variable is read and checked by the options schema (Silo.start reads the
    // silo's; the watchdog deadline is the process's own); a malformed one stops the start here.
    watchdogMs = siloProcessSettings(process.env).watchdogMs;
    silo = await Silo.start({ grains: [...new Set(grains)] });
  } catch (error) {
    await stopTelemetry();
    throw error;
  }
  // A handler that blocks the event loop past the deadline kills the process (0 turns it off).
  const watchdog = watchdogMs > 0 ? startEventLoopWatchdog(watchdogMs) : undefined;
  void silo.stopped.then(() => watchdog?.stop());
  // One plain line on stdout says the silo takes messages (the test cluster waits for it).
  out(`redgrain silo ${silo.id} started`);
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
