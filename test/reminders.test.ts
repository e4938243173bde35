import { Cluster, type Redis } from 'ioredis';
import { describe, expect, it, onTestFailed } from 'vitest';
import { Alarm, type RecordedTick } from './grains/alarm.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { onCluster, rawRedis } from './support/redis.ts';
import { waitFor } from './support/wait-for.ts';

describe('durable reminders', () => {
  const cluster = inProcessSilo('reminders', [Alarm]);
  const { log } = cluster;
  const client = () => cluster.client;
  /** A grain's recorded ticks, read from Redis without activating it. */
  const persisted = async (key: string): Promise<RecordedTick[]> =>
    ((await cluster.inspector.grain('Alarm', key)).state.ticks as RecordedTick[] | undefined) ?? [];

  it('fires a one-shot reminder once, with a tick id, and lists it until then', async () => {
    const alarm = client().getGrain(Alarm, 'once');
    await alarm.ask('set', 'wake', { after: 300 });
    expect(await alarm.ask('list')).toEqual([expect.objectContaining({ name: 'wake', method: 'ring', schedule: { after: 300 } })]);
    const [tick] = await waitFor('the reminder to fire', async () => {
      const ticks = await persisted('once');
      return ticks.length > 0 ? ticks : undefined;
    });
    expect(tick?.id).toBe(`wake@${tick?.scheduledAt}`);
    expect(tick?.ranAt).toBeGreaterThanOrEqual(tick?.scheduledAt ?? Infinity);
    await waitFor('the fired reminder to leave the list', async () => ((await alarm.ask('list')).length === 0 ? true : undefined));
    expect(await persisted('once')).toHaveLength(1);
  });

  it('repeats an every reminder until it is forgotten', async () => {
    const alarm = client().getGrain(Alarm, 'every');
    await alarm.ask('set', 'beat', { every: 100 });
    await waitFor('three beats', async () => ((await persisted('every')).length >= 3 ? true : undefined));
    expect(await alarm.ask('cancel', 'beat')).toBe(true);
    expect(await alarm.ask('cancel', 'beat')).toBe(false);
    const atForget = (await persisted('every')).length;
    await alarm.ask('set', 'marker', { after: 500 });
    const ticks = await waitFor('the marker', async () => {
      const t = await persisted('every');
      return t.some((x) => x.label === 'marker') ? t : undefined;
    });
    // At most one beat was already on its way when it was forgotten; five more would have come.
    expect(ticks.filter((t) => t.label === 'beat').length).toBeLessThanOrEqual(atForget + 1);
    const ids = ticks.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('fires a reminder of a deactivated grain after every silo restarted', async () => {
    const alarm = client().getGrain(Alarm, 'restart');
    await alarm.ask('set', 'later', { after: 1_500 });
    await cluster.stop(); // the grain is deactivated and no silo runs
    expect((await cluster.inspector.silos()).filter((s) => s.status === 'active')).toEqual([]);
    await cluster.start();
    const ticks = await waitFor('the reminder to fire on the new silo', async () => {
      const t = await persisted('restart');
      return t.length > 0 ? t : undefined;
    });
    expect(ticks.map((t) => t.label)).toEqual(['later']);
  });

  it('applies the missed-tick policy to ticks that fell while no silo ran', async () => {
    for (const missed of ['once', 'skip', 'all'] as const) {
      await client().getGrain(Alarm, `missed-${missed}`).ask('set', 'tick', { every: 200, missed });
    }
    await waitFor('every policy to tick once', async () => {
      const counts = await Promise.all(['once', 'skip', 'all'].map(async (m) => (await persisted(`missed-${m}`)).length));
      return counts.every((n) => n >= 1) ? true : undefined;
    });
    await cluster.stop();
    const downFrom = Date.now();
    // Ticks a reminder worker delivered before it stopped, into a mailbox whose grain had already
    // been deactivated, wait there and run after the restart: late, but not by any policy's doing.
    const handedBack = await Promise.all(
      ['once', 'skip', 'all'].map(async (m) => (await cluster.inspector.grain('Alarm', `missed-${m}`)).mailbox.waiting),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the outage itself, not a wait for an event
    const downUntil = Date.now();
    await cluster.start();
    // A tick is late when it ran well after it was due (half a second; on-time ticks run within a
    // period): those the policy delivered for the outage (the first may be due just before the stop
    // returned, once the reminder workers had finished), and those handed back above.
    const late = (t: RecordedTick[]) => t.filter((x) => x.ranAt - x.scheduledAt >= 500);
    // The late ticks of `all` are delivered one by one while the next on-time tick may already
    // run (the worker delivers several reminders at once), so wait for them, not just for that.
    const ticks = await waitFor('ticks after the outage', async () => {
      const all = await Promise.all(['once', 'skip', 'all'].map((m) => persisted(`missed-${m}`)));
      const afterwards = all.every((t) => t.some((x) => x.scheduledAt > downUntil));
      const times = (all[2] as RecordedTick[]).map((t) => t.scheduledAt).sort((x, y) => x - y);
      const gapless = times.every((t, i) => i === 0 || t - (times[i - 1] as number) === 200);
      return afterwards && gapless && late(all[2] as RecordedTick[]).length >= 4 ? all : undefined;
    });
    onTestFailed(() => {
      process.stdout.write(
        `outage ${downFrom}..${downUntil}, handed back ${handedBack.join('/')}\n${JSON.stringify(ticks.map((t) => t.map((x) => [x.scheduledAt, x.ranAt])))}\n`,
      );
    });
    const [once, skip, all] = ticks.map(late) as [RecordedTick[], RecordedTick[], RecordedTick[]];
    expect(skip).toHaveLength(handedBack[1] as number);
    expect(once).toHaveLength(1 + (handedBack[0] as number));
    expect(all.length).toBeGreaterThanOrEqual(4); // about 1.5 s / 200 ms due while down, the first 1 s of them late by 0.5 s or more
    const allTicks = (ticks[2] as RecordedTick[]).map((t) => t.scheduledAt).sort((a, b) => a - b);
    for (let i = 1; i < allTicks.length; i++) expect(allTicks[i]! - allTicks[i - 1]!).toBe(200);
    for (const key of ['missed-once', 'missed-skip', 'missed-all']) await client().getGrain(Alarm, key).ask('cancel', 'tick');
  });

  it('spreads reminders over every master of a cluster (one queue on one Redis), and fires each once', async () => {
    const grains = Array.from({ length: 60 }, (_, i) => `spread-${i}`);
    await Promise.all(grains.map((key) => client().getGrain(Alarm, key).ask('set', 'soon', { after: 1_500 })));
    // Where the delayed one-shot reminders wait, per Redis node that holds any. A reminder is
    // registered from the turn's outbox, once the turn has committed (and may have replied).
    const redis = rawRedis();
    const perNode = await waitFor('every reminder registered', async () => {
      const found: Record<string, number> = {};
      const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
      for (const node of nodes) {
        for (const key of await node.keys(`${cluster.keyPrefix}:q:*:delayed`)) {
          const name = `${node.options.port} ${key.slice(cluster.keyPrefix.length + ':q:'.length, -':delayed'.length)}`;
          // This test's one-shot reminders only (other tests' repeating ones may be due meanwhile).
          const ours = (await node.zrange(key, '0', '-1')).filter((jobId) => jobId.startsWith('once/Alarm/spread-'));
          if (ours.length > 0) found[name] = ours.length;
        }
      }
      return Object.values(found).reduce((a, b) => a + b, 0) >= 60 ? found : undefined;
    }).finally(() => redis.disconnect());
    const counts = Object.values(perNode);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(60);
    const queues = [...new Set(Object.keys(perNode).map((name) => name.split(' ')[1] ?? ''))];
    const masters = new Set(Object.keys(perNode).map((name) => name.split(' ')[0]));
    expect({ masters: masters.size, queues: queues.map((queue) => queue.replace(/^\{reminders-\d[a-z]+\}$/, '{reminders-N}')) }).toEqual(
      onCluster() ? { masters: 3, queues: new Array(6).fill('{reminders-N}') } : { masters: 1, queues: ['reminders'] },
    );
    const fired = await waitFor('every reminder to fire', async () => {
      const ticks = await Promise.all(grains.map(persisted));
      return ticks.every((t) => t.length > 0) ? ticks : undefined;
    });
    expect(fired.map((t) => t.map((x) => x.label))).toEqual(grains.map(() => ['soon']));
  });

  it('refuses a bad schedule', async () => {
    await expect(client().getGrain(Alarm, 'bad').ask('set', 'x', { every: 1 })).rejects.toMatchObject({ code: 'INVALID_TIMER' });
    await expect(client().getGrain(Alarm, 'bad').ask('set', 'x', { cron: 'soon' })).rejects.toMatchObject({ code: 'INVALID_TIMER' });
    // Well-formed, but impossible to schedule: refused at the call, not left to fail in the outbox.
    await expect(client().getGrain(Alarm, 'bad').ask('set', 'x', { cron: '99 99 * * *' })).rejects.toMatchObject({
      code: 'INVALID_TIMER',
      message: expect.stringContaining('Constraint error, got value 99'),
    });
    await expect(client().getGrain(Alarm, 'bad').ask('set', 'x', { cron: '* * * * *', tz: 'Mars/Base' })).rejects.toMatchObject({
      code: 'INVALID_TIMER',
      message: expect.stringContaining('in "Mars/Base" cannot be scheduled'),
    });
    expect(await client().getGrain(Alarm, 'bad').ask('list')).toEqual([]);
    log.expectQuiet([/skipped a late reminder tick/]);
  });
});
