import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const run = promisify(execFile);

describe('examples/campaign.ts', () => {
  it('runs the three paths across two silos and prints each state and history', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/campaign.ts'], {
      env: { ...process.env, REDIS_URL: inject('redisUrl') },
      timeout: 60_000,
    });
    expect(stdout).toMatch(
      /spring-sale: APPROVED\n.*EMPTY +-> PENDING +create +by alice\n.*PENDING +-> WAITING_REVIEW +created +by system\n.*WAITING_REVIEW +-> APPROVED +review +by bob/,
    );
    expect(stdout).toMatch(/summer-promo: REJECTED \(off-brand imagery\)/);
    expect(stdout).toMatch(/autumn-launch: CANCELLED \(budget moved to Q4\)\n(.*\n){2}.*WAITING_REVIEW +-> CANCELLED +cancel +by alice/);
    expect(stdout).toMatch(
      /winter-teaser: CANCELLED \(review deadline passed \(1000 ms without a review\)\)\n(.*\n){2}.*WAITING_REVIEW +-> CANCELLED +reviewDeadlinePassed +by system/,
    );
    expect(stdout).toContain('refused: Campaign in state CANCELLED does not accept "review" (code INVALID_MESSAGE_FOR_STATE)');
    expect(stdout).toMatch(/activations per silo: \S+=\d, \S+=\d/);
    expect(stderr).toBe('');
  });

  it('examples/order-saga.ts: each order completes or is compensated, and its path is printed', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/order-saga.ts'], {
      env: { ...process.env, REDIS_URL: inject('redisUrl') },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^o-1 \(2 x mug for ann\): completed\n {2}placed\n( {2}done (reserve|quote|charge)\n){3} {2}completed\n/m);
    expect(stdout).toMatch(/^o-2 \(9 x mug for bob\): compensated\n/m);
    expect(stdout).toContain('  failed reserve: out of stock (8 left)\n');
    expect(stdout).toMatch(
      /^o-3 \(3 x poster for cy\): compensated\n(.*\n)*? {2}undone reserve\n {2}compensated \(charge: card declined \(1800 over 1000\)\)\n/m,
    );
    expect(stdout).toMatch(/^o-4 \(3 x pen for dee\): completed\n/m);
    expect(stdout).toContain(
      'stock of mug: 8 (reserved by o-1)\nstock of poster: 10 (reserved by nobody)\nstock of pen: 7 (reserved by o-4)\n',
    );
    expect(stderr).toBe('');
  });

  it('examples/machine-operator.ts: the status query is answered during the job, the signals end it DONE', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'examples/machine-operator.ts'], {
      env: { ...process.env, REDIS_URL: inject('redisUrl') },
      timeout: 60_000,
    });
    expect(stdout).toBe(
      [
        "signal setUp: { status: 'UP', jobs: 0, transitions: 1 }",
        "query during the job: { status: 'UP', jobs: 0, transitions: 1 } (the job still runs)",
        'job done (1 so far)',
        "after tearDown and complete: { status: 'DONE', jobs: 1, transitions: 4 }",
        '',
      ].join('\n'),
    );
    expect(stderr).toBe('');
  });
});
