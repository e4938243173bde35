/**
 * The `redgrain` command line: `redgrain silo ...`, `redgrain inspect ...`, `redgrain loadtest ...`
 * and `redgrain migrate-keys`. `redgrain --help` lists everything.
 */
import { Command, CommanderError } from 'commander';
import { describeError } from '../errors/errors.ts';
import { addInspectCommand } from './inspect-command.ts';
import { addLoadTestCommand } from './load-test-command.ts';
import { addMigrateKeysCommand } from './migrate-keys-command.ts';
import { addSiloCommand } from './silo-command.ts';

export async function main(
  argv: string[],
  out: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
  err: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
): Promise<number> {
  const program = new Command('redgrain')
    .description('Orleans-style virtual actors on Redis: run a silo, inspect a cluster, load-test a grain, migrate keys')
    .exitOverride()
    .showHelpAfterError();
  addSiloCommand(program, out);
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
