import type { LoadTestResult, LoadTestSecond } from './load-test.ts';
import { formatTable } from './table.ts';

/** The run as a plain-text summary for a terminal. */
export function loadTestSummary(result: LoadTestResult): string {
  const { plan, latencyMs: l, exactlyOnce: e } = result;
  const shape = `${plan.keys === 1 ? 'one hot grain' : `${plan.keys} grains (${plan.distribution})`}, ${plan.mode}, ${
    plan.rate !== undefined ? `${plan.rate} msg/s` : `concurrency ${plan.concurrency}`
  }`;
  const lines = [
    `${plan.type ?? 'grain'}.${plan.method}: ${shape}, ${plan.silos > 0 ? `${plan.silos} silo(s) started here` : 'running silos'}`,
    '',
    formatTable(
      [
        ['duration', `${(result.durationMs / 1000).toFixed(1)} s`],
        ['messages acknowledged', `${result.acknowledged} of ${result.attempted}`],
        [
          'warm-up (left out below)',
          result.warmup.messages === 0 ? 'none' : `first ${result.warmup.messages} messages, ${(result.warmup.ms / 1000).toFixed(1)} s`,
        ],
        ['throughput', `${result.throughputPerSecond.toFixed(0)} msg/s`],
        ['latency p50 / p90 / p99 / p99.9', `${l.p50.toFixed(2)} / ${l.p90.toFixed(2)} / ${l.p99.toFixed(2)} / ${l.p999.toFixed(2)} ms`],
        ['latency max / mean', `${l.max.toFixed(2)} / ${l.mean.toFixed(2)} ms`],
        [
          'errors',
          Object.entries(result.errorsByType)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ') || 'none',
        ],
        ['peak mailbox depth', String(Math.max(0, ...result.timeline.map((t) => t.mailboxDepth)))],
        [
          'exactly once',
          e.checked
            ? `${e.duplicated === 0 && e.lost === 0 ? 'yes' : 'NO'}: processed ${e.processed}, acknowledged ${e.expected}, lost ${e.lost}, duplicated ${e.duplicated}${e.pending ? `, still queued ${e.pending}` : ''}`
            : (e.note ?? 'not checked'),
        ],
      ],
      [
        { heading: 'MEASURE', cell: (r) => r[0] as string },
        { heading: 'VALUE', cell: (r) => r[1] as string },
      ],
    ),
  ];
  return lines.join('\n');
}

/** A self-contained HTML report (inline SVG charts, no scripts or network) for people. */
export function loadTestHtml(result: LoadTestResult): string {
  const { timeline } = result;
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
  const summary = esc(loadTestSummary(result));
  const warmupSeconds = result.warmup.ms / 1000;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redgrain load test: ${esc(result.plan.type ?? '')}.${esc(result.plan.method)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}pre{background:#f6f6f6;padding:1rem;overflow:auto}
h2{margin-top:2rem;font-size:1.1rem}svg{background:#fff;border:1px solid #ddd}.legend span{margin-right:1rem}</style></head>
<body><h1>redgrain load test</h1>
<pre>${summary}</pre>
<h2>Throughput (acknowledged messages per second)</h2>
${chart(timeline, [{ label: 'msg/s', color: '#2a6fdb', value: (t) => t.sent }], 'messages / s', warmupSeconds)}
<h2>Latency over time (ms)</h2>
${chart(
  timeline,
  [
    { label: 'p50', color: '#2a9d5c', value: (t) => t.p50Ms },
    { label: 'p99', color: '#d1495b', value: (t) => t.p99Ms },
  ],
  'latency (ms)',
  warmupSeconds,
)}
<h2>Mailbox depth (messages waiting in the target grains' mailboxes)</h2>
${chart(timeline, [{ label: 'waiting', color: '#8a5cd1', value: (t) => t.mailboxDepth }], 'messages waiting', warmupSeconds)}
<h2>Raw result</h2>
<pre>${esc(JSON.stringify(result, null, 2))}</pre>
</body></html>
`;
}

interface Series {
  label: string;
  color: string;
  value: (t: LoadTestSecond) => number;
}

/**
 * A line chart as inline SVG: y gridlines at round values with their labels, x ticks in seconds,
 * axis titles, and the warm-up shaded (it is in the chart but not in the figures above).
 */
function chart(timeline: LoadTestSecond[], series: Series[], yTitle: string, warmupSeconds: number): string {
  const width = 800;
  const height = 260;
  const left = 64;
  const right = 16;
  const top = 12;
  const bottom = 44;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const seconds = Math.max(1, timeline.length);
  const yTicks = niceTicks(Math.max(...timeline.flatMap((t) => series.map((s) => s.value(t))), 0));
  const yMax = yTicks[yTicks.length - 1] as number;
  const x = (second: number) => left + (second / seconds) * plotW;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const parts: string[] = [];
  if (warmupSeconds > 0) {
    const end = x(Math.min(seconds, warmupSeconds));
    parts.push(`<rect class="warmup" x="${left}" y="${top}" width="${(end - left).toFixed(1)}" height="${plotH}" fill="#f1f1f1"/>`);
    parts.push(`<text x="${(left + 4).toFixed(1)}" y="${top + 12}" font-size="11" fill="#777">warm-up</text>`);
  }
  for (const v of yTicks) {
    parts.push(`<line class="grid" x1="${left}" y1="${y(v).toFixed(1)}" x2="${width - right}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/>`);
    parts.push(
      `<text class="y-tick" x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${formatNumber(v)}</text>`,
    );
  }
  for (const second of niceTicks(seconds).filter((s) => s <= seconds)) {
    parts.push(
      `<line class="grid" x1="${x(second).toFixed(1)}" y1="${top}" x2="${x(second).toFixed(1)}" y2="${top + plotH}" stroke="#f0f0f0"/>`,
    );
    parts.push(
      `<text class="x-tick" x="${x(second).toFixed(1)}" y="${top + plotH + 16}" font-size="11" text-anchor="middle">${second}</text>`,
    );
  }
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#888"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#888"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 6}" font-size="12" text-anchor="middle">seconds since start</text>`);
  parts.push(
    `<text x="14" y="${top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${yTitle}</text>`,
  );
  // Each second's point sits at the end of that second.
  for (const s of series) {
    const points = [
      `${x(0).toFixed(1)},${y(timeline.length === 0 ? 0 : s.value(timeline[0] as LoadTestSecond)).toFixed(1)}`,
      ...timeline.map((t, i) => `${x(i + 1).toFixed(1)},${y(s.value(t)).toFixed(1)}`),
    ];
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.join(' ')}"/>`);
  }
  const legend = series.map((s) => `<span style="color:${s.color}">■ ${s.label}</span>`).join('');
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">${parts.join('')}</svg><div class="legend">${legend}</div>`;
}

/** Round tick values from 0 covering `max`: steps of 1, 2 or 5 times a power of ten, 4 to 8 of them. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = 0; v < max + step; v += step) {
    ticks.push(Number(v.toPrecision(12)));
    if (v >= max) break;
  }
  return ticks;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n >= 100 ? n.toFixed(0) : String(Number(n.toPrecision(3)));
}
