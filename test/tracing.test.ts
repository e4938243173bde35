import { context, trace, SpanKind, type Link } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, Silo, type GrainClient } from 'redgrain';
import { Campaign, REVIEW_QUEUE } from '../grains/campaign.ts';
import { ReviewQueue } from '../grains/review-queue.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

/**
 * One user action on a campaign, run across two silos (one hosts campaigns, the other the review
 * queue), yields one trace: every span shares the action's trace id and correlation id, RPC spans
 * nest, and one-way messages link to the span that sent them.
 */
describe('tracing', () => {
  const keyPrefix = freshPrefix('tracing');
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const log = new LogRecorder();
  let campaigns: Silo;
  let reviews: Silo;
  let client: GrainClient;

  beforeAll(async () => {
    provider.register();
    campaigns = await Silo.start({ redis: inject('redisUrl'), grains: [Campaign], keyPrefix, logger: log });
    reviews = await Silo.start({ redis: inject('redisUrl'), grains: [ReviewQueue], keyPrefix, logger: log });
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await campaigns?.stop();
    await reviews?.stop();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const one = (spans: ReadableSpan[], name: string, kind: SpanKind): ReadableSpan => {
    const found = spans.filter((s) => s.name === name && s.kind === kind);
    expect(
      found.map((s) => s.name),
      `${name} (${SpanKind[kind]})`,
    ).toHaveLength(1);
    return found[0] as ReadableSpan;
  };
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const linked = (span: ReadableSpan): string[] => span.links.map((l: Link) => l.context.spanId);

  it('follows a campaign across grains and silos as one trace with one correlation id', async () => {
    const key = `spring-${Date.now()}`;
    const campaign = client.getGrain(Campaign, key);
    const root = trace.getTracer('test').startSpan('user creates a campaign');
    const rootContext = trace.setSpan(context.active(), root);
    await context.with(rootContext, () => campaign.ask('create', { name: 'Spring', budget: 100, actor: 'alice' }));
    root.end();
    const traceId = root.spanContext().traceId;

    // The campaign confirms its creation (one-way, to itself), then tells the review queue (one-way, other silo).
    const queueTurn = await waitFor('the review queue to process the submission', () =>
      spansOf(traceId).find((s) => s.name === 'process grain.ReviewQueue.{key}'),
    );
    const spans = spansOf(traceId);

    const client1 = one(spans, 'Campaign/create', SpanKind.CLIENT);
    const server1 = one(spans, 'Campaign/create', SpanKind.SERVER);
    expect(parentOf(client1)).toBe(root.spanContext().spanId);
    expect(parentOf(server1)).toBe(client1.spanContext().spanId);
    expect(server1.attributes['rpc.system']).toBe('redgrain');
    expect(server1.attributes['rpc.service']).toBe('Campaign');
    expect(server1.attributes['rpc.method']).toBe('create');

    const sendCreated = one(spans, 'send grain.Campaign.{key}', SpanKind.PRODUCER);
    const created = one(spans, 'process grain.Campaign.{key}', SpanKind.CONSUMER);
    expect(parentOf(sendCreated)).toBe(server1.spanContext().spanId);
    // A one-way message's turn hangs under the turn that sent it and links to the send span.
    expect(parentOf(created)).toBe(server1.spanContext().spanId);
    expect(linked(created)).toContain(sendCreated.spanContext().spanId);

    const sendSubmit = one(spans, 'send grain.ReviewQueue.{key}', SpanKind.PRODUCER);
    expect(parentOf(sendSubmit)).toBe(created.spanContext().spanId);
    expect(parentOf(queueTurn)).toBe(created.spanContext().spanId);
    expect(linked(queueTurn)).toContain(sendSubmit.spanContext().spanId);

    // Queue wait spans hang under the span that enqueued the message.
    const waits = spans.filter((s) => s.name.startsWith('wait grain.'));
    expect(new Set(waits.map((w) => parentOf(w)))).toEqual(new Set([client1, sendCreated, sendSubmit].map((s) => s.spanContext().spanId)));
    expect(waits).toHaveLength(3);
    // State commits are children of their turns.
    for (const turn of [server1, created, queueTurn]) {
      const commits = spans.filter((s) => s.name.startsWith('commit state') && parentOf(s) === turn.spanContext().spanId);
      expect(commits, `commit under ${turn.name}`).toHaveLength(1);
    }

    // Two silos took part, and every message span carries the same correlation id.
    expect(server1.attributes['redgrain.silo.id']).toBe(campaigns.id);
    expect(queueTurn.attributes['redgrain.silo.id']).toBe(reviews.id);
    const correlationIds = new Set(
      spans.filter((s) => s.attributes['messaging.system'] === 'redgrain').map((s) => s.attributes['redgrain.correlation_id']),
    );
    expect(correlationIds.size).toBe(1);
    const [correlationId] = correlationIds;
    expect(typeof correlationId).toBe('string');
    expect(queueTurn.attributes['messaging.destination.name']).toBe(`grain.ReviewQueue.${REVIEW_QUEUE}`);
    expect(queueTurn.attributes['messaging.destination.template']).toBe('grain.ReviewQueue.{key}');

    // The handler saw the trace and correlation ids (recorded in the campaign's history).
    const state = await campaign.ask('get');
    const confirmation = state.history.find((t) => t.message === 'created');
    expect(confirmation?.traceId).toBe(traceId);
    expect(confirmation?.correlationId).toBe(correlationId);

    // Activations are their own traces, linked from the first turn they ran.
    const activation = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'activate Campaign' && s.attributes['redgrain.grain.key'] === key);
    expect(activation).toBeDefined();
    expect(activation?.spanContext().traceId).not.toBe(traceId);
    expect(linked(server1)).toContain(activation?.spanContext().spanId);
    expect(
      exporter.getFinishedSpans().some((s) => s.name === 'load state Campaign' && parentOf(s) === activation?.spanContext().spanId),
    ).toBe(true);
  });

  it('marks a failed ask on both sides and keeps a supplied correlation id', async () => {
    const campaign = client.getGrain(Campaign, `refused-${Date.now()}`).with({ correlationId: 'req-42' });
    await expect(campaign.ask('review', { approved: true, reviewer: 'bob' })).rejects.toThrow(/EMPTY/);
    const spans = await waitFor('both spans of the failed ask', () => {
      const found = exporter
        .getFinishedSpans()
        .filter((s) => s.name === 'Campaign/review' && s.attributes['redgrain.correlation_id'] === 'req-42');
      return found.length === 2 ? found : undefined;
    });
    for (const span of spans) {
      expect(span.status.code).toBe(2); // ERROR
      expect(span.attributes['error.type']).toBe('InvalidMessageForStateError');
    }
    const [clientSpan, serverSpan] = [spans.find((s) => s.kind === SpanKind.CLIENT), spans.find((s) => s.kind === SpanKind.SERVER)];
    expect(parentOf(serverSpan as ReadableSpan)).toBe(clientSpan?.spanContext().spanId);
  });

  it('gives each message of a pack its own span, under its own caller', async () => {
    const campaign = client.getGrain(Campaign, `packed-${Date.now()}`);
    // Asked at once: the first goes alone, the two behind it as one pack.
    await Promise.all(['pack-1', 'pack-2', 'pack-3'].map((id) => campaign.with({ correlationId: id }).ask('get')));
    const spans = await waitFor('a client and a server span for each ask', () => {
      const found = exporter
        .getFinishedSpans()
        .filter((s) => s.name === 'Campaign/get' && String(s.attributes['redgrain.correlation_id']).startsWith('pack-'));
      return found.length === 6 ? found : undefined;
    });
    const ids = ['pack-1', 'pack-2', 'pack-3'].map((id) => {
      const mine = spans.filter((s) => s.attributes['redgrain.correlation_id'] === id);
      const [clientSpan, serverSpan] = [mine.find((s) => s.kind === SpanKind.CLIENT), mine.find((s) => s.kind === SpanKind.SERVER)];
      expect(parentOf(serverSpan as ReadableSpan)).toBe(clientSpan?.spanContext().spanId);
      return String(serverSpan?.attributes['messaging.message.id']);
    });
    const pack = ids[1]?.split('.')[0];
    expect({ alone: /^\d+$/.test(ids[0] ?? ''), packed: ids.slice(1) }).toEqual({ alone: true, packed: [`${pack}.0`, `${pack}.1`] });
  });

  it('puts the trace id and correlation id on log lines written while a handler runs', async () => {
    const campaign = client.getGrain(Campaign, `logged-${Date.now()}`).with({ correlationId: 'req-log' });
    // A one-way message that fails is logged by the silo (an ask's failure goes to its caller).
    await campaign.send('review', { approved: true, reviewer: 'bob' });
    const line = await waitFor('the failure log line', () =>
      log.entries.find((e) => e.message === 'handler failed' && e.fields.correlationId === 'req-log'),
    );
    expect(line.fields.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(line.fields.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(line.fields.grain).toContain('Campaign');
    expect(line.fields.silo).toBe(campaigns.id);
    log.expectQuiet([/handler failed/]);
  });
});
