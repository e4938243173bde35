import { Grain } from 'redgrain';

export interface ReviewItem {
  campaign: string;
  name: string;
  since: Date;
}

/**
 * The campaigns waiting for a reviewer. Campaigns tell it when they start waiting and when they
 * leave review, so each user action on a campaign reaches a second grain (and often a second silo).
 */
export class ReviewQueue extends Grain<{ waiting: Map<string, ReviewItem> }> {
  static readonly type = 'ReviewQueue';

  initialState() {
    return { waiting: new Map<string, ReviewItem>() };
  }

  async submit(item: { campaign: string; name: string }) {
    this.state.waiting.set(item.campaign, { ...item, since: new Date() });
    return this.state.waiting.size;
  }

  async leave(campaign: string) {
    this.state.waiting.delete(campaign);
    return this.state.waiting.size;
  }

  async list(): Promise<ReviewItem[]> {
    return [...this.state.waiting.values()];
  }
}
