import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, Silo, type GrainClient } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';

describe('smoke', () => {
  let silo: Silo;
  let client: GrainClient;
  const keyPrefix = freshPrefix('smoke');
  beforeAll(async () => {
    silo = await Silo.start({ redis: inject('redisUrl'), grains: [Counter], keyPrefix, logLevel: 'warn' });
    client = await connect({ redis: inject('redisUrl'), keyPrefix });
  });
  afterAll(async () => {
    await client?.close();
    await silo?.stop();
  });

  it('send then ask', async () => {
    const ref = client.getGrain(Counter, 'c1');
    await ref.send('add', 5);
    expect(await ref.ask('add', 5)).toBe(10);
    expect(await ref.ask('get')).toBe(10);
  });
});
