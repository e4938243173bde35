import { afterAll, beforeAll } from 'vitest';
import { ClusterInspector, connect, Silo, type GrainClass, type GrainClient, type SiloOptions } from 'redgrain';
import { LogRecorder } from './log-recorder.ts';
import { freshPrefix } from './prefix.ts';
import { testRedis } from './redis.ts';

/**
 * One silo and one client in this process on the suite's Redis, under a fresh key prefix,
 * started before the file's tests and stopped after them. The silo's log is recorded, so tests
 * can fail on warnings they did not provoke.
 */
export function inProcessSilo(label: string, grains: GrainClass[], options: Partial<SiloOptions> = {}) {
  const keyPrefix = freshPrefix(label);
  const log = new LogRecorder();
  let silo: Silo | undefined;
  let client: GrainClient | undefined;
  let inspector: ClusterInspector | undefined;
  const start = () => Silo.start({ redis: testRedis(), keyPrefix, grains, logger: log, ...options });
  beforeAll(async () => {
    silo = await start();
    client = await connect({ redis: testRedis(), keyPrefix });
    inspector = await ClusterInspector.open({ redis: testRedis(), keyPrefix });
  });
  afterAll(async () => {
    await inspector?.close();
    await client?.close();
    await silo?.stop();
  });
  return {
    keyPrefix,
    log,
    get silo(): Silo {
      if (silo === undefined) throw new Error('the silo is not started yet');
      return silo;
    },
    get client(): GrainClient {
      if (client === undefined) throw new Error('the client is not connected yet');
      return client;
    },
    /** Reads grains and silos from Redis without activating anything. */
    get inspector(): ClusterInspector {
      if (inspector === undefined) throw new Error('the inspector is not open yet');
      return inspector;
    },
    /** Stops the silo (every grain deactivated, none running) and, when told, starts a new one. */
    async stop(): Promise<void> {
      await silo?.stop();
      silo = undefined;
    },
    async start(): Promise<Silo> {
      silo = await start();
      return silo;
    },
  };
}
