/**
 * The `redgrain` command line: `redgrain inspect ...`, `redgrain loadtest ...`, `redgrain
 * migrate-keys` and `redgrain silo ...` (runs silos/silo.ts). `redgrain --help` lists everything.
 */
import { Command, CommanderError } from 'commander';
import { describeError } from '../errors/errors.ts';
import { addInspectCommand } from './inspect-command.ts';
import { addLoadTestCommand } from './load-test-command.ts';
import { addMigrateKeysCommand } from './migrate-keys-command.ts';

export async function main(
  argv: string[],
  out: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
  err: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
): Promise<number> {
  const program = new Command('redgrain')
    .description('Orleans-style virtual actors on Redis: inspect a cluster, load-test a grain, migrate keys')
    .exitOverride()
    .showHelpAfterError();
  addInspectCommand(program, out);
  addLoadTestCommand(program, out);
  addMigrateKeysCommand(program, out);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    err(`redgrain: ${describeError(error)}`);
    return 1;
  }
}
