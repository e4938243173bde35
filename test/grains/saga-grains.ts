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

  /** A step that fails. */
  async refuse(request: SagaRequest) {
    await replyToSaga(this, request, { ok: false, reason: 'refused' });
  }

  /** A compensation that fails. */
  async cannotUndo(request: SagaRequest) {
    await replyToSaga(this, request, { ok: false, reason: 'cannot undo' });
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

/** Three steps in sequence; the third fails, and of the two to undo, the first's undo fails. */
export class BrittleSaga extends SagaGrain<SagaState & { ends: string[] }> {
  static readonly type = 'BrittleSaga';

  initialState() {
    return { saga: idleSaga(), ends: [] };
  }

  async start() {
    await this.startSaga(
      [
        sagaStep('a', this.getGrain(Stall, `${this.key}-a`), 'quick', [], { method: 'cannotUndo', args: [] }),
        sagaStep('b', this.getGrain(Stall, `${this.key}-b`), 'quick', [], { method: 'undo', args: [] }),
        sagaStep('c', this.getGrain(Stall, `${this.key}-c`), 'refuse', []),
      ],
      { mode: 'sequence' },
    );
  }

  protected override async sagaCompensated() {
    this.state.ends.push('compensated');
  }

  /** Starts with a mode an untyped caller may give. */
  async startIn(mode: string) {
    await this.startSaga([sagaStep('a', this.getGrain(Stall, `${this.key}-a`), 'quick', [])], { mode: mode as 'parallel' });
  }

  protected override async sagaCompensationFailed() {
    this.state.ends.push('compensationFailed');
  }

  async get() {
    return this.state;
  }
}
