/**
 * `redgrain/instrumentation`: importing it starts the OpenTelemetry SDK when the environment asks
 * for export (the `OTEL_*` variables, see telemetry-sdk.ts), with `redgrain-silo` as the default
 * service name. `redgrain silo` loads it before it starts the silo; an app's own process can load
 * it first the same way:
 *
 *   node --import redgrain/instrumentation ./dist/app.js
 *
 * and call `stopTelemetry()` before it exits, so the last spans and metrics go out.
 */
import { startTelemetry } from './telemetry-sdk.ts';

startTelemetry('redgrain-silo');

export { stopTelemetry } from './telemetry-sdk.ts';
