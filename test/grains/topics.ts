import { Grain, type ImplicitSubscription } from 'redgrain';

/** Subscribes itself to patterns and records what it receives. */
export class Follower extends Grain<{ received: { topic: string; data: unknown }[] }> {
  static readonly type = 'Follower';
  initialState() {
    return { received: [] as { topic: string; data: unknown }[] };
  }
  async follow(pattern: string) {
    await this.subscribe(pattern, 'receive');
  }
  async unfollow(pattern: string) {
    return this.unsubscribe(pattern);
  }
  async following() {
    return this.subscriptions();
  }
  async receive(topic: string, data: unknown) {
    this.state.received.push({ topic, data });
  }
  async read() {
    return this.state.received;
  }
}

/** Every order's status topic reaches the grain keyed by the order id, without subscribing. */
export class OrderTracker extends Grain<{ statuses: string[] }> {
  static readonly type = 'OrderTracker';
  static readonly implicitSubscriptions: readonly ImplicitSubscription[] = [{ pattern: 'order.?.status', key: 1, method: 'onStatus' }];
  initialState() {
    return { statuses: [] as string[] };
  }
  async onStatus(_topic: string, status: { value: string }) {
    this.state.statuses.push(status.value);
  }
  async read() {
    return this.state.statuses;
  }
  /** Re-publishes a status on the shop-wide topic, from inside a handler. */
  async announce(status: string) {
    return this.publish(`shop.${this.key}.announced`, { value: status });
  }
}
