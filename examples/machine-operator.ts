/**
 * The machine operator: signals as one-way messages, the status query as an `ask` of a
 * read-only handler, answered while a long job runs.
 *
 *   npm run example:operator       (starts a private Redis when REDIS_URL is not set)
 *
 * Prints each signal and what the query answered meanwhile; exits with code 0 only when the
 * queries were answered during the job, from the committed state, and the work ended DONE.
 */
import { randomUUID } from 'node:crypto';
import { connect, Silo } from 'redgrain';
import { MachineOperator } from '../grains/machine-operator.ts';
import { withRedis } from './support/redis.ts';

const ok = await withRedis(async (redis) => {
  const keyPrefix = `operator-example-${randomUUID().slice(0, 8)}`;
  const silo = await Silo.start({ redis, keyPrefix, grains: [MachineOperator], logLevel: 'warn' });
  const client = await connect({ redis, keyPrefix });
  // Another process watching the machine: nothing of its own waits in the operator's mailbox, so
  // its queries go straight to the activation. (The client that sent a signal still waiting to be
  // processed is answered after it: a caller reads its own writes.)
  const watcher = await connect({ redis, keyPrefix });
  try {
    const operator = client.getGrain(MachineOperator, 'press-7');
    await operator.send('setUp', 'ann');
    console.log('signal setUp:', await operator.ask('status')); // asked after a signal: it waits for it
    const job = operator.ask('runJob', 1_500).then((jobs) => {
      console.log(`job done (${jobs} so far)`);
      return jobs;
    });
    // The job holds the grain for 1.5 s; the query does not wait for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const during = await watcher.getGrain(MachineOperator, 'press-7').ask('status');
    let jobDone = false;
    void job.then(() => (jobDone = true));
    console.log('query during the job:', during, jobDone ? '(after the job!)' : '(the job still runs)');
    const answeredDuring = !jobDone && during.jobs === 0;
    await job;
    await operator.send('tearDown', 'ann');
    await operator.send('complete', 'bob');
    const end = await operator.ask('status');
    console.log('after tearDown and complete:', end);
    return answeredDuring && end.status === 'DONE' && end.jobs === 1;
  } finally {
    await watcher.close();
    await client.close();
    await silo.stop();
  }
});
process.exitCode = ok ? 0 : 1;
