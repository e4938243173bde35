import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from 'redgrain/testing';

const execFileAsync = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));
const ourPackage = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

/** The README's "Use it in your app" section: this test follows it step by step. */
const guide = (() => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Use it in your app\n');
  return readme.slice(start, readme.indexOf('\n## ', start + 1));
})();

/** The guide's files: each fenced block whose first line is `// <path>`, as the app gets them. */
function guideFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [, indent = '', path = '', body = ''] of guide.matchAll(/^( *)```\w*\n\1\/\/ (\S+)\n([\s\S]*?)^\1```$/gm)) {
    files.set(path, body.replace(new RegExp(`^${indent}`, 'gm'), ''));
  }
  return files;
}

/**
 * This process's environment minus what `npm test` sets for redgrain's own package: npm would
 * otherwise read the repository as the project the app's commands run in.
 */
function appEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.entries(process.env).filter(
    ([name]) => !/^(npm_package_|npm_lifecycle_|npm_config_local_prefix$|INIT_CWD$)/i.test(name),
  );
  return { ...Object.fromEntries(env), ...extra };
}

/**
 * `npx redgrain silo ...` in the app, in a process group of its own: npx runs the silo under a
 * shell that does not pass signals on, so the group is signalled as one.
 */
class NpxSilo {
  output = '';
  readonly #child: ChildProcess;
  readonly #closed: Promise<number | null>;
  #gone = false;

  constructor(cwd: string, grains: string, env: NodeJS.ProcessEnv) {
    this.#child = spawn('npx', ['redgrain', 'silo', '--grains', grains], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.#child.stdout?.on('data', collect);
    this.#child.stderr?.on('data', collect);
    // 'close' comes once every process holding its output is gone: npx and the silo itself.
    this.#closed = new Promise((resolve) =>
      this.#child.once('close', (code) => {
        this.#gone = true;
        resolve(code);
      }),
    );
  }

  /** Resolves with the silo's id once it takes messages; rejects if it exits first. */
  async started(): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const id = /redgrain silo (\S+) started/.exec(this.output)?.[1];
        if (id !== undefined) resolve(id);
      };
      this.#child.stdout?.on('data', check);
      check();
      void this.#closed.then((code) => reject(new Error(`the silo exited with code ${code}:\n${this.output}`)));
    });
  }

  /** Resolves with the exit code once the silo process and npx are gone. */
  get closed(): Promise<number | null> {
    return this.#closed;
  }

  /** Signals the process group (npx, its shell and the silo), unless all of it is gone. */
  signal(signal: NodeJS.Signals): void {
    if (this.#gone) return;
    try {
      process.kill(-(this.#child.pid as number), signal);
    } catch {
      // the group is gone already
    }
  }
}

/**
 * A fresh app, set up as a new user would from the packed package (`npm pack` builds it first):
 * installed with npm, compiled with `tsc` under strict settings, run with plain `node` against a
 * private Redis, with a silo started by `npx redgrain silo`. TypeScript itself is the repository's
 * (the same version), so the test downloads nothing that is not in npm's cache already.
 */
describe('the packed package in a fresh app', () => {
  const work = mkdtempSync(join(tmpdir(), 'redgrain-package-'));
  const app = join(work, 'app');
  const files = guideFiles();
  let redis: RedisServer;
  const silos: NpxSilo[] = [];
  const startSilo = (grains: string) => {
    const silo = new NpxSilo(app, grains, appEnv({ REDIS_URL: redis.url }));
    silos.push(silo);
    return silo;
  };

  const inApp = async (command: string, args: string[], env: Record<string, string> = {}) =>
    execFileAsync(command, args, { cwd: app, env: appEnv(env), maxBuffer: 16 * 1024 * 1024 });

  beforeAll(async () => {
    mkdirSync(app);
    redis = await startRedisServer();
    await execFileAsync('npm', ['pack', '--pack-destination', work], { cwd: repo, env: appEnv(), maxBuffer: 16 * 1024 * 1024 });
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack left no tarball in ${work}`);
    // Step 1 of the guide, with the tarball for `redgrain` and the repository's TypeScript.
    const npmFlags = ['--prefer-offline', '--no-audit', '--no-fund'];
    await inApp('npm', ['init', '-y']);
    await inApp('npm', ['install', join(work, tarball), ...npmFlags]);
    await inApp('npm', ['install', '--save-dev', `@types/node@${ourPackage.devDependencies['@types/node']}`, ...npmFlags]);
    await inApp('npm', ['pkg', 'set', 'type=module']);
    for (const [path, text] of files) {
      mkdirSync(dirname(join(app, path)), { recursive: true });
      writeFileSync(join(app, path), text);
    }
  }, 180_000);

  afterEach(async () => {
    // A test that failed half-way may leave a silo running: it must not serve the next test.
    for (const silo of silos.splice(0)) {
      silo.signal('SIGKILL');
      await silo.closed;
    }
  });

  afterAll(async () => {
    await redis?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('follows the README: its files and commands are the ones this test uses', () => {
    expect([...files.keys()].sort()).toEqual(['src/app.ts', 'src/grains.ts', 'src/report.cts', 'tsconfig.json']);
    for (const command of [
      'npm install redgrain',
      'npm install --save-dev typescript @types/node',
      'npm pkg set type=module',
      'npx tsc',
      'npx redgrain silo --grains ./dist/grains.js',
      'node dist/app.js',
      'node dist/report.cjs',
      'npx redgrain inspect grain Counter c1',
    ]) {
      expect(guide, command).toContain(command);
    }
  });

  it('installs without tsx and compiles under strict settings, exactOptionalPropertyTypes and skipLibCheck off', async () => {
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
    const tsconfig = JSON.parse(files.get('tsconfig.json') ?? '{}') as { compilerOptions: Record<string, unknown> };
    expect(tsconfig.compilerOptions).toMatchObject({ strict: true, exactOptionalPropertyTypes: true });
    expect(tsconfig.compilerOptions.skipLibCheck).toBeUndefined(); // off by default
    // Not in the guide: the declarations are real types, not `any` (an unused @ts-expect-error
    // fails the build), and optional options take `undefined` under exactOptionalPropertyTypes.
    writeFileSync(
      join(app, 'src', 'typing.ts'),
      `import { connect, type ConnectOptions } from 'redgrain';
import { TestCluster } from 'redgrain/testing';
import { Counter } from './grains.js';

export type Instrumentation = typeof import('redgrain/instrumentation');
export const options: ConnectOptions = { redis: process.env.REDIS_URL, askTimeoutMs: undefined };

export async function typing(): Promise<number> {
  const counter = (await connect(options)).getGrain(Counter, 'c1');
  // @ts-expect-error: Counter has no handler "reset"
  await counter.send('reset');
  // @ts-expect-error: add takes a number
  await counter.ask('add', 'five');
  const cluster = await TestCluster.start({ grains: ['./dist/grains.js'], redisUrl: process.env.REDIS_URL });
  await cluster.stop();
  return counter.ask('get');
}
`,
    );
    // The guide's `npx tsc`, with the repository's compiler.
    await inApp(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json']);
    expect(
      readdirSync(join(app, 'dist'))
        .filter((f) => /\.c?js$/.test(f))
        .sort(),
    ).toEqual(['app.js', 'grains.js', 'report.cjs', 'typing.js']);
  });

  it('runs a silo with `npx redgrain silo` and the app under plain node, from ES modules and CommonJS', async () => {
    const silo = startSilo('./dist/grains.js');
    const siloId = await silo.started();

    const esm = await inApp('node', ['dist/app.js'], { REDIS_URL: redis.url });
    expect(esm.stdout).toBe('10\n');
    const commonJs = await inApp('node', ['dist/report.cjs'], { REDIS_URL: redis.url });
    expect(commonJs.stdout).toBe('10\n');
    const required = await inApp('node', [
      '-e',
      "const r = require('redgrain'); const t = require('redgrain/testing'); console.log(typeof r.connect, typeof r.Grain, typeof t.TestCluster)",
    ]);
    expect(required.stdout).toBe('function function function\n');
    // The other entries load under plain node too (the instrumentation starts no SDK unasked).
    const entries = await inApp('node', [
      '--import',
      'redgrain/instrumentation',
      '--input-type=module',
      '-e',
      "const t = await import('redgrain/testing'); const i = await import('redgrain/instrumentation'); await i.stopTelemetry(); console.log(Object.keys(t).sort().join(','))",
    ]);
    expect(entries.stdout).toBe('SiloProcess,TestCluster,freePort,hasRedisServer,startRedisCluster,startRedisServer\n');

    const inspect = await inApp('npx', ['redgrain', 'inspect', 'grain', 'Counter', 'c1'], { REDIS_URL: redis.url });
    expect(inspect.stdout).toContain('grain    Counter/c1\n');
    expect(inspect.stdout).toMatch(new RegExp(`\\nowner    ${siloId} \\(active\\), epoch \\d+\\n`));
    expect(inspect.stdout).toMatch(/\nstate\n {2}count = 10\n/);

    // SIGTERM stops the silo gracefully.
    silo.signal('SIGTERM');
    await silo.closed;
    expect(silo.output).toContain(`"msg":"silo stopped","silo":"${siloId}"`);
  }, 120_000);

  it('runs a TestCluster from redgrain/testing: its silos are the packaged `redgrain silo` under plain node', async () => {
    const script = `import { TestCluster } from 'redgrain/testing';
import { Counter } from './dist/grains.js';
const cluster = await TestCluster.start({ grains: ['./dist/grains.js'], silos: 1, redisUrl: process.env.REDIS_URL });
const client = await cluster.connect();
console.log(await client.getGrain(Counter, 'k').ask('add', 3), cluster.silos.length);
await cluster.stop();`;
    const { stdout } = await inApp('node', ['--input-type=module', '-e', script], { REDIS_URL: redis.url });
    expect(stdout).toBe('3 1\n');
  }, 60_000);

  it('serves the dashboard from the installed package: its page, script and Chart.js', async () => {
    const script = `import { startDashboard } from 'redgrain';
const dashboard = await startDashboard({ redis: process.env.REDIS_URL, port: 0 });
for (const path of ['', 'app.js', 'style.css', 'vendor/chart.umd.min.js', 'api/overview']) {
  const response = await fetch(dashboard.url + path);
  console.log('/' + path, response.status, response.headers.get('content-type'), (await response.text()).length > 0);
}
await dashboard.close();`;
    const { stdout } = await inApp('node', ['--input-type=module', '-e', script], { REDIS_URL: redis.url });
    expect(stdout.trim().split('\n')).toEqual([
      '/ 200 text/html; charset=utf-8 true',
      '/app.js 200 text/javascript; charset=utf-8 true',
      '/style.css 200 text/css; charset=utf-8 true',
      '/vendor/chart.umd.min.js 200 text/javascript; charset=utf-8 true',
      '/api/overview 200 application/json; charset=utf-8 true',
    ]);
  }, 60_000);

  it('loads a TypeScript grain module through tsx, only once the app installs tsx', async () => {
    const without = startSilo('./src/grains.ts');
    expect(await without.closed).toBe(1);
    expect(without.output).toContain(
      'redgrain: Grain module ./src/grains.ts: it is TypeScript and tsx is not installed: `npm install --save-dev tsx`, or pass the compiled JavaScript module',
    );

    await inApp('npm', ['install', '--save-dev', `tsx@${ourPackage.devDependencies.tsx}`, '--prefer-offline', '--no-audit', '--no-fund']);
    const silo = startSilo('./src/grains.ts');
    const siloId = await silo.started();
    const esm = await inApp('node', ['dist/app.js'], { REDIS_URL: redis.url });
    expect(esm.stdout).toBe('20\n'); // the first test's silo left the count at 10
    const inspect = await inApp('npx', ['redgrain', 'inspect', 'grain', 'Counter', 'c1'], { REDIS_URL: redis.url });
    expect(inspect.stdout).toContain(`owner    ${siloId} (active)`);
    silo.signal('SIGTERM');
    await silo.closed;
    expect(silo.output).toContain(`"msg":"silo stopped","silo":"${siloId}"`);
  }, 120_000);
});
