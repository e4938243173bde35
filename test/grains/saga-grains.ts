import { Grain, idleSaga, replyToSaga, SagaGrain, sagaStep, type SagaRequest, type SagaState } from 'redgrain';

/** A participant that answers `quick` at once and `work` only when told to (`answer`). */
export class Stall extends Grain<{ pending: SagaRequest[]; did: number; undid: number }> {
  static readonly type = 'Stall';

  initialState() {
    return { pending: [], did: 0, undid: 0 };
  }

  async quick(request: SagaRequest) {
    this.state.did += 1;
    await replyToSaga(this, request, { ok: true });
  }

  async work(request: SagaRequest) {
    this.state.did += 1;
    this.state.pending.push(request);
  }

  async answer() {
    for (const request of this.state.pending) await replyToSaga(this, request, { ok: true });
    this.state.pending = [];
  }

  async undo(request: SagaRequest) {
    this.state.undid += 1;
    await replyToSaga(this, request, { ok: true });
  }

  async get() {
    return this.state;
  }
}

/** Two steps, one of which stalls: for timeouts. */
export class StallSaga extends SagaGrain<SagaState & { ends: string[] }> {
  static readonly type = 'StallSaga';

  initialState() {
    return { saga: idleSaga(), ends: [] };
  }

  async start(timeoutMs: number) {
    await this.startSaga(
      [
        sagaStep('quick', this.getGrain(Stall, `${this.key}-quick`), 'quick', [], { method: 'undo', args: [] }),
        sagaStep('slow', this.getGrain(Stall, `${this.key}-slow`), 'work', [], { method: 'undo', args: [] }),
      ],
      { timeoutMs },
    );
  }

  protected override async sagaCompleted() {
    this.state.ends.push('completed');
  }

  protected override async sagaCompensated() {
    this.state.ends.push('compensated');
  }

  async get() {
    return this.state;
  }
}
