import type { Command } from 'commander';
import { InvalidGrainModuleError } from '../errors/errors.ts';
import { grainClassesOf } from '../grain/grain-module.ts';
import { describeGrainType } from '../grain/grain-type.ts';
import { mermaidDiagram } from '../grain/state-machine.ts';

/**
 * `redgrain diagram <module> [--type T]`: prints the state machine of each state-machine grain
 * class the module exports (or of type T) as a Mermaid `stateDiagram-v2`.
 */
export function addDiagramCommand(program: Command, out: (text: string) => void): void {
  program
    .command('diagram')
    .description("print a state-machine grain's machine as a Mermaid stateDiagram-v2")
    .argument('<module>', 'module exporting grain classes (.js, or .ts with tsx installed)')
    .option('--type <type>', 'the grain type to draw (default: every state-machine grain in the module)')
    .action(async (module: string, flags: { type?: string }) => {
      const types = (await grainClassesOf(module)).map(describeGrainType);
      const drawn = types.filter((type) => type.machine !== undefined && (flags.type === undefined || type.name === flags.type));
      if (drawn.length === 0) {
        const machines = types.filter((type) => type.machine !== undefined).map((type) => type.name);
        throw new InvalidGrainModuleError(
          module,
          flags.type === undefined
            ? 'it exports no state-machine grain (a class with static machine)'
            : `it has no state-machine grain of type ${flags.type} (state machines: ${machines.join(', ') || 'none'})`,
        );
      }
      const parts = drawn.map(
        (type) => (drawn.length === 1 ? '' : `%% ${type.name}\n`) + mermaidDiagram(type.machine as NonNullable<typeof type.machine>),
      );
      out(parts.join('\n').trimEnd());
    });
}
