import type { SiloStats } from '../telemetry/silo-metrics.ts';
/** Lifecycle of a silo in the membership table. */
export type SiloStatus = 'joining' | 'active' | 'stopping' | 'left' | 'dead';

/** One silo's row in the membership table. */
export interface SiloRecord {
  id: string;
  status: SiloStatus;
  host: string;
  pid: number;
  /** Grain types this silo hosts. */
  types: string[];
  startedAt: number;
  heartbeatAt: number;
  activations: number;
  /** The silo's heartbeat interval (ms), so readers can tell a late heartbeat from a normal one; 0 when unknown. */
  heartbeatIntervalMs: number;
  /** What the silo reported with its last heartbeat (see SiloStats), when it did. */
  stats?: SiloStats;
}

/** Silos that take wake-ups for the grains they own. */
export function takesWakeUps(status: SiloStatus | undefined): boolean {
  return status === 'joining' || status === 'active' || status === 'stopping';
}

export function recordToHash(record: SiloRecord): Record<string, string> {
  return {
    id: record.id,
    status: record.status,
    host: record.host,
    pid: String(record.pid),
    types: record.types.join(','),
    startedAt: String(record.startedAt),
    heartbeatAt: String(record.heartbeatAt),
    activations: String(record.activations),
    heartbeatIntervalMs: String(record.heartbeatIntervalMs),
  };
}

export function recordFromHash(hash: Record<string, string>): SiloRecord | undefined {
  if (hash.id === undefined || hash.status === undefined) return undefined;
  return {
    id: hash.id,
    status: hash.status as SiloStatus,
    host: hash.host ?? '',
    pid: Number(hash.pid ?? 0),
    types: hash.types ? hash.types.split(',') : [],
    startedAt: Number(hash.startedAt ?? 0),
    heartbeatAt: Number(hash.heartbeatAt ?? 0),
    activations: Number(hash.activations ?? 0),
    heartbeatIntervalMs: Number(hash.heartbeatIntervalMs ?? 0),
    ...(hash.stats === undefined ? {} : statsFrom(hash.stats)),
  };
}

/** The stats a silo wrote, if they read as such (anyone may write a record). */
function statsFrom(text: string): { stats?: SiloStats } {
  try {
    const value = JSON.parse(text) as Partial<SiloStats>;
    const counts = [value.processed, value.failed, value.deadLettered, value.turnP50Ms, value.turnP99Ms, value.mailboxDepth];
    if (counts.some((n) => typeof n !== 'number' || !Number.isFinite(n))) return {};
    const byType: Record<string, number> = {};
    if (typeof value.activationsByType === 'object' && value.activationsByType !== null) {
      for (const [type, count] of Object.entries(value.activationsByType).slice(0, 1_000)) {
        if (typeof count === 'number' && Number.isFinite(count)) byType[type.slice(0, 200)] = count;
      }
    }
    // Only the known fields: the record is shown to operators as it is.
    const { processed, failed, deadLettered, turnP50Ms, turnP99Ms, mailboxDepth } = value as SiloStats;
    return { stats: { processed, failed, deadLettered, turnP50Ms, turnP99Ms, mailboxDepth, activationsByType: byType } };
  } catch {
    return {};
  }
}
