import type { Command } from 'commander';
import { ClusterInspector, type GrainView, type InspectOptions } from './cluster-inspector.ts';
import { formatAge, formatTable } from './table.ts';

interface CommonFlags {
  redis?: string;
  prefix?: string;
  json?: boolean;
}

/**
 * `redgrain inspect`: silos, one grain, the deepest mailboxes, dead letters. Tables for people by
 * default, `--json` for scripts (dates as ISO strings).
 */
export function addInspectCommand(program: Command, out: (text: string) => void): void {
  const inspect = program
    .command('inspect')
    .description('show a running cluster: silos, grains, mailbox depths, dead letters')
    .option('--redis <url>', 'Redis URL (default: REDIS_CLUSTER, REDIS_SENTINELS or REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--prefix <prefix>', 'key prefix of the application (default: REDGRAIN_PREFIX, else redgrain)')
    .option('--json', 'print JSON instead of tables')
    .action(async (_flags: CommonFlags, command: Command) => {
      await withInspector(command, async (inspector, json) => {
        const [silos, top, deadLetters] = await Promise.all([inspector.silos(), inspector.topGrains(10), inspector.deadLetters(10)]);
        if (json) return out(toJson({ silos, topGrains: top, deadLetters }));
        out(`${siloTable(silos)}\n\n${topTable(top)}\n\n${deadLetterTable(deadLetters)}`);
      });
    });
  inspect
    .command('silos')
    .description('every silo: status, heartbeat age, activations, grain types')
    .action(async (_flags: CommonFlags, command: Command) => {
      await withInspector(command, async (inspector, json) => {
        const silos = await inspector.silos();
        out(json ? toJson(silos) : siloTable(silos));
      });
    });
  inspect
    .command('grain <type> <key>')
    .description('one grain: owning silo, epoch, mailbox, waiting and failed messages, persisted state')
    .action(async (type: string, key: string, _flags: CommonFlags, command: Command) => {
      await withInspector(command, async (inspector, json) => {
        const grain = await inspector.grain(type, key);
        out(json ? toJson(grain) : grainText(grain));
      });
    });
  const listing = <T>(
    name: string,
    description: string,
    read: (i: ClusterInspector, limit: number) => Promise<T[]>,
    table: (rows: T[]) => string,
  ) =>
    inspect
      .command(name)
      .description(description)
      .option('-n, --limit <n>', 'how many', '20')
      .action(async (flags: CommonFlags & { limit: string }, command: Command) => {
        const limit = positive(flags.limit, '--limit'); // refused before connecting to anything
        await withInspector(command, async (inspector, json) => {
          const rows = await read(inspector, limit);
          out(json ? toJson(rows) : table(rows));
        });
      });
  listing('top', 'the grains with the most waiting messages', (i, n) => i.topGrains(n), topTable);
  listing('dead-letters', 'messages set aside after killing or hanging their activation', (i, n) => i.deadLetters(n), deadLetterTable);
}

async function withInspector(command: Command, body: (inspector: ClusterInspector, json: boolean) => Promise<void>): Promise<void> {
  const flags = command.optsWithGlobals<CommonFlags>();
  const options: InspectOptions = {};
  if (flags.redis !== undefined) options.redis = flags.redis;
  if (flags.prefix !== undefined) options.keyPrefix = flags.prefix;
  const inspector = await ClusterInspector.open(options);
  try {
    await body(inspector, flags.json === true);
  } finally {
    await inspector.close();
  }
}

function siloTable(silos: Awaited<ReturnType<ClusterInspector['silos']>>): string {
  if (silos.length === 0) return 'No silos in the membership table (wrong --prefix or --redis?).';
  return formatTable(silos, [
    { heading: 'SILO', cell: (s) => s.id },
    { heading: 'STATUS', cell: (s) => s.status },
    { heading: 'HEARTBEAT', cell: (s) => `${formatAge(s.heartbeatAgeMs)} ago`, align: 'right' },
    { heading: 'ACTIVATIONS', cell: (s) => s.activations, align: 'right' },
    { heading: 'HOST', cell: (s) => `${s.host}:${s.pid}` },
    { heading: 'TYPES', cell: (s) => s.types.join(',') },
  ]);
}

function topTable(top: Awaited<ReturnType<ClusterInspector['topGrains']>>): string {
  if (top.length === 0) return 'No active grains.';
  return formatTable(top, [
    { heading: 'GRAIN', cell: (g) => g.grain },
    { heading: 'WAITING', cell: (g) => g.waiting, align: 'right' },
    {
      heading: 'OWNER',
      cell: (g) =>
        g.owner === undefined ? '-' : g.ownerStatus === 'active' || g.ownerStatus === undefined ? g.owner : `${g.owner} (${g.ownerStatus})`,
    },
  ]);
}

function deadLetterTable(letters: Awaited<ReturnType<ClusterInspector['deadLetters']>>): string {
  if (letters.length === 0) return 'No dead letters.';
  return formatTable(letters, [
    { heading: 'ID', cell: (l) => l.id },
    { heading: 'AT', cell: (l) => l.at.toISOString() },
    { heading: 'GRAIN', cell: (l) => `${l.grainType}/${l.grainKey}` },
    { heading: 'METHOD', cell: (l) => l.method },
    { heading: 'ATTEMPTS', cell: (l) => l.attempts, align: 'right' },
    { heading: 'REASON', cell: (l) => l.reason },
  ]);
}

function grainText(grain: GrainView): string {
  const owner =
    grain.owner === undefined ? 'not active' : `${grain.owner.silo} (${grain.owner.siloStatus ?? 'gone'}), epoch ${grain.owner.epoch}`;
  const { waiting, active, failed, delayed } = grain.mailbox;
  const lines = [
    `grain    ${grain.grain}`,
    `owner    ${owner}`,
    `mailbox  ${waiting} waiting, ${active} in progress, ${failed} failed, ${delayed} delayed`,
  ];
  if (grain.waiting.length > 0) {
    lines.push(
      '',
      'waiting (oldest first)',
      formatTable(grain.waiting, [
        { heading: 'ID', cell: (m) => m.id },
        { heading: 'METHOD', cell: (m) => m.method },
        { heading: 'SENT', cell: (m) => m.sentAt?.toISOString() ?? '-' },
        { heading: 'CORRELATION', cell: (m) => m.correlationId ?? '-' },
      ]),
    );
  }
  if (grain.failed.length > 0) {
    lines.push(
      '',
      'failed (newest first)',
      formatTable(grain.failed, [
        { heading: 'ID', cell: (m) => m.id },
        { heading: 'METHOD', cell: (m) => m.method },
        { heading: 'REASON', cell: (m) => m.reason ?? '' },
      ]),
    );
  }
  for (const reminder of grain.reminders)
    lines.push(`reminder ${reminder.name} -> ${reminder.method} ${JSON.stringify(reminder.schedule)}`);
  const fields = Object.entries(grain.state);
  lines.push('', fields.length === 0 ? 'state    (nothing persisted)' : 'state');
  for (const [field, value] of fields) lines.push(`  ${field} = ${JSON.stringify(value, jsonReplacer)}`);
  return lines.join('\n');
}

function positive(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive whole number, got "${text}"`);
  return n;
}

/** JSON that keeps Maps, Sets and BigInts readable. */
function toJson(value: unknown): string {
  return JSON.stringify(value, jsonReplacer, 2);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (typeof value === 'bigint') return value.toString();
  return value;
}
