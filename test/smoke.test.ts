import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Silo, type GrainClient } from 'redgrain';
import { Counter } from '../grains/counter.ts';
import { freshPrefix } from './support/prefix.ts';
import { testRedis } from './support/redis.ts';

describe('smoke', () => {
  let silo: Silo;
  let client: GrainClient;
  const keyPrefix = freshPrefix('smoke');
  beforeAll(async () => {
    silo = await Silo.start({ redis: testRedis(), grains: [Counter], keyPrefix, logLevel: 'warn' });
    client = await connect({ redis: testRedis(), keyPrefix });
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
