import { describe, expect, it } from 'vitest';
import { MessagePacker, NotSentBehindError, type PackSending } from '../../src/client/message-packer.ts';
import { GrainId } from '../../src/grain/grain-id.ts';
import type { MessageEnvelope } from '../../src/messaging/envelope.ts';

const grain = GrainId.of('Counter', 'hot');
/** A message whose arguments take `size` characters of `fill` (a pack's byte bound counts its JSON bytes). */
const message = (n: number, size = 10, fill = ' '): MessageEnvelope => ({ v: 1, m: 'add', a: `${n}`.padEnd(size, fill), c: `c${n}`, t: 0 });

/** A packer whose sends are held until the test lets them go; it records what each send carried. */
function packer(limits: { messages: number; bytes: number }) {
  const sent: string[][] = [];
  const pending: { ok: () => void; fail: (error: unknown) => void }[] = [];
  const packs = new MessagePacker(limits, (_, envelopes): PackSending => {
    sent.push(envelopes.map((e) => e.c));
    let ok!: () => void;
    let fail!: (error: unknown) => void;
    const added = new Promise<void>((resolve, reject) => {
      ok = resolve;
      fail = reject;
    });
    pending.push({ ok, fail });
    return { added, done: added };
  });
  return { packs, sent, pending };
}
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('MessagePacker', () => {
  it('sends the first message at once and packs those sent meanwhile, up to the count', async () => {
    const { packs, sent, pending } = packer({ messages: 3, bytes: 1_000_000 });
    const calls = [1, 2, 3, 4, 5, 6].map((n) => packs.add(grain, [message(n)]));
    await settled();
    expect(sent).toEqual([['c1']]);
    pending[0]?.ok();
    await settled();
    expect(sent).toEqual([['c1'], ['c2', 'c3', 'c4']]);
    pending[1]?.ok();
    await settled();
    pending[2]?.ok();
    await Promise.all(calls);
    expect(sent).toEqual([['c1'], ['c2', 'c3', 'c4'], ['c5', 'c6']]);
  });

  it('keeps a pack within its byte bound, and sends a message larger than the bound alone', async () => {
    // A 300-character message is 340 bytes of JSON: three fit in 1,200. Quotes are escaped in the
    // job's JSON (two bytes each), and 'é' takes two bytes in UTF-8: such a message of 300
    // characters is over 600 bytes, so two of them do not fit.
    const { packs, sent, pending } = packer({ messages: 64, bytes: 1_200 });
    const calls = [
      packs.add(grain, [message(1)]),
      ...[2, 3, 4].map((n) => packs.add(grain, [message(n, 300)])),
      packs.add(grain, [message(5, 300, '"')]),
      packs.add(grain, [message(6, 300, 'é')]),
      packs.add(grain, [message(7, 2_000)]),
    ];
    for (let i = 0; i < 5; i++) {
      await settled();
      pending[i]?.ok();
    }
    await Promise.all(calls);
    expect(sent).toEqual([['c1'], ['c2', 'c3', 'c4'], ['c5'], ['c6'], ['c7']]);
  });

  it('does not send what waits behind a pack whose enqueue failed', async () => {
    const { packs, sent, pending } = packer({ messages: 64, bytes: 1_000_000 });
    const calls = [1, 2, 3].map((n) => packs.add(grain, [message(n)]).catch((error: unknown) => error));
    await settled();
    pending[0]?.fail(new Error('connection lost'));
    const outcomes = await Promise.all(calls);
    expect(sent).toEqual([['c1']]);
    expect(outcomes[0]).toEqual(new Error('connection lost'));
    expect(outcomes.slice(1).map((e) => e instanceof NotSentBehindError)).toEqual([true, true]);
  });
});
