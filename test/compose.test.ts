import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { grainClassesOf } from '../src/grain/grain-module.ts';

interface Service {
  image?: string;
  profiles?: string[];
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync('compose.yaml', 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const dockerfile = readFileSync('Dockerfile', 'utf8');
const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
/** Every environment variable a silo process reads (the silo command and the telemetry setup). */
const siloSources = ['src/cli/silo-command.ts', 'src/instrumentation/telemetry-sdk.ts', 'src/silo/silo-options.ts']
  .map((f) => readFileSync(f, 'utf8'))
  .join('');

const published = (service: Service) => (service.ports ?? []).map((p) => p.split(':'));
const urlOf = (value: string | undefined) => new URL(value ?? 'missing://');
const silos = Object.entries(services).filter(([name]) => name.startsWith('silo-'));

/** The grain types a module exports (as the silo CLI finds them). */
async function grainTypes(module: string): Promise<string[]> {
  return (await grainClassesOf(module)).map((cls) => cls.type);
}

/** compose.yaml must agree with the code: commands, files, ports and variables. */
describe('compose.yaml', () => {
  it('runs Redis with AOF, noeviction and a healthcheck, published on loopback only', () => {
    const redis = services.redis as Service;
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']));
    expect(redis.healthcheck?.test).toEqual(expect.arrayContaining(['redis-cli', 'ping']));
    for (const [name, service] of Object.entries(services)) {
      for (const port of published(service)) expect(port[0], `${name} publishes on 127.0.0.1`).toBe('127.0.0.1');
    }
  });

  it('runs Jaeger v2 with OTLP on 4317/4318 and the UI on 16686', () => {
    const jaeger = services.jaeger as Service;
    expect(jaeger.image).toMatch(/^jaegertracing\/jaeger:2\.\d+\.\d+$/);
    expect(new Set(published(jaeger).map((p) => p[2]))).toEqual(new Set(['16686', '4317', '4318']));
  });

  it('runs two silos with `redgrain silo` (as npm run silo does) that host the example grains and export to Jaeger', async () => {
    const entrypoint = /ENTRYPOINT (\[.*\])/.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toEqual(['node', '--import', 'tsx']);
    expect(silos.map(([name]) => name)).toEqual(['silo-1', 'silo-2']);
    const hosted = new Set<string>();
    for (const [name, silo] of silos) {
      const command = silo.command ?? [];
      // The image's entrypoint and the silo's command make up the same command line as `npm run silo`.
      expect(['node', '--import', 'tsx', ...command.slice(0, 2)].join(' '), name).toBe(scripts.silo);
      expect(existsSync(command[0] ?? ''), `${name} runs a file that exists`).toBe(true);
      const modules = command.flatMap((arg, i) => (command[i - 1] === '--grains' ? [arg] : []));
      expect(modules.length, `${name} loads grain modules`).toBeGreaterThan(0);
      for (const module of modules) for (const type of await grainTypes(module)) hosted.add(type);

      const env = silo.environment ?? {};
      expect(urlOf(env.REDIS_URL).host, `${name} REDIS_URL`).toBe('redis:6379');
      const otlp = urlOf(env.OTEL_EXPORTER_OTLP_ENDPOINT);
      expect(otlp.hostname).toBe('jaeger');
      expect(published(services.jaeger as Service).map((p) => p[2])).toContain(otlp.port);
      expect(env.OTEL_SERVICE_NAME).toBe(name);
      for (const variable of Object.keys(env).filter((v) => v.startsWith('REDGRAIN_'))) {
        expect(siloSources, `${variable} is read by the silo`).toContain(variable);
      }
      expect(published(silo).map((p) => p[2])).toEqual([env.REDGRAIN_PROMETHEUS_PORT]);
      expect(silo.depends_on?.redis?.condition).toBe('service_healthy');
    }
    expect([...hosted]).toEqual(expect.arrayContaining(['Campaign', 'ReviewQueue', 'Counter']));
  });

  it('has a one-shot example service that uses the silos, not its own', () => {
    const example = services.example as Service;
    const script = example.command?.[0] ?? '';
    expect(existsSync(script)).toBe(true);
    expect(readFileSync(script, 'utf8')).toContain('EXAMPLE_SILOS');
    const env = example.environment ?? {};
    expect(env.EXAMPLE_SILOS).toBe('0');
    expect(env.REDGRAIN_PREFIX).toBe(services['silo-1']?.environment?.REDGRAIN_PREFIX);
    expect(env.REDIS_URL).toBe(services['silo-1']?.environment?.REDIS_URL);
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe(services['silo-1']?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT);
    expect(Object.keys(example.depends_on ?? {}).sort()).toEqual(['silo-1', 'silo-2']);
  });

  it('has a cluster profile: three cluster-enabled masters joined by a one-shot service, used by the silos and the example through REDIS_CLUSTER', () => {
    const nodes = ['redis-c1', 'redis-c2', 'redis-c3'].map((name) => services[name] as Service);
    for (const node of nodes) {
      expect(node.profiles).toEqual(['cluster']);
      expect(node.command).toEqual(
        expect.arrayContaining(['--cluster-enabled', 'yes', '--maxmemory-policy', 'noeviction', '--port', '7000']),
      );
      expect(published(node)).toEqual([]);
    }
    const init = services['redis-cluster-init'] as Service;
    expect(init.profiles).toEqual(['cluster']);
    expect(init.command?.join(' ')).toContain('--cluster create');
    for (const name of ['redis-c1', 'redis-c2', 'redis-c3']) {
      expect(init.command?.join(' ')).toContain(`getent hosts ${name}`);
      expect(init.depends_on?.[name]?.condition).toBe('service_healthy');
    }
    // Unset, REDIS_CLUSTER is empty and REDIS_URL applies; set, it wins (the silo and example read it).
    for (const service of [...silos.map(([, silo]) => silo), services.example as Service]) {
      expect(service.environment?.REDIS_CLUSTER).toBe('${REDIS_CLUSTER:-}');
    }
    expect(readFileSync('src/config/options-schema.ts', 'utf8')).toContain("env: 'REDIS_CLUSTER'");
    expect(readFileSync('examples/support/redis.ts', 'utf8')).toContain('REDIS_CLUSTER');
  });
});
