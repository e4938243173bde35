import { Grain, idleSaga, replyToSaga, SagaGrain, sagaStep, type SagaRequest, type SagaState } from 'redgrain';

export interface Order {
  id: string;
  sku: string;
  qty: number;
  customer: string;
}

/** Stock of one product (keyed by SKU): reservations are undone by `release`. */
export class Inventory extends Grain<{ stock: number; reserved: Record<string, number>; reservations: number; releases: number }> {
  static readonly type = 'Inventory';

  initialState() {
    return { stock: 10, reserved: {}, reservations: 0, releases: 0 };
  }

  async reserve(orderId: string, qty: number, request: SagaRequest) {
    if (this.state.reserved[orderId] !== undefined) return replyToSaga(this, request, { ok: true });
    if (qty > this.state.stock) return replyToSaga(this, request, { ok: false, reason: `out of stock (${this.state.stock} left)` });
    this.state.stock -= qty;
    this.state.reserved[orderId] = qty;
    this.state.reservations += 1;
    return replyToSaga(this, request, { ok: true });
  }

  async release(orderId: string, request: SagaRequest) {
    const qty = this.state.reserved[orderId];
    if (qty !== undefined) {
      this.state.stock += qty;
      delete this.state.reserved[orderId];
      this.state.releases += 1;
    }
    return replyToSaga(this, request, { ok: true });
  }

  async get() {
    return this.state;
  }
}

/** Prices (one grain for the catalogue): a quote has nothing to undo. */
export class Pricing extends Grain<{ quotes: number }> {
  static readonly type = 'Pricing';

  initialState() {
    return { quotes: 0 };
  }

  async quote(sku: string, qty: number, request: SagaRequest) {
    this.state.quotes += 1;
    return replyToSaga(this, request, { ok: true, value: qty * (sku.length * 100) });
  }

  async get() {
    return this.state;
  }
}

/** A customer's card (keyed by customer): charges above the limit are declined; `refund` undoes one. */
export class Payments extends Grain<{ charged: Record<string, number>; charges: number; refunds: number }> {
  static readonly type = 'Payments';
  static readonly LIMIT = 1_000;

  initialState() {
    return { charged: {}, charges: 0, refunds: 0 };
  }

  async charge(orderId: string, amount: number, request: SagaRequest) {
    if (amount > Payments.LIMIT)
      return replyToSaga(this, request, { ok: false, reason: `card declined (${amount} over ${Payments.LIMIT})` });
    this.state.charged[orderId] = amount;
    this.state.charges += 1;
    return replyToSaga(this, request, { ok: true });
  }

  async refund(orderId: string, request: SagaRequest) {
    if (this.state.charged[orderId] !== undefined) {
      delete this.state.charged[orderId];
      this.state.refunds += 1;
    }
    return replyToSaga(this, request, { ok: true });
  }

  async get() {
    return this.state;
  }
}

export interface OrderSagaState extends SagaState {
  order?: Order;
  /** What happened, in order, for people to read. */
  path: string[];
}

/**
 * One order as a saga: reserve the stock, quote the price and charge the card at once; when all
 * three are done the order is complete, when one fails the others are undone in reverse order.
 */
export class OrderSaga extends SagaGrain<OrderSagaState> {
  static readonly type = 'OrderSaga';

  initialState(): OrderSagaState {
    return { saga: idleSaga(), path: [] };
  }

  async place(order: Order, timeoutMs = 30_000) {
    this.state.order = order;
    this.state.path.push('placed');
    const amount = order.qty * (order.sku.length * 100);
    await this.startSaga(
      [
        sagaStep('reserve', this.getGrain(Inventory, order.sku), 'reserve', [order.id, order.qty], { method: 'release', args: [order.id] }),
        sagaStep('quote', this.getGrain(Pricing, 'catalogue'), 'quote', [order.sku, order.qty]),
        sagaStep('charge', this.getGrain(Payments, order.customer), 'charge', [order.id, amount], { method: 'refund', args: [order.id] }),
      ],
      { mode: 'parallel', timeoutMs },
    );
  }

  override async sagaReplied(...args: Parameters<SagaGrain<OrderSagaState>['sagaReplied']>) {
    const [step, phase, outcome] = args;
    this.state.path.push(
      `${phase === 'undo' ? 'undone' : outcome.ok ? 'done' : 'failed'} ${step}${outcome.ok ? '' : `: ${outcome.reason}`}`,
    );
    await super.sagaReplied(...args);
  }

  protected override async sagaCompleted() {
    this.state.path.push('completed');
  }

  protected override async sagaCompensated() {
    this.state.path.push(`compensated (${this.state.saga.failure ?? 'failed'})`);
  }

  async get() {
    return this.state;
  }
}
