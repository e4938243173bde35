import { stateMachine, StateMachineGrain, type MachineState, type Transition } from 'redgrain';
import { ReviewQueue } from './review-queue.ts';

/** The review queue every campaign reports to. */
export const REVIEW_QUEUE = 'main';

/** How long a campaign waits for review before it cancels itself, unless `create` says otherwise. */
export const DEFAULT_REVIEW_DEADLINE_MS = 7 * 24 * 3_600_000;

/** The name of the durable reminder that enforces the review deadline. */
const DEADLINE_REMINDER = 'review-deadline';

/** Where a campaign is in its life. APPROVED, REJECTED and CANCELLED are terminal. */
export type CampaignStatus = 'EMPTY' | 'PENDING' | 'WAITING_REVIEW' | 'APPROVED' | 'REJECTED' | 'CANCELLED';

/** One recorded transition of a campaign (kept by the runtime in `history`). */
export type CampaignTransition = Transition<CampaignStatus>;

export interface CampaignState extends MachineState<CampaignStatus> {
  name?: string;
  budget?: number;
  reason?: string;
  /** How long the campaign may wait for review (ms). */
  reviewDeadlineMs?: number;
}

/**
 * The flagship example: a campaign's review workflow as a state machine. The runtime refuses a
 * message the current status does not accept (InvalidMessageForStateError, nothing changed) and
 * records every transition it makes; the handlers only do the work of each step.
 */
export class Campaign extends StateMachineGrain<CampaignState> {
  static readonly type = 'Campaign';
  static readonly machine = stateMachine<Campaign>()({
    initial: 'EMPTY',
    states: {
      EMPTY: { create: 'PENDING' },
      PENDING: { created: 'WAITING_REVIEW', cancel: 'CANCELLED' },
      WAITING_REVIEW: { review: ['APPROVED', 'REJECTED'], cancel: 'CANCELLED', reviewDeadlinePassed: 'CANCELLED' },
      APPROVED: {},
      REJECTED: {},
      CANCELLED: {},
    },
    terminal: ['APPROVED', 'REJECTED', 'CANCELLED'],
  });

  initialState(): CampaignState {
    return { status: 'EMPTY', history: [] };
  }

  /**
   * EMPTY -> PENDING; the campaign then confirms its own creation (PENDING -> WAITING_REVIEW).
   * `reviewDeadlineMs` (default 7 days) bounds how long it may then wait for a review.
   */
  async create(input: { name: string; budget: number; actor: string; reviewDeadlineMs?: number }) {
    if (input.name.trim() === '') throw new TypeError('A campaign needs a name');
    if (!Number.isFinite(input.budget) || input.budget <= 0) throw new TypeError('A campaign budget must be positive');
    const deadline = input.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS;
    if (!Number.isFinite(deadline) || deadline <= 0) throw new TypeError('A review deadline must be a positive number of ms');
    this.actedBy(input.actor);
    this.state.name = input.name;
    this.state.budget = input.budget;
    this.state.reviewDeadlineMs = deadline;
    await this.getGrain(Campaign, this.key).send('created');
    return 'PENDING' as const;
  }

  /** PENDING -> WAITING_REVIEW, sent by the campaign itself once it is set up. */
  async created() {
    this.actedBy('system');
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('submit', { campaign: this.key, name: this.state.name ?? this.key });
    // Durable: it fires even if no silo has this campaign active then, or every silo restarted.
    await this.remind(DEADLINE_REMINDER, { after: this.state.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS }, 'reviewDeadlinePassed');
    return 'WAITING_REVIEW' as const;
  }

  /**
   * The review deadline's reminder: WAITING_REVIEW -> CANCELLED, by the system, with the reason
   * recorded. (Reviewing or cancelling forgets the reminder in the same turn.)
   */
  async reviewDeadlinePassed() {
    this.actedBy('system');
    this.state.reason = `review deadline passed (${this.state.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS} ms without a review)`;
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    return 'CANCELLED' as const;
  }

  /** The review verdict: WAITING_REVIEW -> APPROVED or REJECTED. */
  async review(verdict: { approved: boolean; reviewer: string; comment?: string }) {
    const to = verdict.approved ? 'APPROVED' : 'REJECTED';
    this.moveTo(to);
    this.actedBy(verdict.reviewer);
    if (verdict.comment !== undefined) this.state.reason = verdict.comment;
    await this.forget(DEADLINE_REMINDER);
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    return to;
  }

  /** PENDING or WAITING_REVIEW -> CANCELLED. */
  async cancel(request: { actor: string; reason: string }) {
    this.actedBy(request.actor);
    this.state.reason = request.reason;
    if (this.state.status === 'WAITING_REVIEW') {
      await this.forget(DEADLINE_REMINDER);
      await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    }
    return 'CANCELLED' as const;
  }

  async get(): Promise<CampaignState> {
    return this.state;
  }
}
