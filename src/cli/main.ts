/**
 * The `redgrain` command line: `redgrain silo ...`, `redgrain inspect ...`, `redgrain loadtest ...`
 `redgrain migrate-keys`
 * and `redgrain diagram`. `redgrain --help` lists everything.
 */
import { Command, CommanderError, Help } from 'commander';
import { describeError } from '../errors/errors.ts';
import { addDashboardCommand } from './dashboard-command.ts';
import { addDiagramCommand } from './diagram-command.ts';
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
    .description(
      'Orleans-style virtual actors on Redis: run a silo, inspect a cluster, load-test a grain, migrate keys, draw a state machine',
    )
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (text) => out(text.trimEnd()), writeErr: (text) => err(text.trimEnd()) })
    // Commander's help does not say which options are required; ours does.
    .configureHelp({ optionDescription: (option) => `${option.mandatory ? '(required) ' : ''}${new Help().optionDescription(option)}` });
  addSiloCommand(program, out);
  addInspectCommand(program, out);
  addLoadTestCommand(program, out);
  addMigrateKeysCommand(program, out);
  addDiagramCommand(program, out);
  addDashboardCommand(program, out);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    // One line a person can act on: the message, not the class name or a stack.
    err(`redgrain: ${error instanceof Error ? error.message : describeError(error)}`);
    return 1;
  }
}
