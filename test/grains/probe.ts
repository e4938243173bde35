import { Cluster, Redis } from 'ioredis';
import { Grain } from 'redgrain';

/**
 * A grain for tests: every effect it has outside its state goes to Redis lists under
 * `<prefix>:probe:*`, written by its own connection (to the silo's Redis: `REDIS_CLUSTER`, else
 * `REDIS_URL`), so a test can count activations, handler runs and in-handler concurrency across
 * silo processes. Each command touches one key, so it runs on a Redis Cluster as on one Redis.
 */
let probeRedis: Redis | Cluster | undefined;
function probe(): Redis | Cluster {
  const cluster = process.env.REDIS_CLUSTER;
  probeRedis ??=
    cluster !== undefined && cluster !== ''
      ? new Cluster(
          cluster.split(',').map((url) => {
            const { hostname, port } = new URL(url.trim());
            return { host: hostname, port: Number(port) };
          }),
          { scaleReads: 'master', redisOptions: { connectionName: 'probe' } },
        )
      : new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { connectionName: 'probe' });
  return probeRedis;
}
export function probeKey(prefix: string, what: string): string {
  return `${prefix}:probe:${what}`;
}
const prefix = (): string => process.env.REDGRAIN_PREFIX ?? 'redgrain';

export class Probe extends Grain<{ seen: Record<string, number>; count: number }> {
  static readonly type = 'Probe';

  initialState() {
    return { seen: {} as Record<string, number>, count: 0 };
  }

  override async onActivate() {
    await probe().rpush(probeKey(prefix(), 'activations'), this.key);
  }

  override async onDeactivate() {
    await probe().rpush(probeKey(prefix(), 'deactivations'), this.key);
  }

  /** Records (sender, seq); checks that no other turn of this grain runs at the same time. */
  async hit(sender: string, seq: number, holdMs = 0) {
    const redis = probe();
    const inflight = await redis.incr(probeKey(prefix(), `inflight:${this.key}`));
    if (inflight > 1) await redis.rpush(probeKey(prefix(), 'overlaps'), this.key);
    if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
    await redis.rpush(probeKey(prefix(), 'runs'), `${this.key}|${sender}|${seq}`);
    this.state.seen[sender] = seq;
    this.state.count += 1;
    await redis.decr(probeKey(prefix(), `inflight:${this.key}`));
    return this.state.count;
  }

  /**
   * Like `hit`, but the first attempt at (sender, seq) announces itself in `started` and holds for
   * `holdMs`; later attempts (after a crash) run at once. State counts each message once.
   */
  async hitSlowOnce(sender: string, seq: number, holdMs: number) {
    const redis = probe();
    const first = (await redis.set(probeKey(prefix(), `slow:${this.key}:${sender}:${seq}`), '1', 'NX')) === 'OK';
    if (first) {
      await redis.rpush(probeKey(prefix(), 'started'), `${this.key}|${sender}|${seq}|${process.pid}`);
      await new Promise((resolve) => setTimeout(resolve, holdMs));
    }
    await redis.rpush(probeKey(prefix(), 'runs'), `${this.key}|${sender}|${seq}`);
    await redis.rpush(probeKey(prefix(), 'runpids'), `${this.key}|${sender}|${seq}|${process.pid}|${Date.now()}`);
    this.state.seen[sender] = seq;
    this.state.count += 1;
    return this.state.count;
  }

  /** A poison message: kills the silo process that runs it, until `<prefix>:probe:fixed` is set. */
  async crash() {
    const redis = probe();
    if ((await redis.get(probeKey(prefix(), 'fixed'))) !== null) {
      await redis.rpush(probeKey(prefix(), 'runs'), `${this.key}|crash|fixed`);
      return 'fixed';
    }
    await redis.rpush(probeKey(prefix(), 'crashes'), String(process.pid));
    process.kill(process.pid, 'SIGKILL');
    return 'unreachable';
  }

  /** A poison message: blocks the event loop for `ms` (a hang), until `<prefix>:probe:fixed` is set. */
  async block(ms: number) {
    const redis = probe();
    if ((await redis.get(probeKey(prefix(), 'fixed'))) !== null) return 'fixed';
    await redis.rpush(probeKey(prefix(), 'hangs'), String(process.pid));
    const until = Date.now() + ms;
    while (Date.now() < until) {
      // busy: nothing else on this event loop runs
    }
    return 'survived';
  }

  async count() {
    return this.state.count;
  }
}
