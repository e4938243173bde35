#!/usr/bin/env node
/**
 * The `redgrain` executable: runs the command line (main.ts) on this process's arguments. A
 * failed command exits at once; a command that keeps running (`silo`) exits when it is stopped.
 */
import { main } from './main.ts';

const code = await main(process.argv.slice(2));
if (code !== 0) process.exit(code);
