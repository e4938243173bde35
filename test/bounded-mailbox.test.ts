import { parse } from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import { Grain, InvalidGrainClassError, MailboxFullError, type MailboxLimits } from 'redgrain';
import { inProcessSilo } from './support/in-process-silo.ts';
import { waitFor } from './support/wait-for.ts';

/** Holds a grain's turn until the test opens it, so messages pile up behind it. */
let open: () => void = () => undefined;
let gate = Promise.resolve();
const closeGate = () => {
  gate = new Promise((resolve) => {
    open = resolve;
  });
};

class Turnstile extends Grain<{ seen: string[] }> {
  static readonly type: string = 'Turnstile';
  static readonly mailbox: MailboxLimits = { maxDepth: 3 };
  initialState() {
    return { seen: [] as string[] };
  }
  async hold() {
    await gate;
  }
  async pass(id: string) {
    this.state.seen.push(id);
    return this.state.seen;
  }
}

class Ring extends Turnstile {
  static override readonly type = 'Ring';
  static override readonly mailbox: MailboxLimits = { maxDepth: 2, overflow: 'drop-oldest' };
}

describe('bounded mailboxes', () => {
  const cluster = inProcessSilo('bounded', [Turnstile, Ring]);
  const client = () => cluster.client;
  const inspector = () => cluster.inspector;
  afterAll(() => open()); // runs first: nothing stays held when the silo stops

  const busy = async (type: string, key: string) =>
    waitFor(`${type}/${key} to be in a turn`, async () => ((await inspector().grain(type, key)).mailbox.active === 1 ? true : undefined));

  it('rejects a message past maxDepth with MailboxFullError and enqueues nothing', async () => {
    closeGate();
    const grain = client().getGrain(Turnstile, 't1');
    const held = grain.ask('hold');
    await busy('Turnstile', 't1');
    for (const id of ['a', 'b', 'c']) await grain.send('pass', id);
    const refused = await grain.send('pass', 'd').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MailboxFullError);
    expect(refused).toMatchObject({ code: 'MAILBOX_FULL', retryable: true, maxDepth: 3, dropped: false });
    expect((await inspector().grain('Turnstile', 't1')).mailbox.waiting).toBe(3);
    open();
    await held;
    expect(await grain.ask('pass', 'e')).toEqual(['a', 'b', 'c', 'e']);
  });

  it('drops the oldest waiting message to the dead letters with drop-oldest, telling its ask caller', async () => {
    closeGate();
    const grain = client().getGrain(Ring, 'r1');
    const held = grain.ask('hold');
    await busy('Ring', 'r1');
    const oldest = grain.ask('pass', 'a');
    oldest.catch(() => undefined);
    await waitFor('the first message to wait', async () =>
      (await inspector().grain('Ring', 'r1')).mailbox.waiting === 1 ? true : undefined,
    );
    await grain.send('pass', 'b');
    await grain.send('pass', 'c'); // three waiting: a is dropped
    await expect(oldest).rejects.toMatchObject({ name: 'MailboxFullError', code: 'MAILBOX_FULL', dropped: true });
    const letters = await client().deadLetters.list();
    expect(letters).toEqual([
      expect.objectContaining({ grainType: 'Ring', grainKey: 'r1', method: 'pass', reason: expect.stringContaining('mailbox full') }),
    ]);
    open();
    await held;
    expect(await grain.ask('pass', 'd')).toEqual(['b', 'c', 'd']);
    // The dropped message can be redriven like any dead letter, once: a second redrive of it at
    // the same moment (another operator, a second click) is refused.
    const id = letters[0]?.id ?? '';
    const [first, second] = await Promise.allSettled([client().deadLetters.redrive(id), client().deadLetters.redrive(id)]);
    expect([first.status, second.status].sort()).toEqual(['fulfilled', 'rejected']);
    const refusal = first.status === 'rejected' ? first.reason : second.status === 'rejected' ? second.reason : undefined;
    expect(String(refusal)).toMatch(new RegExp(`^RangeError: (Dead letter ${id} is being redriven already|No dead letter with id ${id})$`));
    // Redriven to the end of the mailbox before this ask is sent, so it runs just before it.
    expect(await grain.ask('pass', 'e')).toEqual(['b', 'c', 'd', 'a', 'e']);
  });

  it('with drop-oldest, concurrent senders together drop exactly the overflow, each message once', async () => {
    closeGate();
    const grain = client().getGrain(Ring, 'r2');
    const held = grain.ask('hold');
    await busy('Ring', 'r2');
    const ids = Array.from({ length: 10 }, (_, i) => `m${i}`);
    await Promise.all(ids.map((id) => grain.send('pass', id)));
    const letters = (await client().deadLetters.list()).filter((letter) => letter.grainKey === 'r2');
    const droppedIds = letters.map((letter) => parse<string[]>((letter.message as { a: string }).a)[0]);
    expect(droppedIds).toHaveLength(8);
    expect(new Set(droppedIds).size).toBe(8);
    expect((await inspector().grain('Ring', 'r2')).mailbox.waiting).toBe(2);
    open();
    await held;
    const kept = ids.filter((id) => !droppedIds.includes(id));
    expect(await grain.ask('pass', 'last')).toEqual([...kept, 'last']);
    for (const letter of letters) await client().deadLetters.discard(letter.id);
  });

  it('refuses an invalid bound', () => {
    class Bad extends Turnstile {
      static override readonly type = 'Bad';
      static override readonly mailbox = { maxDepth: 0 };
    }
    expect(() => client().getGrain(Bad, 'x')).toThrow(InvalidGrainClassError);
  });
});
