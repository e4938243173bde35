import type { Command } from 'commander';
import { KeyMigrationRefusedError } from '../errors/errors.ts';
import type { InspectOptions } from './cluster-inspector.ts';
import { KeyMigration, type KeyMigrationReport } from './key-migration.ts';

interface MigrateFlags {
  redis?: string;
  prefix?: string;
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `redgrain migrate-keys`: moves the keys of grains an older version encoded with `%` to the
 * names this version uses. Offline: it refuses to run while silos are.
 */
export function addMigrateKeysCommand(program: Command, out: (text: string) => void): void {
  program
    .command('migrate-keys')
    .description('move grain keys written by older versions (%-encoded) to their current names; stop every silo first')
    .option('--redis <url>', 'Redis URL (default: REDIS_CLUSTER, REDIS_SENTINELS or REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--prefix <prefix>', 'key prefix of the application (default: REDGRAIN_PREFIX, else redgrain)')
    .option('--dry-run', 'show what would move, change nothing')
    .option('--json', 'print JSON')
    .action(async (flags: MigrateFlags) => {
      const options: InspectOptions = {};
      if (flags.redis !== undefined) options.redis = flags.redis;
      if (flags.prefix !== undefined) options.keyPrefix = flags.prefix;
      const migration = await KeyMigration.open(options);
      let report: KeyMigrationReport;
      try {
        report = await migration.run({ dryRun: flags.dryRun === true });
      } finally {
        await migration.close();
      }
      out(flags.json === true ? JSON.stringify(report, null, 2) : reportText(report));
      if (report.conflicts.length > 0) {
        throw new KeyMigrationRefusedError(`${report.conflicts.length} key(s) left in place: their new names are taken (see above)`);
      }
    });
}

function reportText(report: KeyMigrationReport): string {
  const verb = report.dryRun ? 'would move' : 'moved';
  const keys = report.grains.reduce((sum, grain) => sum + grain.keys, 0);
  const lines = [
    `${verb} ${keys} key(s) of ${report.grains.length} grain(s), ${report.entries} grain reference(s) in sets and lists, ${report.reminders} reminder(s)` +
      (report.dryRun ? ' (dry run: nothing written)' : ''),
    ...report.grains.map((grain) => `  ${grain.from} -> ${grain.to} (${grain.keys} keys)`),
    ...report.conflicts.map((conflict) => `  left in place: ${conflict.from} (${conflict.to} exists)`),
  ];
  return lines.join('\n');
}
