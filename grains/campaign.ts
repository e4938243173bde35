import { Grain, InvalidMessageForStateError } from 'redgrain';
import { ReviewQueue } from './review-queue.ts';

/** The review queue every campaign reports to. */
export const REVIEW_QUEUE = 'main';

/** How long a campaign waits for review before it cancels itself, unless `create` says otherwise. */
export const DEFAULT_REVIEW_DEADLINE_MS = 7 * 24 * 3_600_000;

/** The name of the durable reminder that enforces the review deadline. */
const DEADLINE_REMINDER = 'review-deadline';

/** Where a campaign is in its life. APPROVED, REJECTED and CANCELLED are terminal. */
export type CampaignStatus = 'EMPTY' | 'PENDING' | 'WAITING_REVIEW' | 'APPROVED' | 'REJECTED' | 'CANCELLED';

export interface CampaignTransition {
  from: CampaignStatus;
  to: CampaignStatus;
  message: string;
  actor: string;
  correlationId: string;
  /** OpenTelemetry trace id of the message (empty when tracing is off). */
  traceId: string;
  at: Date;
}

export interface CampaignState {
  status: CampaignStatus;
  name?: string;
  budget?: number;
  reason?: string;
  /** How long the campaign may wait for review (ms). */
  reviewDeadlineMs?: number;
  history: CampaignTransition[];
}

/** Which message moves a campaign from which status to which. Anything else is refused. */
const TRANSITIONS: Record<string, Partial<Record<CampaignStatus, CampaignStatus>>> = {
  create: { EMPTY: 'PENDING' },
  created: { PENDING: 'WAITING_REVIEW' },
  approve: { WAITING_REVIEW: 'APPROVED' },
  reject: { WAITING_REVIEW: 'REJECTED' },
  cancel: { PENDING: 'CANCELLED', WAITING_REVIEW: 'CANCELLED' },
};

/**
 * The flagship example: a campaign's review workflow as a state machine. Every accepted message
 * records its transition; a message the current status does not accept is refused with an
 * InvalidMessageForStateError and changes nothing.
 */
export class Campaign extends Grain<CampaignState> {
  static readonly type = 'Campaign';

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
    this.#move('create', input.actor);
    this.state.name = input.name;
    this.state.budget = input.budget;
    this.state.reviewDeadlineMs = deadline;
    await this.getGrain(Campaign, this.key).send('created');
    return this.state.status;
  }

  /** PENDING -> WAITING_REVIEW, sent by the campaign itself once it is set up. */
  async created() {
    this.#move('created', 'system');
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('submit', { campaign: this.key, name: this.state.name ?? this.key });
    // Durable: it fires even if no silo has this campaign active then, or every silo restarted.
    await this.remind(DEADLINE_REMINDER, { after: this.state.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS }, 'reviewDeadlinePassed');
    return this.state.status;
  }

  /**
   * The review deadline's reminder: WAITING_REVIEW -> CANCELLED, by the system, with the reason
   * recorded. A campaign reviewed (or cancelled) meanwhile ignores it.
   */
  async reviewDeadlinePassed() {
    if (this.state.status !== 'WAITING_REVIEW') return this.state.status;
    this.#move('cancel', 'system', 'reviewDeadlinePassed');
    this.state.reason = `review deadline passed (${this.state.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS} ms without a review)`;
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    return this.state.status;
  }

  /** The review verdict: WAITING_REVIEW -> APPROVED or REJECTED. */
  async review(verdict: { approved: boolean; reviewer: string; comment?: string }) {
    this.#move(verdict.approved ? 'approve' : 'reject', verdict.reviewer, 'review');
    if (verdict.comment !== undefined) this.state.reason = verdict.comment;
    await this.forget(DEADLINE_REMINDER);
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    return this.state.status;
  }

  /** PENDING or WAITING_REVIEW -> CANCELLED. */
  async cancel(request: { actor: string; reason: string }) {
    const from = this.state.status;
    this.#move('cancel', request.actor);
    this.state.reason = request.reason;
    if (from === 'WAITING_REVIEW') {
      await this.forget(DEADLINE_REMINDER);
      await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    }
    return this.state.status;
  }

  async get(): Promise<CampaignState> {
    return this.state;
  }

  #move(transition: string, actor: string, message = transition): void {
    const from = this.state.status;
    const to = TRANSITIONS[transition]?.[from];
    if (to === undefined) throw new InvalidMessageForStateError(Campaign.type, from, message);
    this.state.status = to;
    this.state.history.push({ from, to, message, actor, correlationId: this.correlationId, traceId: this.traceId, at: new Date() });
  }
}
