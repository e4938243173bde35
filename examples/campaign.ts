/**
 * The flagship example: campaigns reviewed across two silos.
 *
 *   npm run example            (starts a private Redis when REDIS_URL is not set)
 *
 * Runs one campaign through each path of its state machine (approve, reject, cancel), shows a
 * message the current state refuses, and prints each campaign's state and history.
 */
import { randomUUID } from 'node:crypto';
import { connect, InvalidMessageForStateError, Silo } from 'redgrain';
import { Campaign, ReviewQueue, type CampaignState } from '../grains/campaign.ts';
import { withRedis } from './support/redis.ts';

await withRedis(async (redis) => {
  // A fresh prefix per run, so runs against a shared Redis never see each other's campaigns.
  const keyPrefix = `campaign-example-${randomUUID().slice(0, 8)}`;
  const silos = await Promise.all([1, 2].map(() => Silo.start({ redis, keyPrefix, grains: [Campaign, ReviewQueue], logLevel: 'warn' })));
  const client = await connect({ redis, keyPrefix });
  try {
    const paths = [
      { key: 'spring-sale', name: 'Spring sale', end: 'approve' },
      { key: 'summer-promo', name: 'Summer promo', end: 'reject' },
      { key: 'autumn-launch', name: 'Autumn launch', end: 'cancel' },
    ] as const;
    for (const path of paths) {
      const campaign = client.getGrain(Campaign, path.key);
      // `create` moves the campaign to PENDING and queues its own confirmation, which runs
      // before any message sent after this ask resolves: the next message sees WAITING_REVIEW.
      await campaign.ask('create', { name: path.name, budget: 10_000, actor: 'alice' });
      if (path.end === 'approve') await campaign.ask('review', { approved: true, reviewer: 'bob' });
      if (path.end === 'reject') await campaign.ask('review', { approved: false, reviewer: 'bob', comment: 'off-brand imagery' });
      if (path.end === 'cancel') await campaign.ask('cancel', { actor: 'alice', reason: 'budget moved to Q4' });
      print(path.key, await campaign.ask('get'));
    }

    // A message the current state does not accept is refused, and changes nothing.
    try {
      await client.getGrain(Campaign, 'autumn-launch').ask('review', { approved: true, reviewer: 'carol' });
    } catch (error) {
      if (!(error instanceof InvalidMessageForStateError)) throw error;
      console.log(`refused: ${error.message} (code ${error.code})\n`);
    }
    console.log(`activations per silo: ${silos.map((s) => `${s.id}=${s.activationCount}`).join(', ')}`);
  } finally {
    await client.close();
    await Promise.all(silos.map((s) => s.stop()));
  }
});

function print(key: string, state: CampaignState): void {
  console.log(`${key}: ${state.status}${state.reason ? ` (${state.reason})` : ''}`);
  for (const t of state.history) {
    console.log(`  ${t.at.toISOString()}  ${t.from.padEnd(14)} -> ${t.to.padEnd(14)} ${t.message.padEnd(8)} by ${t.actor}`);
  }
  console.log('');
}
