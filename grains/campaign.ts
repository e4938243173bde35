import { Grain, InvalidMessageForStateError } from 'redgrain';
import { ReviewQueue } from './review-queue.ts';

/** The review queue every campaign reports to. */
export const REVIEW_QUEUE = 'main';

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

  /** EMPTY -> PENDING; the campaign then confirms its own creation (PENDING -> WAITING_REVIEW). */
  async create(input: { name: string; budget: number; actor: string }) {
    if (input.name.trim() === '') throw new TypeError('A campaign needs a name');
    if (!Number.isFinite(input.budget) || input.budget <= 0) throw new TypeError('A campaign budget must be positive');
    this.#move('create', input.actor);
    this.state.name = input.name;
    this.state.budget = input.budget;
    await this.getGrain(Campaign, this.key).send('created');
    return this.state.status;
  }

  /** PENDING -> WAITING_REVIEW, sent by the campaign itself once it is set up. */
  async created() {
    this.#move('created', 'system');
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('submit', { campaign: this.key, name: this.state.name ?? this.key });
    return this.state.status;
  }

  /** The review verdict: WAITING_REVIEW -> APPROVED or REJECTED. */
  async review(verdict: { approved: boolean; reviewer: string; comment?: string }) {
    this.#move(verdict.approved ? 'approve' : 'reject', verdict.reviewer, 'review');
    if (verdict.comment !== undefined) this.state.reason = verdict.comment;
    await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
    return this.state.status;
  }

  /** PENDING or WAITING_REVIEW -> CANCELLED. */
  async cancel(request: { actor: string; reason: string }) {
    const from = this.state.status;
    this.#move('cancel', request.actor);
    this.state.reason = request.reason;
    if (from === 'WAITING_REVIEW') await this.getGrain(ReviewQueue, REVIEW_QUEUE).send('leave', this.key);
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
