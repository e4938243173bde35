import type { CarriedMessage } from '../directory/wake-entry.ts';
import type { MailboxMessage, Taken } from '../mailbox/grain-mailbox.ts';
import type { Activation } from './activation.ts';
import type { TurnRunner } from './turn-runner.ts';

/**
 * An activation's message loop: takes the grain's messages from its mailbox in batches and has
 * the turn runner run them, in order, until none is left; runs due timer ticks between batches;
 * and, before taking anything, puts back at the head of the mailbox whatever other activations
 * left taken (a crash, a step-down, a stale activation), so order holds across failures.
 */
export class MessageLoop {
  #draining: Promise<void> | undefined;
  /** A wake-up came while draining: look at the mailbox again before stopping. */
  #wakeAgain = false;
  /**
   * Messages another activation left taken must go back to the head of the mailbox before this
   * one processes any: set when a take finds such a message (a new activation learns it from its
   * first take, which reads the taken list anyway), and by a recover wake-up from a fenced one.
   */
  #recoverFirst = false;
  #recoveryRetry: NodeJS.Timeout | undefined;
  /** Messages waiting when this activation last took: the size of its next take. */
  #waiting = 0;
  /**
   * Messages to take one at a time: those just put back after a crash. Recovery charges the crash
   * to none of them but a lone interrupted message (see recoverTaken-2.lua), so each must run
   * alone: a poison message among them then crashes alone and is counted, and its batch-mates are
   * not.
   */
  #singleTakes = 0;
  /**
   * Messages this activation took and let go of itself, unstarted, because another activation held
   * some too (`#unlessForeignTaken`): they sit among the taken ones until recovery, and are not
   * part of the batch a crash interrupted.
   */
  #ownReleased = 0;

  constructor(
    private readonly activation: Activation,
    private readonly runner: TurnRunner,
  ) {}

  /** Messages that were still waiting after the last take (free: no Redis read). */
  get waitingHint(): number {
    return this.#waiting;
  }

  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /** Resolves once the drain in progress (if any) has ended. */
  async settled(): Promise<void> {
    await this.#draining;
  }

  /**
   * There may be messages: drain the mailbox unless already draining. `carried`: the message the
   * wake-up carried; when it is certainly the next one to take (see `#claimable`), it runs at once
   * while its take is under way, which saves waiting for the take's round trip.
   */
  wake(recover = false, carried?: CarriedMessage): void {
    if (recover) this.#recoverFirst = true;
    if (this.activation.status !== 'valid') return;
    if (this.#draining !== undefined) {
      this.#wakeAgain = true;
      return;
    }
    const claim = carried === undefined ? undefined : this.#claimable(carried);
    this.#draining = this.#drain(claim)
      .catch((error: unknown) => {
        // Redis failed under us (an outage, a lost reply): whatever this activation held is
        // released when it activates again, so drop it and have the silo retry the grain.
        this.activation.stepDown('mailbox failed', error);
        this.activation.host.retryLater(this.activation.id);
      })
      .finally(() => {
        this.#draining = undefined;
        this.activation.lastActiveAt = Date.now();
      });
  }

  /** A timer fired: run its tick now unless the drain in progress will (between its turns). */
  tickDue(): void {
    if (this.activation.status !== 'valid' || this.#draining !== undefined) return;
    this.#draining = this.#runTicks([])
      .catch((error: unknown) => {
        this.activation.stepDown('timer commit failed', error);
        this.activation.host.retryLater(this.activation.id);
      })
      .finally(() => {
        this.#draining = undefined;
        if (this.#wakeAgain) this.wake();
      });
  }

  /** Stops retrying a recovery (the activation ends). */
  stop(): void {
    clearTimeout(this.#recoveryRetry);
  }

  /** Runs the timer ticks that are due, each as a turn; `held` are messages taken and waiting. */
  async #runTicks(held: readonly MailboxMessage[]): Promise<void> {
    const due = () => this.activation.timers?.takeDue();
    for (let tick = due(); tick !== undefined; tick = due()) {
      if (this.activation.status !== 'valid') return;
      await this.runner.runTick(tick, held);
    }
  }

  /**
   * The carried message, ready to run before it is taken, when it is certainly the next message
   * this activation takes:
   * - it was enqueued while this activation owned the grain (its epoch), as the mailbox's only
   *   message, nothing taken (wakeOwner-3.lua), so nothing older can be ahead of it;
   * - this activation has not taken it yet (job ids grow in the order a mailbox is taken) and is
   *   idle, with nothing to recover or run first (a timer tick, a message to take alone);
   * - the grain is not event-sourced (undoing its turn would have to undo the events it recorded),
   *   and its mailbox is not bounded (a sender that drops the oldest message could drop it).
   *   Messages to a bounded mailbox carry no wake-up anyway, except from a sender that does not
   *   know the class.
   * Should another message be ahead of it after all, its commit writes nothing, the turn is
   * undone, and the message that is ahead runs (see `TurnRunner.runBatch`).
   */
  #claimable(carried: CarriedMessage): MailboxMessage | undefined {
    const { activation } = this;
    const certain =
      carried.epoch === activation.epoch &&
      Number(carried.jobId) > activation.mailbox.highestTaken &&
      this.#waiting === 0 &&
      !this.#recoverFirst &&
      this.#singleTakes === 0 &&
      this.#ownReleased === 0 &&
      !(activation.timers?.hasDue ?? false) &&
      activation.journal === undefined &&
      activation.type.cls.mailbox === undefined;
    return certain ? activation.mailbox.claimable(carried) : undefined;
  }

  async #drain(claim?: MailboxMessage): Promise<void> {
    const activation = this.activation;
    const hooks = {
      takeCount: () => this.#takeCount(),
      ran: () => {
        if (this.#singleTakes > 0) this.#singleTakes -= 1;
      },
      takeAlone: () => {
        this.#singleTakes = Math.max(1, this.#singleTakes);
        this.#wakeAgain = true;
      },
      takenAfterRecovery: () => this.#singleTakes > 0,
      lookAgain: () => {
        this.#wakeAgain = true;
      },
    };
    do {
      this.#wakeAgain = false;
      await this.#runTicks([]);
      // Something to put back first came up meanwhile: the carried message waits for its turn.
      if (this.#recoverFirst) claim = undefined;
      if (this.#recoverFirst && !(await this.#recover())) return;
      let batch: MailboxMessage[];
      if (claim !== undefined && activation.status === 'valid') {
        // Its take goes out now and the turn runs meanwhile: the commit follows the take.
        const taking = activation.mailbox.takeClaimed(claim);
        taking.catch(() => undefined);
        const next = await this.runner.runBatch([claim], hooks, taking);
        batch = next === undefined ? [] : await this.#unlessForeignTaken(next);
      } else {
        const count = this.#takeCount();
        batch = count === 0 ? [] : await this.#unlessForeignTaken(await activation.mailbox.take(count));
      }
      claim = undefined;
      while (batch.length > 0 && activation.status !== 'invalid') {
        const next = await this.runner.runBatch(batch, hooks);
        batch = next === undefined ? [] : await this.#unlessForeignTaken(next);
        if (batch.length > 0 && (activation.timers?.hasDue ?? false)) await this.#runTicks(batch);
      }
    } while ((this.#wakeAgain || this.#recoverFirst || (activation.timers?.hasDue ?? false)) && activation.status === 'valid');
  }

  /**
   * How many messages to take next: as many as were waiting at the last take (they are certainly
   * there), at least one, at most `turnBatchSize`; one at a time after a crash; none once stopping.
   */
  #takeCount(): number {
    if (this.activation.status !== 'valid') return 0;
    if (this.#singleTakes > 0) return 1;
    return Math.min(this.activation.host.turnBatchSize, Math.max(1, this.#waiting));
  }

  /**
   * When another activation holds a message too (a stale one, or one that let go of its own),
   * lets go of the taken messages and recovers first: recovery puts everything taken back in the
   * order it was taken, so order holds. Otherwise returns them to be processed.
   */
  async #unlessForeignTaken(taken: Taken): Promise<MailboxMessage[]> {
    this.#waiting = taken.waiting;
    if (!taken.foreignTaken) return taken.messages;
    // Normal after a takeover (what the previous activation held), rare otherwise (a stale one
    // still taking): either way recovery puts all of it back in order.
    this.activation.host.log.debug('messages taken by another activation; recovering them first', {
      grain: this.activation.id.toString(),
    });
    if (taken.messages.length > 0) {
      await this.activation.mailbox.release(taken.messages);
      this.#ownReleased += taken.messages.length;
    }
    this.#recoverFirst = true;
    return [];
  }

  /**
   * Takes back messages left taken by activations that will never finish them. Runs inside the
   * drain, so no later message is taken meanwhile. Returns false while one is still under a live
   * lock (its holder may yet acknowledge it): then nothing is taken, and recovery is tried again.
   */
  async #recover(): Promise<boolean> {
    const { mailbox, host } = this.activation;
    const { moved, locked } = await mailbox.recoverTaken((token) => host.isStaleLock(token), this.#ownReleased);
    if (locked === 0) {
      this.#ownReleased = 0;
      this.#recoverFirst = false;
      this.#singleTakes = Math.max(this.#singleTakes, moved);
      return true;
    }
    clearTimeout(this.#recoveryRetry);
    this.#recoveryRetry = setTimeout(() => this.wake(), Math.min(1_000, host.lockDurationMs)).unref();
    return false;
  }
}
