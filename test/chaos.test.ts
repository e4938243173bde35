import { describe, expect, it } from 'vitest';
import { runChaos } from './chaos/chaos.ts';

describe('chaos (short run; `npm run chaos` runs longer)', () => {
  it('kill -9, pause past the lease, Redis restart and a poison message under load: nothing lost, nothing applied twice', async () => {
    const report = await runChaos({
      rounds: 4,
      roundMs: 1_500,
      faults: ['kill', 'pause', 'redis-restart', 'poison'],
      log: (line) => process.stdout.write(`[chaos] ${line}\n`),
    });
    process.stdout.write(`[chaos] ${JSON.stringify({ ...report, gaps: report.gaps.length, doubles: report.doubles.length })}\n`);
    expect(report.gaps).toEqual([]);
    expect(report.doubles).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.doubleApplied).toBe(0);
    // The poison message, plus any healthy message that was in flight on both silos it killed.
    expect(report.deadLetters - report.deadLetteredBystanders).toBe(1);
    expect(report.acknowledged).toBeGreaterThan(100);
    // Four sends in flight per grain: all but the first of each window travel in one pack.
    expect(report.jobs).toBeLessThan(report.acknowledged * 0.75);
    for (const round of report.rounds) expect(round.messages, `round ${round.round} made progress`).toBeGreaterThan(0);
    const takeovers = report.rounds.flatMap((r) => (r.takeoverMs === undefined ? [] : [r.takeoverMs]));
    expect(takeovers).toHaveLength(2);
    expect(Math.max(...takeovers)).toBeLessThan(15_000);
  }, 180_000);
});

describe('chaos with relays (a turn that counts and sends on)', () => {
  it('kill -9 and a Redis restart under load: every relay’s sends reach its sink exactly once and in order', async () => {
    const report = await runChaos({
      rounds: 4,
      roundMs: 1_500,
      faults: ['kill', 'redis-restart', 'kill', 'kill'],
      relay: true,
      log: (line) => process.stdout.write(`[chaos relay] ${line}\n`),
    });
    process.stdout.write(`[chaos relay] ${JSON.stringify({ ...report, gaps: report.gaps.length, doubles: report.doubles.length })}\n`);
    // The relays applied every acknowledged message once (none dead-lettered without a poison message)...
    expect(report.gaps).toEqual([]);
    expect(report.doubles).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.deadLetters).toBe(0);
    // ... and each relay's sink got exactly what the relay counted, in order, each once.
    expect(report.relayed?.lost).toEqual([]);
    expect(report.relayed?.doubles).toEqual([]);
    expect(report.relayed?.sent).toBe(report.acknowledged);
    expect(report.acknowledged).toBeGreaterThan(100);
    // Four sends in flight per grain: all but the first of each window travel in one pack.
    expect(report.jobs).toBeLessThan(report.acknowledged * 0.75);
    for (const round of report.rounds) expect(round.messages, `round ${round.round} made progress`).toBeGreaterThan(0);
  }, 180_000);
});

// In this file, after the others: two chaos runs at once would share the two cores.
describe('chaos on a Redis Cluster (three masters, AOF; a Redis restart crashes and restarts one master)', () => {
  it('kill -9, pause past the lease and a master restart under load, with relays: nothing lost, nothing applied twice, every relayed message once and in order', async () => {
    const report = await runChaos({
      rounds: 4,
      roundMs: 1_500,
      faults: ['kill', 'pause', 'redis-restart', 'kill'],
      relay: true,
      redisCluster: true,
      log: (line) => process.stdout.write(`[chaos cluster] ${line}\n`),
    });
    process.stdout.write(`[chaos cluster] ${JSON.stringify({ ...report, gaps: report.gaps.length, doubles: report.doubles.length })}\n`);
    expect(report.gaps).toEqual([]);
    expect(report.doubles).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.doubleApplied).toBe(0);
    expect(report.deadLetters).toBe(0);
    // Each relay's sink got exactly what the relay counted, in order, each once.
    expect(report.relayed?.lost).toEqual([]);
    expect(report.relayed?.doubles).toEqual([]);
    expect(report.relayed?.sent).toBe(report.acknowledged);
    const takeovers = report.rounds.flatMap((r) => (r.takeoverMs === undefined ? [] : [r.takeoverMs]));
    expect(takeovers).toHaveLength(3);
    expect(report.acknowledged).toBeGreaterThan(100);
    // Four sends in flight per grain: all but the first of each window travel in one pack.
    expect(report.jobs).toBeLessThan(report.acknowledged * 0.75);
    for (const round of report.rounds) expect(round.messages, `round ${round.round} made progress`).toBeGreaterThan(0);
  }, 240_000);
});
