import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ClusterInspector, type QueueDepth, type SiloView } from '../cli/cluster-inspector.ts';
import { connect } from '../client/connect.ts';
import type { GrainClient } from '../client/grain-client.ts';
import { InvalidOptionError, describeError } from '../errors/errors.ts';
import type { RedisConnectionInput } from '../redis/connection.ts';

export interface DashboardOptions {
  /** Redis URL, ioredis options or `{ cluster }`; default as for `connect` (REDIS_CLUSTER, REDIS_URL, ...). */
  redis?: RedisConnectionInput | undefined;
  /** Key prefix of the application; default `REDGRAIN_PREFIX`, else `redgrain`. */
  keyPrefix?: string | undefined;
  /** Port to listen on (0: any free one). Default 8080. */
  port?: number | undefined;
  /** Address to bind. Default 127.0.0.1; anything else requires `token`. */
  host?: string | undefined;
  /** Required on every request when set (Authorization: Bearer, `?token=`, or the cookie the page sets). */
  token?: string | undefined;
  /** Hides redrive and discard of dead letters (and refuses them). */
  readOnly?: boolean | undefined;
  /** Jaeger UI base URL: grain pages link to the grain's traces there. */
  jaegerUrl?: string | undefined;
  /** The service name the silos report traces under (their OTEL_SERVICE_NAME). Default `redgrain-silo`. */
  jaegerService?: string | undefined;
  /** How often the dashboard samples the silos' counters for its charts (ms). Default 2,000. */
  sampleMs?: number | undefined;
}

export interface Dashboard {
  /** Where it listens, e.g. http://127.0.0.1:8080/. */
  readonly url: string;
  close(): Promise<void>;
}

/** One point of the cluster charts. */
interface Sample {
  /** ms since epoch */
  t: number;
  /** messages processed per second since the previous sample, all silos */
  rate: number;
  /** the slowest silo's turn latency percentiles over its last heartbeat interval (ms) */
  p50: number;
  p99: number;
  /** messages waiting behind the silos' activations */
  depth: number;
  /** entries in the dead-letter stream */
  deadLetters: number;
}

const SAMPLES_KEPT = 300;
/** The Host header of a request to this machine: 127.0.0.1, localhost or [::1], with a port. */
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;
/** No framing (clickjacking of redrive and discard), no type sniffing, no referrer with the token. */
const SECURITY_HEADERS = {
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const PUBLIC = new URL('./public/', import.meta.url);

/** The page's files, read once when a dashboard starts (not when the package is imported). */
function readAssets(): Map<string, { body: Buffer; type: string }> {
  const chartJs = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
  const files: [string, string | URL, string][] = [
    ['/', new URL('index.html', PUBLIC), 'text/html; charset=utf-8'],
    ['/app.js', new URL('app.js', PUBLIC), 'text/javascript; charset=utf-8'],
    ['/style.css', new URL('style.css', PUBLIC), 'text/css; charset=utf-8'],
    ['/vendor/chart.umd.min.js', chartJs, 'text/javascript; charset=utf-8'],
  ];
  return new Map(files.map(([path, file, type]) => [path, { body: readFileSync(file), type }]));
}

/**
 * Serves the dashboard: the cluster's silos and live charts, the grains with the deepest
 * mailboxes and any grain's page, and the dead letters (redrive, discard). Everything it shows
 * comes from what the silos keep in Redis (membership records and their heartbeat counters, grain
 * directory, mailboxes, state); it scans no keys, and pages on the server.
 */
export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token === '' ? undefined : options.token;
  if (!LOOPBACK.has(host) && token === undefined) {
    throw new InvalidOptionError(
      'host',
      JSON.stringify(host),
      'binds the dashboard beyond this machine: give a token (--token or REDGRAIN_DASHBOARD_TOKEN)',
    );
  }
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new InvalidOptionError('port', String(port), 'must be a port number (0 to 65535)');
  const assets = readAssets();
  const sampleMs = options.sampleMs ?? 2_000;
  if (!Number.isFinite(sampleMs) || sampleMs < 100) throw new InvalidOptionError('sampleMs', String(sampleMs), 'must be at least 100 (ms)');
  const connection = {
    ...(options.redis === undefined ? {} : { redis: options.redis }),
    ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
  };
  const inspector = await ClusterInspector.open(connection);
  let client: GrainClient;
  try {
    client = await connect(connection);
  } catch (error) {
    await inspector.close();
    throw error;
  }
  const samples: Sample[] = [];
  // Silos seen listed: one declared dead and taken over leaves the list, but its record is kept
  // for an hour, so the page can still show it as dead.
  const seenSilos = new Set<string>();
  const silos = async (): Promise<SiloView[]> => {
    const views = await inspector.silos(seenSilos);
    seenSilos.clear();
    for (const view of views) seenSilos.add(view.id);
    return views;
  };
  // The deepest mailboxes cost a read of every held grain's depth: computed at most once per
  // sample interval, however many pages and tabs ask (a page deeper than the last one read again).
  let ranked: { at: number; limit: number; grains: Promise<QueueDepth[]> } | undefined;
  const deepest = (limit: number): Promise<QueueDepth[]> => {
    if (ranked === undefined || Date.now() - ranked.at >= sampleMs || ranked.limit < limit) {
      const grains = inspector.topGrains(Math.max(limit, 100));
      grains.catch(() => (ranked = undefined));
      ranked = { at: Date.now(), limit: Math.max(limit, 100), grains };
    }
    return ranked.grains;
  };
  let previous: { t: number; processed: Map<string, number> } | undefined;
  const sample = async (): Promise<void> => {
    const [views, deadLetters] = await Promise.all([silos(), inspector.deadLetterCount()]);
    const t = Date.now();
    const live = views.filter((s) => s.status === 'active' || s.status === 'stopping' || s.status === 'suspect');
    const processed = new Map(views.map((s) => [s.id, s.stats?.processed ?? 0]));
    let rate = 0;
    if (previous !== undefined) {
      let delta = 0;
      for (const [id, count] of processed) delta += Math.max(0, count - (previous.processed.get(id) ?? count));
      rate = delta / ((t - previous.t) / 1_000);
    }
    previous = { t, processed };
    samples.push({
      t,
      rate: Math.round(rate * 10) / 10,
      p50: Math.max(0, ...live.map((s) => s.stats?.turnP50Ms ?? 0)),
      p99: Math.max(0, ...live.map((s) => s.stats?.turnP99Ms ?? 0)),
      depth: live.reduce((sum, s) => sum + (s.stats?.mailboxDepth ?? 0), 0),
      deadLetters,
    });
    if (samples.length > SAMPLES_KEPT) samples.shift();
  };
  let sampling: Promise<void> | undefined;
  const tick = () => {
    // A sample still in flight (a slow Redis) is not queued behind: this tick is skipped.
    sampling ??= sample()
      .catch(() => undefined)
      .finally(() => (sampling = undefined));
  };
  tick();
  const timer = setInterval(tick, sampleMs);
  timer.unref();

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => send(response, 500, { error: describeError(error) }));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
    const url = new URL(request.url ?? '/', 'http://dashboard');
    // Bound to loopback with no token, the Host must be this machine: a page whose name was made
    // to resolve here (DNS rebinding) reaches the server with its own name, and is refused.
    if (token === undefined && !LOOPBACK_HOST.test(request.headers.host ?? '')) {
      send(response, 403, { error: 'the dashboard answers requests to 127.0.0.1, localhost or [::1] only' });
      return;
    }
    // A change comes from the dashboard's own page: another page cannot set this header without a
    // CORS preflight, which is never granted, and its Origin would differ.
    if (request.method !== 'GET' && !sameOrigin(request)) {
      send(response, 403, { error: 'changes are accepted from the dashboard page only' });
      return;
    }
    if (token !== undefined && !authorized(request, url, token)) {
      send(response, 401, { error: 'a token is required: open the dashboard as /?token=<token>' });
      return;
    }
    if (token !== undefined && url.searchParams.get('token') === token) {
      response.setHeader('Set-Cookie', `redgrain_dashboard=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
    }
    const asset = request.method === 'GET' ? assets.get(url.pathname) : undefined;
    if (asset !== undefined) {
      response.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
      response.end(asset.body);
      return;
    }
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /api/config') {
      send(response, 200, {
        readOnly: options.readOnly === true,
        jaegerUrl: options.jaegerUrl ?? null,
        jaegerService: options.jaegerService ?? 'redgrain-silo',
      });
      return;
    }
    if (route === 'GET /api/overview') {
      send(response, 200, { silos: await silos(), samples });
      return;
    }
    if (route === 'GET /api/grains') {
      const limit = clampInt(url.searchParams.get('limit'), 1, 200, 20);
      const offset = clampInt(url.searchParams.get('offset'), 0, 100_000, 0);
      const top = await deepest(offset + limit);
      send(response, 200, { grains: top.slice(offset, offset + limit), offset, limit });
      return;
    }
    if (route === 'GET /api/grain') {
      const type = url.searchParams.get('type') ?? '';
      const key = url.searchParams.get('key') ?? '';
      if (type === '' || key === '') {
        send(response, 400, { error: 'type and key are required' });
        return;
      }
      send(response, 200, await inspector.grain(type, key));
      return;
    }
    if (route === 'GET /api/deadletters') {
      const limit = clampInt(url.searchParams.get('limit'), 1, 500, 50);
      send(response, 200, { deadLetters: await inspector.deadLetters(limit), readOnly: options.readOnly === true });
      return;
    }
    const action = /^POST \/api\/deadletters\/([^/]+)\/(redrive|discard)$/.exec(route);
    if (action !== null) {
      if (options.readOnly === true) {
        send(response, 403, { error: 'the dashboard is read-only' });
        return;
      }
      let done: boolean;
      try {
        const id = decodeURIComponent(action[1] as string);
        done = action[2] === 'redrive' ? await client.deadLetters.redrive(id) : await client.deadLetters.discard(id);
      } catch (error) {
        // A malformed id is the request's fault, a redrive already under way a conflict.
        if (error instanceof InvalidOptionError || error instanceof URIError) send(response, 400, { error: describeError(error) });
        else if (error instanceof RangeError) send(response, 409, { error: describeError(error) });
        else throw error;
        return;
      }
      if (done) send(response, 200, { ok: true });
      else send(response, 404, { error: 'no such dead letter (redriven or discarded already)' });
      return;
    }
    send(response, 404, { error: `no such page: ${url.pathname}` });
  }

  const shutDown = async () => {
    clearInterval(timer);
    await sampling;
    await client.close();
    await inspector.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    await shutDown(); // e.g. the port is taken: nothing is left open
    throw error;
  }
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound}/`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await shutDown();
    },
  };
}

/** A change request from the dashboard's own page: its header, and an Origin (if any) of this server. */
function sameOrigin(request: IncomingMessage): boolean {
  if (request.headers['x-redgrain-dashboard'] !== '1') return false;
  const origin = request.headers.origin;
  return origin === undefined || origin === `http://${request.headers.host ?? ''}`;
}

function authorized(request: IncomingMessage, url: URL, token: string): boolean {
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  const cookie = /(?:^|;\s*)redgrain_dashboard=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
  const given = [bearer, url.searchParams.get('token') ?? undefined, cookie === undefined ? undefined : decodeURIComponent(cookie)];
  return given.some((value) => value !== undefined && sameText(value, token));
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function clampInt(text: string | null, min: number, max: number, fallback: number): number {
  const value = Number(text);
  return text === null || !Number.isInteger(value) ? fallback : Math.min(max, Math.max(min, value));
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  response.end(JSON.stringify(body, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
}
