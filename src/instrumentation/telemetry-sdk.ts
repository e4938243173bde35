/**
 * The OpenTelemetry SDK of a redgrain process (the silo command, the example, an app's own
 * process through `redgrain/instrumentation`), configured by the standard `OTEL_*` environment
 * variables. The rest of redgrain uses only the OpenTelemetry API; this is the one place an SDK
 * is set up.
 *
 * The SDK starts only when something asks for export, so a silo with no telemetry configured
 * pays nothing: any of `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
 * `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, or redgrain's `REDGRAIN_PROMETHEUS_PORT`
 * (metrics served for Prometheus at `http://<host>:<port>/metrics`). `OTEL_SDK_DISABLED=true`
 * turns it off regardless.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';

const EXPORT_VARIABLES = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_TRACES_EXPORTER',
  'OTEL_METRICS_EXPORTER',
  'REDGRAIN_PROMETHEUS_PORT',
] as const;

/** How long a stopping process waits for its last spans and metrics to be exported. */
const SHUTDOWN_TIMEOUT_MS = 5_000;

let sdk: NodeSDK | undefined;

/** Whether `env` asks for telemetry export. */
export function telemetryRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  return EXPORT_VARIABLES.some((name) => (env[name] ?? '') !== '');
}

/** Starts the SDK when the environment asks for export (once per process). */
export function startTelemetry(defaultServiceName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (sdk !== undefined || !telemetryRequested(env)) return sdk !== undefined;
  const prometheusPort = env.REDGRAIN_PROMETHEUS_PORT ?? '';
  if (prometheusPort !== '') {
    if (!/^\d+$/.test(prometheusPort)) throw new Error(`REDGRAIN_PROMETHEUS_PORT must be a port number, got "${prometheusPort}"`);
    env.OTEL_METRICS_EXPORTER ??= 'prometheus';
    env.OTEL_EXPORTER_PROMETHEUS_PORT ??= prometheusPort;
  }
  // Ask only for what was configured: metrics alone must not start a trace exporter to a
  // collector that is not there, and the other way round.
  const tracesConfigured = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_TRACES_EXPORTER'].some(
    (name) => (env[name] ?? '') !== '',
  );
  if (!tracesConfigured) env.OTEL_TRACES_EXPORTER = 'none';
  env.OTEL_METRICS_EXPORTER ??= (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '') !== '' ? 'otlp' : 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME ?? defaultServiceName, instrumentations: [] });
  sdk.start();
  return true;
}

/** Flushes and stops the SDK (bounded); call before the process exits. */
export async function stopTelemetry(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  if (running === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    running.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
}
