import { describe, expect, it } from 'vitest';
import { CallOrder } from '../../src/client/call-order.ts';

/** Lets every promise reaction queued so far run. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CallOrder', () => {
  it('gives each call its turn once the calls before it issued, in the order they were made', async () => {
    const order = new CallOrder();
    const turned: string[] = [];
    const places = ['a', 'b', 'c'].map((name) => {
      const place = order.place('g');
      void place.turn.then(() => turned.push(name));
      return place;
    });
    await settled();
    expect(turned).toEqual(['a']);
    places[0]?.done();
    await settled();
    expect(turned).toEqual(['a', 'b']);
    places[1]?.done();
    await settled();
    expect(turned).toEqual(['a', 'b', 'c']);
  });

  it('a call that gives up before its turn hands its place on only once its turn comes', async () => {
    const order = new CallOrder();
    const a = order.place('g');
    const b = order.place('g');
    const c = order.place('g');
    let cTurned = false;
    void c.turn.then(() => {
      cTurned = true;
    });
    b.done(); // b timed out while a had not issued yet
    await settled();
    expect(cTurned).toBe(false);
    a.done();
    await settled();
    expect(cTurned).toBe(true);
  });

  it('keeps grains apart', async () => {
    const order = new CallOrder();
    order.place('g');
    let other = false;
    void order.place('h').turn.then(() => {
      other = true;
    });
    await settled();
    expect(other).toBe(true);
  });
});
