/** A column of a text table: its heading and how to read a row's cell. */
export interface Column<T> {
  heading: string;
  cell: (row: T) => string | number;
  align?: 'left' | 'right';
}

/** Renders rows as an aligned plain-text table (no colours, so it pipes cleanly). */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((column) => String(column.cell(row))));
  const widths = columns.map((column, i) => Math.max(column.heading.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => (columns[i]?.align === 'right' ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.heading)), ...cells.map(line)].join('\n');
}

/** A duration in ms as a short human string: 850 ms, 12.3 s, 4 min, 2 h. */
export function formatAge(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
