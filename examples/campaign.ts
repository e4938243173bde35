/**
 * The flagship example: campaigns reviewed across two silos.
 *
 *   npm run example            (starts a private Redis when REDIS_URL is not set)
 *
 * Runs one campaign through each path of its state machine (approve, reject, cancel), shows a
 * message the current state refuses, and prints each campaign's state and history. Each campaign
 * is one user action, so one trace: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318
 * for Jaeger) to export it. With EXAMPLE_SILOS=0 it starts no silos of its own and uses the
 * cluster already running on REDIS_URL (as the `example` service in compose.yaml does).
 */
import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { ClusterInspector, connect, InvalidMessageForStateError, Silo, type GrainReference } from 'redgrain';
import { Campaign, type CampaignState } from '../grains/campaign.ts';
import { ReviewQueue } from '../grains/review-queue.ts';
import { startTelemetry, stopTelemetry } from '../src/instrumentation/telemetry-sdk.ts';
import { withRedis } from './support/redis.ts';

const tracing = startTelemetry('redgrain-example');
const siloCount = Number(process.env.EXAMPLE_SILOS ?? 2);
if (!Number.isInteger(siloCount) || siloCount < 0)
  throw new Error(`EXAMPLE_SILOS must be a whole number, got "${process.env.EXAMPLE_SILOS}"`);
const tracer = trace.getTracer('redgrain-example');

await withRedis(async (redis) => {
  // Own silos get a fresh prefix per run, so runs against a shared Redis never see each other's
  // campaigns; against a running cluster, its prefix (REDGRAIN_PREFIX) and fresh campaign keys.
  const run = randomUUID().slice(0, 8);
  const keyPrefix = siloCount > 0 ? `campaign-example-${run}` : process.env.REDGRAIN_PREFIX;
  const silos = await Promise.all(
    Array.from({ length: siloCount }, () => Silo.start({ redis, keyPrefix, grains: [Campaign, ReviewQueue], logLevel: 'warn' })),
  );
  if (siloCount === 0) await waitForSilos(redis, keyPrefix, [Campaign.type, ReviewQueue.type]);
  const client = await connect({ redis, keyPrefix });
  const keyOf = (name: string) => (siloCount > 0 ? name : `${name}-${run}`);
  try {
    const paths = [
      { key: keyOf('spring-sale'), name: 'Spring sale', end: 'approve' },
      { key: keyOf('summer-promo'), name: 'Summer promo', end: 'reject' },
      { key: keyOf('autumn-launch'), name: 'Autumn launch', end: 'cancel' },
      // Nobody reviews this one: its review deadline (a durable reminder) cancels it.
      { key: keyOf('winter-teaser'), name: 'Winter teaser', end: 'deadline' },
    ] as const;
    for (const path of paths) {
      // One span around the user's whole action: everything it causes, on any silo, is one trace.
      const action = tracer.startSpan(`campaign ${path.end}`);
      const state = await context.with(trace.setSpan(context.active(), action), async () => {
        const campaign = client.getGrain(Campaign, path.key);
        // `create` moves the campaign to PENDING and queues its own confirmation, which runs
        // before any message sent after this ask resolves: the next message sees WAITING_REVIEW.
        const reviewDeadlineMs = path.end === 'deadline' ? 1_000 : undefined;
        await campaign.ask('create', {
          name: path.name,
          budget: 10_000,
          actor: 'alice',
          ...(reviewDeadlineMs === undefined ? {} : { reviewDeadlineMs }),
        });
        if (path.end === 'approve') await campaign.ask('review', { approved: true, reviewer: 'bob' });
        if (path.end === 'reject') await campaign.ask('review', { approved: false, reviewer: 'bob', comment: 'off-brand imagery' });
        if (path.end === 'cancel') await campaign.ask('cancel', { actor: 'alice', reason: 'budget moved to Q4' });
        if (path.end === 'deadline') return waitUntilCancelled(campaign);
        return campaign.ask('get');
      });
      action.end();
      print(path.key, state, tracing ? action.spanContext().traceId : undefined);
    }

    // A message the current state does not accept is refused, and changes nothing.
    try {
      await client.getGrain(Campaign, keyOf('autumn-launch')).ask('review', { approved: true, reviewer: 'carol' });
    } catch (error) {
      if (!(error instanceof InvalidMessageForStateError)) throw error;
      console.log(`refused: ${error.message} (code ${error.code})\n`);
    }
    console.log(`waiting for review: ${(await client.getGrain(ReviewQueue, 'main').ask('list')).length}`);
    if (silos.length > 0) console.log(`activations per silo: ${silos.map((s) => `${s.id}=${s.activationCount}`).join(', ')}`);
  } finally {
    await client.close();
    await Promise.all(silos.map((s) => s.stop()));
  }
});
await stopTelemetry();

/** Waits (up to 30 s) for a campaign's review deadline to cancel it. */
async function waitUntilCancelled(campaign: GrainReference<Campaign>): Promise<CampaignState> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = await campaign.ask('get');
    if (state.status === 'CANCELLED') return state;
    if (Date.now() > deadline) throw new Error(`${campaign.key} is still ${state.status} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Against a running cluster, waits (up to a minute) until active silos host `types`. */
async function waitForSilos(redis: string | undefined, keyPrefix: string | undefined, types: string[]): Promise<void> {
  const inspector = await ClusterInspector.open({ redis, ...(keyPrefix === undefined ? {} : { keyPrefix }) });
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const hosted = new Set((await inspector.silos()).filter((s) => s.status === 'active').flatMap((s) => s.types));
      const missing = types.filter((type) => !hosted.has(type));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`No active silo hosts ${missing.join(', ')} after 60 s; start the silos first`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    await inspector.close();
  }
}

function print(key: string, state: CampaignState, traceId: string | undefined): void {
  console.log(`${key}: ${state.status}${state.reason ? ` (${state.reason})` : ''}`);
  if (traceId !== undefined) console.log(`  trace ${traceId}`);
  for (const t of state.history) {
    console.log(`  ${t.at.toISOString()}  ${t.from.padEnd(14)} -> ${t.to.padEnd(14)} ${t.message.padEnd(8)} by ${t.actor}`);
  }
  console.log('');
}
