/**
 * A process with a silo and a client that stops them once told to (a line on stdin), after its
 * Redis is gone, and then does nothing more: it must exit by itself. Prints `ready` once both
 * are up, then `stopped <error name>` when the stop settled. Usage: stop-without-redis.ts <redis url>
 */
import { createInterface } from 'node:readline';
import { connect, Silo } from 'redgrain';
import { Counter } from '../../grains/counter.ts';

const url = process.argv[2] ?? '';
const silo = await Silo.start({ redis: url, keyPrefix: 'exit', grains: [Counter], logLevel: 'silent' });
const client = await connect({ redis: url, keyPrefix: 'exit' });
await client.getGrain(Counter, 'c').send('add', 1);
if ((await client.getGrain(Counter, 'c').ask('get')) !== 1) throw new Error('the grain did not count');
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();
process.stdin.destroy();
const outcomes = await Promise.allSettled([silo.stop(), client.close()]);
process.stdout.write(`stopped ${outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as Error).name)).join(' ')}\n`);
