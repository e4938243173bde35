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
        ['throughput', `${result.throughputPerSecond.toFixed(0)} msg/s`],
        ['latency p50 / p90 / p99 / p99.9', `${l.p50.toFixed(2)} / ${l.p90.toFixed(2)} / ${l.p99.toFixed(2)} / ${l.p999.toFixed(2)} ms`],
        ['latency max / mean', `${l.max.toFixed(2)} / ${l.mean.toFixed(2)} ms`],
        ['errors', Object.entries(result.errorsByType).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'],
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
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redgrain load test: ${esc(result.plan.type ?? '')}.${esc(result.plan.method)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}pre{background:#f6f6f6;padding:1rem;overflow:auto}
h2{margin-top:2rem;font-size:1.1rem}svg{background:#fff;border:1px solid #ddd}.legend span{margin-right:1rem}</style></head>
<body><h1>redgrain load test</h1>
<pre>${summary}</pre>
<h2>Throughput (acknowledged messages per second)</h2>
${chart(timeline, [{ label: 'msg/s', color: '#2a6fdb', value: (t) => t.sent }])}
<h2>Latency over time (ms)</h2>
${chart(timeline, [
  { label: 'p50', color: '#2a9d5c', value: (t) => t.p50Ms },
  { label: 'p99', color: '#d1495b', value: (t) => t.p99Ms },
])}
<h2>Mailbox depth (messages waiting in the target grains' mailboxes)</h2>
${chart(timeline, [{ label: 'waiting', color: '#8a5cd1', value: (t) => t.mailboxDepth }])}
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

function chart(timeline: LoadTestSecond[], series: Series[]): string {
  const width = 800;
  const height = 220;
  const pad = 40;
  const max = Math.max(1, ...timeline.flatMap((t) => series.map((s) => s.value(t))));
  const x = (i: number) => pad + (timeline.length <= 1 ? 0 : (i / (timeline.length - 1)) * (width - 2 * pad));
  const y = (v: number) => height - pad + 10 - (v / max) * (height - pad - 10);
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${timeline.map((t, i) => `${x(i).toFixed(1)},${y(s.value(t)).toFixed(1)}`).join(' ')}"/>`)
    .join('');
  const axis = `<line x1="${pad}" y1="${height - pad + 10}" x2="${width - pad}" y2="${height - pad + 10}" stroke="#999"/>
<line x1="${pad}" y1="10" x2="${pad}" y2="${height - pad + 10}" stroke="#999"/>
<text x="4" y="16" font-size="11">${formatNumber(max)}</text><text x="4" y="${height - pad + 10}" font-size="11">0</text>
<text x="${width - pad}" y="${height - 8}" font-size="11" text-anchor="end">${timeline.length} s</text>`;
  const legend = series.map((s) => `<span style="color:${s.color}">■ ${s.label}</span>`).join('');
  return `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">${axis}${lines}</svg><div class="legend">${legend}</div>`;
}

function formatNumber(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(2);
}
