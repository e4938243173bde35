import { serialize } from '../../src/messaging/serializer.ts';

/**
 * An outbox entry as a grain's commit writes it: a message `record(...args)` to `Sink/sink`, the
 * sender's `at`-th effect in activation `epoch` (`sender` is the sending grain's digest). Tests
 * push these to leave an outbox as a silo that died while forwarding would have left it.
 */
export function sinkRecordEntry(sender: string, epoch: number, at: number, args: unknown[]): string {
  return JSON.stringify({
    k: 'send',
    g: 'Sink/sink',
    e: { v: 1, m: 'record', a: serialize(args, 'test'), c: 'left-over', t: Date.now(), o: { s: sender, e: epoch, n: at } },
    q: `${epoch}.${at}`,
  });
}
