/**
 * The budget curve: dev score against trainable parameters (log scale), one line per method, each
 * point the mean over seeds with a ±1 std bar. It shows what a single table row cannot: whether an
 * allocation beats uniform LoRA at the same parameter count, or only moves along LoRA's curve.
 */
import { ticks } from './plots.js';

export interface BudgetPoint { params: number; mean: number; std: number; runs: number; label?: string }
export interface BudgetSeries { method: string; points: BudgetPoint[] }

const COLORS: Record<string, string> = { lora: '#2563eb', gelora: '#f59e0b', adalora: '#10b981', sora: '#8b5cf6', full: '#ef4444' };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function budgetCurveSvg(series: BudgetSeries[], o: { title: string; metric: string }): string {
  const W = 720, H = 380, left = 64, right = 140, top = 40, bottom = 52, pw = W - left - right, ph = H - top - bottom;
  const pts = series.flatMap((s) => s.points);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`, `<text x="${left}" y="22" font-size="14" font-weight="600">${esc(o.title)}</text>`];
  if (pts.length === 0) return [...out, `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no runs</text>`, '</svg>'].join('\n');
  const lx0 = Math.floor(Math.log10(Math.min(...pts.map((p) => p.params)))), lx1 = Math.ceil(Math.log10(Math.max(...pts.map((p) => p.params))) + 1e-9);
  const x = (p: number): number => left + ((Math.log10(p) - lx0) / Math.max(lx1 - lx0, 1)) * pw;
  const yT = ticks(Math.min(...pts.map((p) => p.mean - p.std)), Math.max(...pts.map((p) => p.mean + p.std)), 5);
  const y = (v: number): number => top + ph - ((v - yT[0]) / (yT[yT.length - 1] - yT[0] || 1)) * ph;
  for (const t of yT) out.push(`<line x1="${left}" x2="${left + pw}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e7eb"/><text x="${left - 8}" y="${y(t) + 4}" text-anchor="end" fill="#555">${Number(t.toPrecision(6))}</text>`);
  for (let e = lx0; e <= Math.max(lx1, lx0 + 1); e++) out.push(`<line x1="${x(10 ** e)}" x2="${x(10 ** e)}" y1="${top}" y2="${top + ph}" stroke="#f1f5f9"/><text x="${x(10 ** e)}" y="${top + ph + 16}" text-anchor="middle" fill="#555">1e${e}</text>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#333">trainable parameters (log scale)</text>`);
  out.push(`<text x="16" y="${top + ph / 2}" transform="rotate(-90 16 ${top + ph / 2})" text-anchor="middle" fill="#333">dev ${esc(o.metric)} (mean ± std)</text>`);
  series.forEach((s, i) => {
    const c = COLORS[s.method] ?? ['#0ea5e9', '#84cc16', '#ec4899'][i % 3];
    const ps = [...s.points].sort((a, b) => a.params - b.params);
    out.push(`<path d="${ps.map((p, j) => `${j ? 'L' : 'M'}${x(p.params).toFixed(1)},${y(p.mean).toFixed(1)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="1.8"/>`);
    for (const p of ps) {
      const cx = x(p.params);
      out.push(`<line x1="${cx}" x2="${cx}" y1="${y(p.mean - p.std)}" y2="${y(p.mean + p.std)}" stroke="${c}"/>`);
      out.push(`<circle cx="${cx}" cy="${y(p.mean)}" r="3.5" fill="${c}"><title>${esc(s.method)}${p.label ? ' ' + esc(p.label) : ''}: ${p.params} params, ${p.mean.toFixed(4)} ± ${p.std.toFixed(4)} (${p.runs} runs)</title></circle>`);
    }
    out.push(`<line x1="${W - right + 12}" x2="${W - right + 32}" y1="${top + 8 + i * 18}" y2="${top + 8 + i * 18}" stroke="${c}" stroke-width="2"/><text x="${W - right + 38}" y="${top + 12 + i * 18}" fill="#333">${esc(s.method)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
