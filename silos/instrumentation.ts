/**
 * Loaded before the silo with `--import`, so the OpenTelemetry SDK is registered before any
 * redgrain code runs:
 *
 *   tsx --import ./silos/instrumentation.ts silos/silo.ts --grains ./grains/campaign.ts
 *
 * Configuration: the standard `OTEL_*` variables (see silos/telemetry.ts and the README).
 */
import { startTelemetry } from './telemetry.ts';

startTelemetry('redgrain-silo');
