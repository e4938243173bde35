import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private `redis-server` child process on a free loopback port. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Its working directory (AOF files live here when `appendOnly` is set). */
  readonly dir: string;
  /** Stops it by pid (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
  /** Kills it with SIGKILL (a crash), keeping its directory for a restart. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory, after `kill` (`stop` removes the directory). */
  restart(): Promise<void>;
}

export interface RedisServerOptions {
  /** Persist with AOF (`appendfsync always`), so a restart keeps every acknowledged write. */
  appendOnly?: boolean | undefined;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory-policy', 'allkeys-lru']`. */
  args?: string[] | undefined;
  /** A fixed port; default a free one. */
  port?: number | undefined;
  /**
   * Serve TLS only, on the port (no plain-text port), with this certificate and key; clients are
   * not asked for certificates. The URL is then `rediss://127.0.0.1:<port>`.
   */
  tls?: { certFile: string; keyFile: string; caFile: string } | undefined;
}

/** True when `redis-server` is on PATH. */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Finds a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts `redis-server` bound to 127.0.0.1 only, on a free port, with `noeviction`; resolves once
 * it accepts connections. Tests and the quick-start example use it; nothing relies on a server
 * someone left running.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'redgrain-redis-'));
  const listen =
    options.tls === undefined
      ? ['--port', String(port)]
      : [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          options.tls.certFile,
          '--tls-key-file',
          options.tls.keyFile,
          '--tls-ca-cert-file',
          options.tls.caFile,
          '--tls-auth-clients',
          'no',
        ];
  const args = [
    ...listen,
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    ...(options.appendOnly ? ['--appendfsync', 'always'] : []),
    ...(options.args ?? []),
  ];
  let child = await launch(args);
  const server: RedisServer = {
    url: `${options.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid ?? -1;
    },
    dir,
    async stop() {
      await terminate(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await terminate(child, 'SIGKILL');
    },
    async restart() {
      await terminate(child, 'SIGTERM');
      child = await launch(args);
    },
  };
  return server;
}

/**
 * Servers started by this process and still running. When the process exits without stopping
 * them (a test that timed out, an example that threw), they are killed with it rather than left
 * running. A process killed with SIGKILL cannot do this.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Spawns `redis-server` with these arguments and resolves once it accepts connections (once its
 * log says `ready`); it is killed when this process exits. Internal (`redis-cluster.ts` and the
 * tests' Sentinel helper start their servers with it); not exported from `redgrain/testing`.
 */
export async function launch(args: string[], ready = 'Ready to accept connections'): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start within 10 s:\n${output}`));
    }, 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error('redis-server is not installed (apt-get install -y redis-server, or brew install redis)')
          : error,
      );
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with code ${code}:\n${output}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(ready)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  }).catch((error: unknown) => {
    running.delete(child);
    throw error;
  });
  // Listened for once it is ready: the start-up listeners above are removed then.
  child.once('exit', () => running.delete(child));
  return child;
}

/** Stops a launched server with `signal` (SIGKILL after 5 s) and waits for it to exit. Internal. */
export async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
