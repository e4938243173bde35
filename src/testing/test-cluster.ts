import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type ConnectOptions } from '../client/connect.ts';
import type { GrainClient } from '../client/grain-client.ts';
import { startRedisServer, type RedisServer } from './redis-server.ts';

/**
 * Each silo is the `redgrain silo` command in a child process of its own (so a test can kill or
 * pause it by pid). From the compiled package that is dist/cli/bin.js under plain Node; from
 * redgrain's TypeScript sources (its own tests), src/cli/bin.ts under tsx.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const CLI = fileURLToPath(new URL(FROM_SOURCES ? '../cli/bin.ts' : '../cli/bin.js', import.meta.url));
const SILO_COMMAND = [...(FROM_SOURCES ? ['--import', 'tsx'] : []), CLI, 'silo'];

export interface TestClusterOptions {
  /** Grain modules each silo loads (paths, as for `redgrain silo --grains`; `.ts` needs tsx installed). */
  grains: string[];
  /** How many silo processes to start. Default 2. */
  silos?: number | undefined;
  /** Use this Redis; default: start a private redis-server, stopped with the cluster. */
  redisUrl?: string | undefined;
  /**
   * Use this Redis Cluster instead (its nodes' `redis://` URLs, e.g. `startRedisCluster().urls`):
   * the silos get it as `REDIS_CLUSTER`, clients as `{ cluster }`. Not with `redisUrl`.
   */
  redisCluster?: string[] | undefined;
  /** Key prefix; default a fresh random one. */
  keyPrefix?: string | undefined;
  /** Extra environment for the silo processes (e.g. REDGRAIN_COLLECTION_AGE_MS). */
  env?: Record<string, string> | undefined;
  /** How long a silo may take to start or stop (ms). Default 30 000. */
  timeoutMs?: number | undefined;
}

/** One silo child process. */
export class SiloProcess {
  readonly exited: Promise<number | null>;
  /** Set by a harness once it has started a replacement for this silo. */
  replaced = false;
  #output = '';

  constructor(
    readonly id: string,
    private readonly child: ChildProcess,
    private readonly timeoutMs: number,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-20_000);
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** False once the process has exited. */
  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the silo wrote to stderr lately (its JSON logs). */
  get logs(): string {
    return this.#output;
  }

  /** Graceful stop: SIGTERM, then SIGKILL if it has not exited within the timeout. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Sends a signal (SIGKILL to crash it, SIGSTOP / SIGCONT to pause it). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/**
 * A cluster of real silo processes on one Redis (or a Redis Cluster), for integration tests of
 * your own grains:
 *
 * ```ts
 * const cluster = await TestCluster.start({ grains: ['./grains/counter.ts'], silos: 3 });
 * const client = await cluster.connect();
 * // ...
 * await cluster.stop();
 * ```
 */
export class TestCluster {
  readonly silos: SiloProcess[] = [];
  readonly #clients: GrainClient[] = [];

  private constructor(
    /** The Redis the silos use; undefined when they use a Redis Cluster ({@link redisCluster}). */
    readonly redisUrl: string | undefined,
    /** The Redis Cluster's node URLs the silos use, if they use one. */
    readonly redisCluster: string[] | undefined,
    readonly keyPrefix: string,
    private readonly options: TestClusterOptions,
    private readonly server: RedisServer | undefined,
  ) {}

  static async start(options: TestClusterOptions): Promise<TestCluster> {
    if (options.redisCluster !== undefined) {
      if (options.redisUrl !== undefined) throw new TypeError('TestCluster.start: give redisUrl or redisCluster, not both');
      if (options.redisCluster.length === 0) throw new TypeError('TestCluster.start: redisCluster lists no node');
    }
    const server = options.redisUrl === undefined && options.redisCluster === undefined ? await startRedisServer() : undefined;
    const cluster = new TestCluster(
      options.redisCluster === undefined ? (options.redisUrl ?? (server as RedisServer).url) : undefined,
      options.redisCluster === undefined ? undefined : [...options.redisCluster],
      options.keyPrefix ?? `test-${randomUUID().slice(0, 8)}`,
      options,
      server,
    );
    try {
      await Promise.all(Array.from({ length: options.silos ?? 2 }, () => cluster.addSilo()));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /**
   * Starts one more silo process and resolves once it takes messages. `env` adds to the
   * cluster's environment; `grains` replaces the cluster's grain modules for this silo.
   */
  async addSilo(env: Record<string, string> = {}, grains: string[] = this.options.grains): Promise<SiloProcess> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    const args = [...SILO_COMMAND, ...grains.flatMap((m) => ['--grains', resolvePath(m)])];
    // The cluster's Redis, and no other: REDIS_CLUSTER and REDIS_SENTINELS win over REDIS_URL, so
    // those this process has are left out.
    const { REDIS_URL: _url, REDIS_CLUSTER: _cluster, REDIS_SENTINELS: _sentinels, ...inherited } = process.env;
    const child = spawn(process.execPath, args, {
      env: {
        ...inherited,
        ...(this.redisCluster === undefined ? { REDIS_URL: this.redisUrl } : { REDIS_CLUSTER: this.redisCluster.join(',') }),
        REDGRAIN_PREFIX: this.keyPrefix,
        REDGRAIN_LOG_LEVEL: process.env.REDGRAIN_LOG_LEVEL ?? 'warn',
        ...this.options.env,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const id = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`silo did not start within ${timeoutMs} ms:\n${stderr}`));
      }, timeoutMs);
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-10_000);
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = /redgrain silo (\S+) started/.exec(stdout);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`silo exited with code ${code} before starting:\n${stderr}`));
      });
    });
    child.removeAllListeners('exit');
    const silo = new SiloProcess(id, child, timeoutMs);
    this.silos.push(silo);
    return silo;
  }

  /** The silos' Redis as `connect` and `Silo.start` take it: the URL, or `{ cluster }` on a Redis Cluster. */
  get redis(): string | { cluster: string[] } {
    return this.redisCluster === undefined ? (this.redisUrl as string) : { cluster: [...this.redisCluster] };
  }

  /** A client of this cluster; closed by `stop()`. */
  async connect(options: ConnectOptions = {}): Promise<GrainClient> {
    const client = await connect({ ...options, redis: options.redis ?? this.redis, keyPrefix: options.keyPrefix ?? this.keyPrefix });
    this.#clients.push(client);
    return client;
  }

  /** Closes clients, stops every silo gracefully, and stops the private Redis if it started one. */
  async stop(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.close()));
    await Promise.all(this.silos.map((s) => s.stop()));
    await this.server?.stop();
  }
}
