import { afterAll, describe, expect, it } from 'vitest';
import { GrainId } from '../src/grain/grain-id.ts';
import { senderDigest } from '../src/outbox/outbox.ts';
import { Emitter, Sink } from './grains/outbox-grains.ts';
import { inProcessSilo } from './support/in-process-silo.ts';
import { sinkRecordEntry } from './support/outbox-entry.ts';
import { waitFor } from './support/wait-for.ts';
import { rawRedis } from './support/redis.ts';

/** A turn's effects on other grains commit with its state: exactly once, in order, or not at all. */
describe('the outbox', () => {
  const cluster = inProcessSilo('outbox', [Emitter, Sink], { lockDurationMs: 2_000 });
  const redis = rawRedis();
  const key = (grain: string, part: string) => `${cluster.keyPrefix}:g:{${grain}}:${part}`;
  afterAll(() => redis.disconnect());
  /** Resolves once the next slow handler (slowEmit, slowCount) has started. */
  const nextRun = () =>
    new Promise<void>((resolve) => {
      Emitter.sent = resolve;
    });

  it('a handler that sends, publishes, reminds and subscribes, then throws, leaves none of it', async () => {
    const { client } = cluster;
    const sink = client.getGrain(Sink, 'sink');
    await sink.ask('listen', 'outbox.*');
    const emitter = client.getGrain(Emitter, 'thrower');
    await expect(emitter.ask('everythingThenThrow')).rejects.toThrow('changed my mind');
    // The reply to an ask waits for its turn's effects: after it, the sink has what was sent.
    await emitter.ask('emit', 1);
    expect(await sink.ask('read')).toEqual(['thrower:1']);
    expect(await emitter.ask('effects')).toEqual({ reminders: [], subscriptions: [] });
    expect(await redis.hget(key('Emitter/thrower', 'state'), 'emitted')).toBe('{"json":1}');
    expect(await redis.llen(key('Emitter/thrower', 'outbox'))).toBe(0);
    cluster.log.expectQuiet([/handler failed/]);
  });

  it('forget and unsubscribe see the turn’s own reminder and subscription, and undo them', async () => {
    const emitter = cluster.client.getGrain(Emitter, 'undoer');
    expect(await emitter.ask('remindAndSubscribe')).toEqual({ forgotten: true, unsubscribed: true });
    expect(await emitter.ask('effects')).toEqual({ reminders: [], subscriptions: [] });
  });

  it('an activation fenced out mid-turn sends nothing; the grain’s next activation runs the turn again and sends once', async () => {
    const { client } = cluster;
    const emitter = client.getGrain(Emitter, 'fenced');
    await emitter.ask('noop');
    const sent = nextRun();
    await emitter.send('slowEmit', 7, 500);
    await sent;
    Emitter.sent = undefined;
    // Another claim of the grain, as if a second activation had been made: this one's commit is refused.
    await redis.hincrby(key('Emitter/fenced', 'dir'), 'epoch', 1);
    await waitFor('the turn to run again', async () => ((Emitter.runs.get('fenced') ?? 0) >= 2 ? true : undefined));
    await emitter.ask('noop');
    expect(Emitter.runs.get('fenced')).toBe(2);
    expect(await client.getGrain(Sink, 'sink').ask('read')).toEqual(expect.arrayContaining(['fenced:7']));
    expect((await client.getGrain(Sink, 'sink').ask('read')).filter((entry) => entry === 'fenced:7')).toHaveLength(1);
    cluster.log.expectQuiet([/activation stepped down/]);
  });

  it('an ask whose turn is fenced out is answered by the turn run again, never by the refused commit', async () => {
    const { client } = cluster;
    const emitter = client.getGrain(Emitter, 'fenced-ask');
    await emitter.ask('noop');
    const started = nextRun();
    const answer = emitter.ask('slowCount', 500);
    await started;
    Emitter.sent = undefined;
    await redis.hincrby(key('Emitter/fenced-ask', 'dir'), 'epoch', 1);
    // The first run's commit (which would have published its answer, 1) is refused.
    expect(await answer).toBe(2);
    expect(Emitter.runs.get('fenced-ask')).toBe(2);
    expect(await redis.hget(key('Emitter/fenced-ask', 'state'), 'emitted')).toBe('{"json":1}');
    cluster.log.expectQuiet([/activation stepped down/]);
  });

  it('the next activation carries out what an earlier one left in the outbox, in order; a message it already delivered is dropped', async () => {
    const { client } = cluster;
    const emitter = client.getGrain(Emitter, 'left');
    const sink = client.getGrain(Sink, 'sink');
    await emitter.ask('emit', 1);
    expect(await sink.ask('read')).toContain('left:1'); // processed, so its mark is committed
    // Where the sink has got to with this emitter: the mark of message 1, recorded by the sink's commit.
    const sender = senderDigest(GrainId.of('Emitter', 'left'));
    const [epoch, n] = ((await redis.hget(key('Sink/sink', 'seen'), sender)) ?? '').split('.').map(Number) as [number, number];
    expect(n).toBe(1);
    await cluster.stop();
    // As a silo that died after delivering 1 and before trimming its outbox, with 2 committed and
    // not delivered yet, would have left it (1 again carries other arguments, to be seen if applied).
    const entry = (args: unknown[], at: number) => sinkRecordEntry(sender, epoch, at, args);
    await redis.rpush(key('Emitter/left', 'outbox'), entry(['left', 100], n), entry(['left', 2], n + 1));
    await cluster.start();
    await emitter.ask('emit', 3);
    expect((await sink.ask('read')).filter((got) => got.startsWith('left:'))).toEqual(['left:1', 'left:2', 'left:3']);
    expect(await redis.llen(key('Emitter/left', 'outbox'))).toBe(0);
  });
});
