import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { GrainClient } from 'redgrain';
import { freePort, TestCluster } from 'redgrain/testing';
import { Campaign, REVIEW_QUEUE } from '../grains/campaign.ts';
import { ReviewQueue } from '../grains/review-queue.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number };
}
interface OtlpSpan {
  name: string;
  traceId: string;
  attributes: OtlpAttribute[];
}
interface OtlpTraces {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
}
interface OtlpMetrics {
  resourceMetrics: { scopeMetrics: { scope: { name: string }; metrics: { name: string }[] }[] }[];
}

const run = promisify(execFile);

const attribute = (attributes: OtlpAttribute[], key: string) => attributes.find((a) => a.key === key)?.value.stringValue;

/**
 * What a collector (Jaeger, Prometheus) would receive from silo processes set up the standard
 * way: `redgrain silo`, which sets the SDK up from the OTEL_* variables before the silo starts.
 */
describe('telemetry export from silo processes', () => {
  const traces: OtlpTraces[] = [];
  const metrics: OtlpMetrics[] = [];
  let receiver: Server;
  let endpoint: string;
  let prometheusPort: number;
  let cluster: TestCluster;
  let client: GrainClient;

  beforeAll(async () => {
    // A small OTLP/HTTP receiver (JSON encoding), as Jaeger's would be on 4318.
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as unknown;
        if (request.url === '/v1/traces') traces.push(body as OtlpTraces);
        if (request.url === '/v1/metrics') metrics.push(body as OtlpMetrics);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${port}`;
    prometheusPort = await freePort();
    cluster = await TestCluster.start({
      grains: ['grains/campaign.ts'],
      silos: 0,
      redisUrl: inject('redisUrl'),
      keyPrefix: freshPrefix('otel'),
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_METRIC_EXPORT_INTERVAL: '300',
        OTEL_METRIC_EXPORT_TIMEOUT: '250',
      },
    });
    // As in compose.yaml: one silo hosts campaigns, the other the review queue, so every
    // campaign action crosses both.
    await cluster.addSilo({ OTEL_SERVICE_NAME: 'campaign-silo' });
    await cluster.addSilo(
      { OTEL_SERVICE_NAME: 'review-silo', REDGRAIN_PROMETHEUS_PORT: String(prometheusPort), OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1' },
      ['grains/review-queue.ts'],
    );
    client = await cluster.connect();
  });
  afterAll(async () => {
    await cluster?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const receivedSpans = () =>
    traces.flatMap((t) =>
      t.resourceSpans.flatMap((r) =>
        r.scopeSpans.flatMap((s) =>
          s.spans.map((span) => ({ span, scope: s.scope.name, service: attribute(r.resource.attributes, 'service.name') })),
        ),
      ),
    );

  it('sends spans over OTLP/HTTP with the service name and the correlation id', async () => {
    const key = `otlp-${Date.now()}`;
    const campaign = client.getGrain(Campaign, key).with({ correlationId: 'otlp-flow' });
    await campaign.ask('create', { name: 'Exported', budget: 5, actor: 'alice' });
    const received = await waitFor('the silo spans of the campaign flow at the receiver', () => {
      const flow = receivedSpans().filter((s) => attribute(s.span.attributes, 'redgrain.correlation_id') === 'otlp-flow');
      const names = new Set(flow.map((s) => s.span.name));
      return names.has('Campaign/create') && names.has('process grain.ReviewQueue.{key}') ? flow : undefined;
    });
    for (const { scope } of received) expect(scope).toBe('redgrain');
    expect(new Set(received.map((r) => r.service))).toEqual(new Set(['campaign-silo', 'review-silo']));
    // The ask came from outside any trace; everything it caused is in the trace its turn started.
    expect(new Set(received.map((r) => r.span.traceId)).size).toBe(1);
  });

  it('exports metrics over OTLP and serves them for Prometheus', async () => {
    await client.getGrain(ReviewQueue, REVIEW_QUEUE).ask('list');
    await waitFor('redgrain metrics at the OTLP receiver', () =>
      metrics.some((m) =>
        m.resourceMetrics.some((r) =>
          r.scopeMetrics.some((s) => s.scope.name === 'redgrain' && s.metrics.some((x) => x.name === 'redgrain.messages.processed')),
        ),
      )
        ? true
        : undefined,
    );
    const text = await waitFor('the Prometheus endpoint of the second silo', async () => {
      const response = await fetch(`http://127.0.0.1:${prometheusPort}/metrics`);
      const body = await response.text();
      return body.includes('redgrain_messages_processed') && body.includes('redgrain_activations_live') ? body : undefined;
    });
    expect(text).toMatch(/redgrain_activations_live\{[^}]*redgrain_grain_type="ReviewQueue"[^}]*\} 1/);
    expect(text).toMatch(/redgrain_message_duration_bucket\{[^}]*le="0.001"/);
  });

  it('shows each campaign of the example as one trace across the example and both silos (what Jaeger shows)', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/campaign.ts'], {
      env: {
        ...process.env,
        REDIS_URL: inject('redisUrl'),
        REDGRAIN_PREFIX: cluster.keyPrefix,
        EXAMPLE_SILOS: '0',
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      },
      timeout: 60_000,
    });
    const traceIds = [...stdout.matchAll(/trace ([0-9a-f]{32})/g)].map((m) => m[1]);
    expect(traceIds).toHaveLength(4);
    for (const traceId of traceIds) {
      const services = await waitFor(`the spans of trace ${traceId} from all three processes`, () => {
        const found = new Set(
          receivedSpans()
            .filter((r) => r.span.traceId === traceId)
            .map((r) => r.service),
        );
        return found.size === 3 ? found : undefined;
      });
      expect(services).toEqual(new Set(['redgrain-example', 'campaign-silo', 'review-silo']));
    }
  });
});
