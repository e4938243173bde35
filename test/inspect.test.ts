import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, Silo, type GrainClient } from 'redgrain';
import { main } from '../src/cli/main.ts';
import { Ledger } from './grains/test-grains.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

const runBin = promisify(execFile);

/** `redgrain inspect` against a live silo: what an operator asks while something is stuck. */
describe('redgrain inspect', () => {
  const keyPrefix = freshPrefix('inspect');
  let silo: Silo;
  let client: GrainClient;

  const inspect = async (...args: string[]): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    const code = await main(['inspect', ...args, '--redis', inject('redisUrl'), '--prefix', keyPrefix], (text) => lines.push(text));
    return { code, text: lines.join('\n') };
  };
  const inspectJson = async <T>(...args: string[]): Promise<T> => {
    const { code, text } = await inspect(...args, '--json');
    expect(code).toBe(0);
    return JSON.parse(text) as T;
  };

  beforeAll(async () => {
    silo = await Silo.start({ redis: inject('redisUrl'), keyPrefix, grains: [Ledger], logLevel: 'silent' });
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
  });

  it('lists silos with status, heartbeat age, activations and types', async () => {
    await client.getGrain(Ledger, 'warm').ask('credit', 'a', 1);
    const silos = await inspectJson<{ id: string; status: string; heartbeatAgeMs: number; types: string[] }[]>('silos');
    expect(silos).toHaveLength(1);
    expect(silos[0]).toMatchObject({ id: silo.id, status: 'active', types: ['Ledger'] });
    expect(silos[0]?.heartbeatAgeMs).toBeLessThan(10_000);
    const { text } = await inspect('silos');
    expect(text).toMatch(
      new RegExp(`^SILO +STATUS +HEARTBEAT +ACTIVATIONS +HOST +TYPES\\n${silo.id} +active +[\\d.]+ m?s ago +\\d+ .* Ledger$`),
    );
  });

  it('shows a busy grain: owner, waiting messages in order, failed messages, state; and ranks it first', async () => {
    const ledger = client.getGrain(Ledger, 'busy').with({ correlationId: 'ops-1' });
    await ledger.ask('credit', 'first', 5);
    await expect(ledger.ask('failPlain', 'bad input')).rejects.toThrow('bad input');
    // A slow turn holds the mailbox while three more messages wait behind it.
    const slow = ledger.ask('slow', 3_000);
    slow.catch(() => undefined); // awaited at the end; a failed assertion must not leave it unhandled
    await waitFor('the slow turn to start', async () =>
      (await inspectJson<{ mailbox: { active: number } }>('grain', 'Ledger', 'busy')).mailbox.active === 1 ? true : undefined,
    );
    for (const id of ['w1', 'w2', 'w3']) await ledger.send('credit', id, 1);

    const grain = await inspectJson<{
      owner: { silo: string; epoch: string };
      mailbox: { waiting: number; active: number; failed: number };
      waiting: { id: string; method: string; correlationId: string; sentAt: string }[];
      failed: { method: string; reason: string }[];
      state: { balance: string; entries: Record<string, unknown> };
    }>('grain', 'Ledger', 'busy');
    expect(grain.owner.silo).toBe(silo.id);
    expect(Number(grain.owner.epoch)).toBeGreaterThan(0);
    expect(grain.mailbox).toMatchObject({ waiting: 3, active: 1, failed: 1 });
    expect(grain.waiting.map((m) => m.method)).toEqual(['credit', 'credit', 'credit']);
    expect(grain.waiting.every((m) => m.correlationId === 'ops-1')).toBe(true);
    const sent = grain.waiting.map((m) => Date.parse(m.sentAt));
    expect(sent).toEqual([...sent].sort((a, b) => a - b)); // oldest first, the order they run in
    expect(grain.failed).toEqual([expect.objectContaining({ method: 'failPlain', reason: 'TypeError: bad input' })]);
    expect(grain.state.balance).toBe('5');
    expect(Object.keys(grain.state.entries)).toEqual(['first']);

    const top = await inspectJson<{ grain: string; waiting: number; owner: string }[]>('top', '--limit', '1');
    expect(top).toEqual([{ grain: 'Ledger/busy', type: 'Ledger', key: 'busy', waiting: 3, owner: silo.id, ownerStatus: 'active' }]);
    const { text } = await inspect('grain', 'Ledger', 'busy');
    expect(text).toContain(`owner    ${silo.id} (active), epoch ${grain.owner.epoch}`);
    expect(text).toContain('mailbox  3 waiting, 1 in progress, 1 failed, 0 delayed');
    expect(text).toMatch(/\nstate\n {2}balance = "5"\n {2}entries = \{"first":/);
    expect(text).toMatch(/waiting \(oldest first\)\nID +METHOD +SENT +CORRELATION\n(\d+) +credit .* ops-1\n/);
    await slow;
  });

  it('runs as the redgrain command, and fails clearly on bad input', async () => {
    const { stdout } = await runBin(process.execPath, [
      '--import',
      'tsx',
      'src/cli/bin.ts',
      'inspect',
      'dead-letters',
      '--redis',
      inject('redisUrl'),
      '--prefix',
      keyPrefix,
    ]);
    expect(stdout.trim()).toBe('No dead letters.');
    const failure = await runBin(process.execPath, [
      '--import',
      'tsx',
      'src/cli/bin.ts',
      'inspect',
      'top',
      '--limit',
      'lots',
      '--redis',
      inject('redisUrl'),
    ]).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failure).toMatchObject({ code: 1, stderr: expect.stringContaining('--limit must be a positive whole number') });
  });
});
