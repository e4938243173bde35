import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ClusterInspector, connect, InvalidMessageForStateError, Silo, type GrainClient, type GrainReference } from 'redgrain';
import { Campaign, type CampaignStatus } from '../grains/campaign.ts';
import { ReviewQueue } from '../grains/review-queue.ts';
import { LogRecorder } from './support/log-recorder.ts';
import { freshPrefix } from './support/prefix.ts';
import { waitFor } from './support/wait-for.ts';

type Ref = GrainReference<Campaign>;

const create = (ref: Ref) => ref.ask('create', { name: 'Spring sale', budget: 1_000, actor: 'alice' });
/** Every message a campaign knows, by the name its transitions record. */
const MESSAGES: Record<string, (ref: Ref) => Promise<unknown>> = {
  create,
  created: (ref) => ref.ask('created'),
  review: (ref) => ref.ask('review', { approved: true, reviewer: 'bob' }),
  cancel: (ref) => ref.ask('cancel', { actor: 'alice', reason: 'budget cut' }),
};
/** Which messages each reachable status accepts (DESIGN.md's state machine). */
const ACCEPTS: Record<CampaignStatus, string[]> = {
  EMPTY: ['create'],
  PENDING: ['created', 'cancel'],
  WAITING_REVIEW: ['review', 'cancel'],
  APPROVED: [],
  REJECTED: [],
  CANCELLED: [],
};

describe('Campaign', () => {
  const keyPrefix = freshPrefix('campaign');
  let silo: Silo;
  let client: GrainClient;
  let n = 0;
  const log = new LogRecorder();
  const fresh = (): Ref => client.getGrain(Campaign, `c${n++}`);
  const waitingForReview = async (): Promise<Ref> => {
    const ref = fresh();
    expect(await create(ref)).toBe('PENDING');
    await waitFor('the campaign to confirm its creation', async () =>
      (await ref.ask('get')).status === 'WAITING_REVIEW' ? true : undefined,
    );
    return ref;
  };
  /** A campaign in each status reachable with a silo running (PENDING is covered below). */
  const reach: Partial<Record<CampaignStatus, () => Promise<Ref>>> = {
    EMPTY: async () => fresh(),
    WAITING_REVIEW: waitingForReview,
    APPROVED: async () => {
      const ref = await waitingForReview();
      await ref.ask('review', { approved: true, reviewer: 'bob' });
      return ref;
    },
    REJECTED: async () => {
      const ref = await waitingForReview();
      await ref.ask('review', { approved: false, reviewer: 'bob', comment: 'off-brand' });
      return ref;
    },
    CANCELLED: async () => {
      const ref = await waitingForReview();
      await ref.ask('cancel', { actor: 'alice', reason: 'budget cut' });
      return ref;
    },
  };

  beforeAll(async () => {
    silo = await Silo.start({ redis: inject('redisUrl'), grains: [Campaign, ReviewQueue], keyPrefix, logger: log });
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
    log.expectQuiet();
  });

  it('approve path: EMPTY -> PENDING -> WAITING_REVIEW -> APPROVED, each transition recorded', async () => {
    const ref = await reach.APPROVED!();
    const state = await ref.ask('get');
    expect(state.status).toBe('APPROVED');
    expect(state.history.map((t) => [t.from, t.to, t.message, t.actor])).toEqual([
      ['EMPTY', 'PENDING', 'create', 'alice'],
      ['PENDING', 'WAITING_REVIEW', 'created', 'system'],
      ['WAITING_REVIEW', 'APPROVED', 'review', 'bob'],
    ]);
    for (const t of state.history) {
      expect(t.at).toBeInstanceOf(Date);
      expect(t.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    }
    // The self-sent confirmation carries the correlation id of the create that caused it.
    expect(state.history[1]?.correlationId).toBe(state.history[0]?.correlationId);
  });

  it('reject path records the reviewer and the reason', async () => {
    const state = await (await reach.REJECTED!()).ask('get');
    expect(state.status).toBe('REJECTED');
    expect(state.reason).toBe('off-brand');
    expect(state.history.at(-1)).toMatchObject({ from: 'WAITING_REVIEW', to: 'REJECTED', message: 'review', actor: 'bob' });
  });

  it('cancel path from WAITING_REVIEW', async () => {
    const state = await (await reach.CANCELLED!()).ask('get');
    expect(state.history.at(-1)).toMatchObject({ from: 'WAITING_REVIEW', to: 'CANCELLED', message: 'cancel' });
  });

  for (const [status, accepts] of Object.entries(ACCEPTS) as [CampaignStatus, string[]][]) {
    const refused = Object.keys(MESSAGES).filter((m) => !accepts.includes(m));
    if (reach[status] === undefined) continue;
    it(`${status} refuses ${refused.join(', ') || 'nothing'} with a typed error and changes nothing`, async () => {
      const ref = await reach[status]!();
      const before = await ref.ask('get');
      for (const message of refused) {
        const error = await MESSAGES[message]!(ref).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidMessageForStateError);
        expect(error).toMatchObject({ code: 'INVALID_MESSAGE_FOR_STATE', state: status, messageName: message });
        expect((error as Error).message).toContain(status);
        expect((error as Error).message).toContain(message);
      }
      expect(await ref.ask('get')).toEqual(before);
    });
  }

  it('refuses invalid input without changing state', async () => {
    const ref = fresh();
    await expect(ref.ask('create', { name: ' ', budget: 10, actor: 'a' })).rejects.toMatchObject({ name: 'TypeError' });
    await expect(ref.ask('create', { name: 'x', budget: -1, actor: 'a' })).rejects.toMatchObject({ name: 'TypeError' });
    expect((await ref.ask('get')).status).toBe('EMPTY');
  });
});

describe('Campaign in PENDING', () => {
  it('accepts cancel and refuses review and create, before its own confirmation arrives', async () => {
    // With no silo running, messages queue in order; the confirmation `create` sends itself
    // lands behind them, so the campaign is PENDING when they run.
    const keyPrefix = freshPrefix('pending');
    const first = await Silo.start({ redis: inject('redisUrl'), grains: [Campaign, ReviewQueue], keyPrefix, logLevel: 'silent' });
    await first.stop();
    const client = await connect({ redis: inject('redisUrl'), keyPrefix });
    const ref = client.getGrain(Campaign, 'p1');
    await ref.send('create', { name: 'Launch', budget: 5, actor: 'alice' });
    await ref.send('review', { approved: true, reviewer: 'bob' });
    await ref.send('create', { name: 'Again', budget: 5, actor: 'alice' });
    await ref.send('cancel', { actor: 'alice', reason: 'changed plans' });
    const log = new LogRecorder();
    const silo = await Silo.start({ redis: inject('redisUrl'), grains: [Campaign, ReviewQueue], keyPrefix, logger: log });
    try {
      const state = await waitFor('the queued messages and the confirmation to run', async () => {
        const s = await ref.ask('get');
        return s.status === 'CANCELLED' ? s : undefined;
      });
      expect(state.name).toBe('Launch');
      expect(state.history.map((t) => [t.from, t.to, t.message])).toEqual([
        ['EMPTY', 'PENDING', 'create'],
        ['PENDING', 'CANCELLED', 'cancel'],
      ]);
      // The late confirmation is refused too: CANCELLED is terminal.
      await expect(ref.ask('created')).rejects.toMatchObject({ state: 'CANCELLED', messageName: 'created' });
    } finally {
      await client.close();
      await silo.stop();
    }
    // The refused review and create were sent, not asked: an operator sees them in the log.
    expect(log.problems().map((e) => [e.message, e.fields.method])).toEqual([
      ['handler failed', 'review'],
      ['handler failed', 'create'],
      ['handler failed', 'created'],
    ]);
  });
});

describe('Campaign review deadline', () => {
  it('cancels a campaign left waiting past its deadline, though it was deactivated and every silo restarted', async () => {
    const keyPrefix = freshPrefix('deadline');
    const start = () => Silo.start({ redis: inject('redisUrl'), grains: [Campaign, ReviewQueue], keyPrefix, logLevel: 'warn' });
    let silo = await start();
    const client = await connect({ redis: inject('redisUrl'), keyPrefix });
    const inspector = await ClusterInspector.open({ redis: inject('redisUrl'), keyPrefix });
    try {
      const ignored = client.getGrain(Campaign, 'ignored');
      const reviewed = client.getGrain(Campaign, 'reviewed');
      await ignored.ask('create', { name: 'Ignored', budget: 5, actor: 'alice', reviewDeadlineMs: 1_500 });
      // Its deadline is far off: it is reviewed first, so its reminder leaves by being forgotten (with
      // 1.5 s, a loaded machine could see it fire before the list below was read).
      await reviewed.ask('create', { name: 'Reviewed', budget: 5, actor: 'alice', reviewDeadlineMs: 60_000 });
      await waitFor('both to wait for review', async () =>
        (await ignored.ask('get')).status === 'WAITING_REVIEW' && (await reviewed.ask('get')).status === 'WAITING_REVIEW'
          ? true
          : undefined,
      );
      expect((await inspector.grain('Campaign', 'reviewed')).reminders).toEqual([
        { name: 'review-deadline', method: 'reviewDeadlinePassed', schedule: { after: 60_000 } },
      ]);
      await reviewed.ask('review', { approved: true, reviewer: 'bob' });
      // Every silo stops (the campaigns are deactivated), and a new one starts while they wait.
      await silo.stop();
      silo = await start();
      const persisted = async (key: string) => (await inspector.grain('Campaign', key)).state;
      const state = await waitFor('the deadline to cancel the ignored campaign', async () => {
        const s = await persisted('ignored');
        return s.status === 'CANCELLED' ? s : undefined;
      });
      const history = state.history as { from: string; to: string; message: string; actor: string }[];
      expect(history.at(-1)).toMatchObject({ from: 'WAITING_REVIEW', to: 'CANCELLED', message: 'reviewDeadlinePassed', actor: 'system' });
      expect(state.reason).toBe('review deadline passed (1500 ms without a review)');
      // The reviewed campaign's deadline was forgotten; the fired one-shot is gone too.
      expect((await inspector.grain('Campaign', 'reviewed')).reminders).toEqual([]);
      expect((await inspector.grain('Campaign', 'ignored')).reminders).toEqual([]);
      expect((await reviewed.ask('get')).status).toBe('APPROVED');
      expect(await client.getGrain(ReviewQueue, 'main').ask('list')).toEqual([]);
    } finally {
      await inspector.close();
      await client.close();
      await silo.stop();
    }
  });
});
