#!/usr/bin/env node
// The `redgrain` command: registers tsx (the package ships TypeScript sources) and runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
