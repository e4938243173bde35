/** A call's place in its grain's line (see `CallOrder`). */
export interface Place {
  /** Resolves once every earlier call to the same grain has issued its enqueue (or given up). */
  readonly turn: Promise<void>;
  /** Frees the place: the call has issued its enqueue, or will not. Safe to call more than once. */
  done(): void;
}

/**
 * Keeps the enqueues of one client's calls to one grain in the order the calls were made, without
 * making them wait for each other's round trips: a call takes its place synchronously when it is
 * made, and issues its enqueue once every earlier call to that grain has issued its own. Issued
 * in order on one connection, they reach the mailbox in order. (Without this, the awaits before
 * the enqueue — the reply subscription of an `ask`, a mailbox-bound check — let a later call
 * overtake an earlier one that was not awaited.)
 */
export class CallOrder {
  readonly #tails = new Map<string, Promise<void>>();

  place(grainTag: string): Place {
    const before = this.#tails.get(grainTag);
    let free!: () => void;
    const mine = new Promise<void>((resolve) => (free = resolve));
    this.#tails.set(grainTag, mine);
    let freed = false;
    const turn = before ?? Promise.resolve();
    return {
      turn,
      done: () => {
        if (freed) return;
        freed = true;
        // A call that gives up before its turn came hands its place on only once its turn comes:
        // the calls behind it must not overtake the calls before it either.
        void turn.then(() => {
          free();
          if (this.#tails.get(grainTag) === mine) this.#tails.delete(grainTag);
        });
      },
    };
  }
}
