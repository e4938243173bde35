import type { GrainId } from '../grain/grain-id.ts';
import type { MessageEnvelope } from '../messaging/envelope.ts';
import { packBytes } from '../messaging/message-pack.ts';

/** How big a pack may grow: messages, and bytes of their arguments (see `packBytes`). */
export interface PackLimits {
  messages: number;
  bytes: number;
}

/** A pack on its way: `added` once it is in the grain's mailbox (the next may go), `done` once the whole send is (the grain woken, replicas waited for). */
export interface PackSending {
  added: Promise<void>;
  done: Promise<void>;
}

/** One call's messages (one, or a group that must stay together, in order), waiting for a pack. */
interface Waiting {
  envelopes: readonly MessageEnvelope[];
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Packs what one sender has for one grain at the same moment: the first message to a grain goes
 * at once; the messages sent to it while that enqueue is in flight wait for it, then go together
 * as one pack (up to the limits; the rest in the next). A pack never waits for more messages to
 * arrive, so an unloaded call pays nothing, and packs to one grain go one after another, so the
 * messages keep the order they were sent in. A pack whose enqueue failed takes those waiting
 * behind it down with it, unsent.
 */
export class MessagePacker {
  /** The calls waiting per grain (by tag); a grain is here while a pack to it is in flight. */
  readonly #lanes = new Map<string, Waiting[]>();

  constructor(
    private readonly limits: PackLimits,
    private readonly send: (grain: GrainId, envelopes: readonly MessageEnvelope[]) => PackSending,
  ) {}

  /** Sends `envelopes` to `grain` in the next pack; resolves once that pack's send is done. */
  add(grain: GrainId, envelopes: readonly MessageEnvelope[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiting: Waiting = { envelopes, bytes: envelopes.reduce((sum, e) => sum + packBytes(e), 0), resolve, reject };
      const lane = this.#lanes.get(grain.tag);
      if (lane !== undefined) {
        lane.push(waiting);
        return;
      }
      this.#lanes.set(grain.tag, [waiting]);
      void this.#pump(grain);
    });
  }

  async #pump(grain: GrainId): Promise<void> {
    const lane = this.#lanes.get(grain.tag) as Waiting[];
    while (lane.length > 0) {
      const group = this.#nextPack(lane);
      let sending: PackSending;
      try {
        sending = this.send(
          grain,
          group.flatMap((waiting) => waiting.envelopes),
        );
      } catch (error) {
        // Nothing was sent: neither is what waits behind it (it would overtake this pack).
        for (const waiting of group) waiting.reject(new NotSentBehindError(error));
        for (const waiting of lane.splice(0)) waiting.reject(new NotSentBehindError(error));
        continue;
      }
      sending.done.then(
        () => {
          for (const waiting of group) waiting.resolve();
        },
        (error: unknown) => {
          for (const waiting of group) waiting.reject(error);
        },
      );
      // The next pack goes once this one is in the mailbox, so packs arrive in order. When it
      // could not be enqueued (or may not have been), what waits behind it is not sent at all:
      // no message overtakes one that may be missing.
      const failure = await sending.added.then(
        () => undefined,
        (error: unknown) => ({ error }),
      );
      if (failure !== undefined) for (const waiting of lane.splice(0)) waiting.reject(new NotSentBehindError(failure.error));
    }
    this.#lanes.delete(grain.tag);
  }

  /** Takes the calls of the next pack off the lane: the first, and those behind it that fit. */
  #nextPack(lane: Waiting[]): Waiting[] {
    let count = 0;
    let bytes = 0;
    let taken = 0;
    for (const waiting of lane) {
      const fits = count + waiting.envelopes.length <= this.limits.messages && bytes + waiting.bytes <= this.limits.bytes;
      if (taken > 0 && !fits) break;
      count += waiting.envelopes.length;
      bytes += waiting.bytes;
      taken += 1;
    }
    return lane.splice(0, taken);
  }
}

/**
 * A message that was not sent because the enqueue of an earlier message to the same grain, from
 * the same sender, failed: sending it would have let it overtake a message that may be missing.
 */
export class NotSentBehindError extends Error {
  constructor(readonly earlier: unknown) {
    super(
      `not sent: the enqueue of an earlier message to the same grain failed (${earlier instanceof Error ? earlier.message : String(earlier)})`,
      {
        cause: earlier,
      },
    );
    this.name = 'NotSentBehindError';
  }
}
