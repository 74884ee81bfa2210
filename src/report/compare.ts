/** The outputs of `gelora compare`: the markdown table (results.md) and report.html. */
import { lineChartSvg, smooth } from './plots.js';
import type { LogCurves } from './curves.js';

/** One method's row of the comparison: mean ± std of the selection metric over seeds, and its costs. */
export interface SummaryRow { method: string; mean: number; std: number; trainable_params: number; train_seconds: number; peak_rss_mb: number; runs: number }

/** The markdown table; every number is printed from the same values results.json holds. */
export function markdownTable(task: string, metric: string, rows: SummaryRow[]): string {
  const lines = [`| method | ${metric} (mean ± std) | runs | trainable params | train time (s, mean) | peak memory (MB) |`, '|---|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.method} | ${r.mean.toFixed(4)} ± ${r.std.toFixed(4)} | ${r.runs} | ${r.trainable_params} | ${r.train_seconds.toFixed(1)} | ${r.peak_rss_mb.toFixed(0)} |`);
  return `### ${task}\n\n${lines.join('\n')}\n`;
}

/** A markdown table as an HTML table (first row header). */
export function htmlTable(md: string): string {
  const rows = md.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---'));
  return `<table>${rows.map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i ? `<td>${c.trim()}</td>` : `<th>${c.trim()}</th>`)).join('')}</tr>`).join('')}</table>`;
}

/** Every table of a markdown text as an HTML table, and its other paragraphs as text (headings dropped: the page has its own). */
export function htmlTables(md: string): string {
  return md.split(/\n\s*\n/).map((block) => block.trim()).filter((b) => b && !b.startsWith('#'))
    .map((b) => (b.startsWith('|') ? htmlTable(b) : `<p>${esc(b)}</p>`)).join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The summary table's rows of `a` and `b` as one row where both trained the same adapter (uniform ranks). */
export function mergeSameRows(md: string, a: string, b: string): string {
  const lines = md.split('\n');
  if (!lines.some((l) => l.startsWith(`| ${a} |`)) || !lines.some((l) => l.startsWith(`| ${b} |`))) return md;
  return lines.filter((l) => !l.startsWith(`| ${a} |`)).map((l) => (l.startsWith(`| ${b} |`) ? l.replace(`| ${b} |`, `| ${b} = ${a} (same ranks: identical runs) |`) : l)).join('\n');
}

export interface CompareReport {
  task: string; metric: string; model: string; seeds: number; budgetNote: string;
  /** results.md's text */
  markdown: string;
  methods: string[];
  /** every run's learning curves, by method, in seed order */
  curves: Record<string, { seed: number; curves: LogCurves }[]>;
  /** seed-0 ranks per block of the methods that have them */
  ranks: { method: string; ranks: number[] }[];
  /** the analysis' profile.svg, '' without one */
  profileSvg: string;
  /** the paired comparisons (markdown), '' without them */
  significance?: string;
  /** GeLoRA's allocation is uniform: what that means for the rows (shown first), and the methods whose rows are the same runs */
  uniformNote?: string; sameRows?: [string, string];
  /** the budget curve (budget.svg) and its table, when it was run */
  budgetSvg?: string; budgetMarkdown?: string;
}

/** report.html: the table, the ranks, the ID profile and every run's learning curves. */
export function compareReportHtml(r: CompareReport): string {
  const curveSvgs = r.methods.map((m) => {
    const seeds = r.curves[m] ?? [];
    return lineChartSvg(seeds.map((s) => ({ name: `seed ${s.seed}`, points: s.curves.metric })), { title: `${m}: dev ${r.metric}`, xLabel: 'optimizer step', yLabel: r.metric, width: 560, height: 260 }) +
      lineChartSvg(seeds.map((s) => ({ name: `seed ${s.seed}`, points: smooth(s.curves.loss) })), { title: `${m}: train loss (smoothed)`, xLabel: 'optimizer step', yLabel: 'loss', width: 560, height: 260 });
  });
  const ranksLine = r.ranks.map((x) => `<li><b>${x.method}</b>: ranks per block ${x.ranks.join(', ')}</li>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>gelora compare: ${r.task}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}svg{margin:8px 8px 8px 0}</style></head><body>
<h1>gelora compare: ${r.task}</h1><p>Model <code>${r.model}</code>; selection metric <b>${r.metric}</b> on dev; ${r.seeds} seed(s); ${r.budgetNote}</p>
${r.uniformNote ? `<p style="background:#fef3c7;padding:8px 12px"><b>${esc(r.uniformNote)}</b></p>` : ''}
${r.budgetSvg ? `<h2>Budget curve</h2>${r.budgetSvg}${htmlTables(r.budgetMarkdown ?? '')}` : ''}
${r.budgetSvg ? '<h2>At the comparison\'s budget</h2>' : ''}${htmlTables(r.sameRows ? mergeSameRows(r.markdown, ...r.sameRows) : r.markdown)}${r.significance ? htmlTables(r.significance) : ''}<ul>${ranksLine}</ul>${r.profileSvg ? `<h2>Intrinsic-dimension profile and GeLoRA ranks</h2>${r.profileSvg}` : ''}<h2>Learning curves</h2>${curveSvgs.map((s) => `<div>${s}</div>`).join('')}
</body></html>\n`;
}
