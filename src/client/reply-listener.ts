import type { RedisClient } from '../redis/connection.ts';
import { listenTo, resubscribe } from '../redis/channels.ts';
import { ClosedError, RedisUnavailableError } from '../errors/errors.ts';
import { errorFromData, type ErrorClassRegistry } from '../errors/error-converter.ts';
import type { ReplyMessage } from '../messaging/envelope.ts';
import { deserialize } from '../messaging/serializer.ts';

interface PendingAsk {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Receives the replies to this client's `ask` calls on its own pub/sub channel and settles the
 * waiting promises. Opened on the first `ask`, so a client that only sends holds one connection.
 */
export class ReplyListener {
  readonly #pending = new Map<string, PendingAsk>();
  #ready: Promise<void> | undefined;
  /** Subscribed once: ioredis re-subscribes by itself after a reconnect. */
  #subscribed = false;
  #listening = false;
  #seq = 0;
  /** Rejects with ClosedError once the client closes: subscribing asks stop waiting then. */
  readonly #closed: Promise<never>;
  #close: ((error: Error) => void) | undefined;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    private readonly errorClasses: ErrorClassRegistry,
  ) {
    this.#closed = new Promise<never>((_, reject) => {
      this.#close = reject;
    });
    this.#closed.catch(() => undefined);
  }

  /**
   * Subscribes once; every ask waits for this before its message is enqueued. A subscription that
   * does not complete within `timeoutMs` (Redis down, or the command lost in a disconnect, which
   * ioredis then never settles) fails, and the next ask tries again.
   */
  async ready(timeoutMs: number): Promise<void> {
    if (this.#subscribed) return; // the common case: no timer, no race
    this.#ready ??= (async () => {
      if (!this.#listening) {
        this.#listening = true;
        await listenTo(this.subscriber, this.channel, (text) => this.#settle(text));
      } else {
        await resubscribe(this.subscriber, this.channel);
      }
      this.#subscribed = true;
    })();
    const subscribing = this.#ready;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        subscribing,
        this.#closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new RedisUnavailableError(`Could not subscribe to ask replies within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      if (this.#ready === subscribing) this.#ready = undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  nextRequestId(): string {
    this.#seq += 1;
    return this.#seq.toString(36);
  }

  /** Waits for the reply to `requestId`, or rejects with `onTimeout()` after `timeoutMs`. */
  expect(requestId: string, timeoutMs: number, onTimeout: () => Error): Promise<unknown> {
    const reply = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(onTimeout());
      }, timeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer });
    });
    // It may settle (a timeout, a close) while its caller is still awaiting something else: that
    // must never count as an unhandled rejection, which ends the process. The caller still sees it.
    reply.catch(() => undefined);
    return reply;
  }

  /** Forgets a request whose message could not be enqueued. */
  cancel(requestId: string): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#pending.delete(requestId);
  }

  close(): void {
    this.#close?.(new ClosedError('The client'));
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new ClosedError('The client'));
      this.#pending.delete(id);
    }
  }

  /** Settles the ask a reply is for. Anyone who can publish on the channel can send anything: check it. */
  #settle(text: string): void {
    let reply: ReplyMessage;
    try {
      reply = JSON.parse(text) as ReplyMessage;
    } catch {
      return;
    }
    if (typeof reply !== 'object' || reply === null || typeof reply.i !== 'string' || (reply.ok && typeof reply.v !== 'string')) return;
    const pending = this.#pending.get(reply.i);
    if (pending === undefined) return; // timed out already, or a duplicate after redelivery
    this.#pending.delete(reply.i);
    clearTimeout(pending.timer);
    if (reply.ok) {
      try {
        pending.resolve(reply.v === '' ? undefined : deserialize(reply.v));
      } catch (error) {
        pending.reject(error as Error);
      }
    } else {
      pending.reject(errorFromData(reply.e, this.errorClasses));
    }
  }
}
