import { callReadOnly } from '../catalog/read-only-call.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { describeError } from '../errors/errors.ts';
import { GrainId } from '../grain/grain-id.ts';
import type { ReplyMessage } from '../messaging/envelope.ts';
import type { RedisClient } from '../redis/connection.ts';
import { listenTo } from '../redis/channels.ts';
import type { Logger } from '../telemetry/logger.ts';
import { MAX_QUERY_BYTES, NOT_SERVED_CODE, parseQuery } from '../messaging/read-only-query.ts';

/**
 * Answers the read-only calls clients send straight to this silo (see `readOnly`): each runs on
 * the committed state of the grain's activation here, beside its turns; a grain this silo does not
 * hold answers "not served", and the caller falls back to the mailbox.
 */
export class ReadOnlyQueries {
  constructor(
    private readonly subscriber: RedisClient,
    private readonly channel: string,
    private readonly catalog: Catalog,
    private readonly reply: (clientId: string, reply: ReplyMessage) => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await listenTo(this.subscriber, this.channel, (text) => this.#answer(text));
  }

  /**
   * Stops answering. Dropping the connection ends its subscription in Redis; an UNSUBSCRIBE first
   * would wait, with no timeout, for a Redis that is gone.
   */
  async close(): Promise<void> {
    this.subscriber.disconnect();
  }

  #answer(text: string): void {
    const query = text.length > MAX_QUERY_BYTES ? undefined : parseQuery(text);
    if (query === undefined) {
      this.log.warn('refused a malformed read-only query', { query: text });
      return;
    }
    let tag: string;
    try {
      tag = GrainId.fromTag(query.g).tag;
    } catch {
      this.reply(query.r.c, notServed(query.r.i, 'not a grain'));
      return;
    }
    const activation = this.catalog.get(tag);
    if (activation === undefined) {
      this.reply(query.r.c, notServed(query.r.i, 'the grain is not active on this silo'));
      return;
    }
    // A commit whose answers went out with it is read first: the caller may be asking right after one.
    activation
      .landed()
      .then(async () => {
        const target = activation.readOnlyTarget();
        if (target === undefined) return notServed(query.r.i, 'the grain is not active on this silo');
        return callReadOnly(target, { method: query.m, args: query.a, correlationId: query.c, requestId: query.r.i });
      })
      .then((reply) => this.reply(query.r.c, reply))
      .catch((error: unknown) => this.log.warn('a read-only query failed', { grain: tag, error: describeError(error) }));
  }
}

function notServed(requestId: string, why: string): ReplyMessage {
  return { i: requestId, ok: false, e: { name: 'ReadOnlyNotServed', code: NOT_SERVED_CODE, message: why } };
}
