/** Small self-contained SVG charts (no scripts, no external assets) for reports and analysis outputs. */

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number): string => (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : String(Number(v.toFixed(2))));

/** "Nice" axis ticks covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.ceil(step));
  const out: number[] = [];
  const end = Math.ceil(hi / step - 1e-9) * step; // the last tick covers hi
  for (let v = Math.floor(lo / step) * step; v <= end + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export interface ProfilePoint { layer: number; id: number; low: number; high: number }

/**
 * Two aligned panels: the intrinsic dimension of every layer's hidden states with its interval,
 * and the LoRA rank of each block drawn between the layers it maps.
 */
export function profileSvg(profile: ProfilePoint[], ranks: number[], title: string): string {
  const W = 760, left = 64, right = 24, plotW = W - left - right;
  const top1 = 48, h1 = 220, top2 = top1 + h1 + 64, h2 = 130, H = top2 + h2 + 48;
  const L = profile.length - 1;
  const x = (layer: number): number => left + (L === 0 ? plotW / 2 : (layer / L) * plotW);
  const yT = ticks(Math.min(0, ...profile.map((p) => p.low)), Math.max(...profile.map((p) => p.high)) * 1.05);
  const y1 = (v: number): number => top1 + h1 - ((v - yT[0]) / (yT[yT.length - 1] - yT[0])) * h1;
  const rT = ticks(0, Math.max(1, ...ranks), 4, true);
  const y2 = (v: number): number => top2 + h2 - (v / rT[rT.length - 1]) * h2;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="600">${esc(title)}</text>`);
  // panel 1: intrinsic dimension
  for (const t of yT) out.push(`<line x1="${left}" x2="${W - right}" y1="${y1(t)}" y2="${y1(t)}" stroke="#e5e7eb"/><text x="${left - 8}" y="${y1(t) + 4}" text-anchor="end" fill="#555">${fmt(t)}</text>`);
  out.push(`<text x="16" y="${top1 + h1 / 2}" transform="rotate(-90 16 ${top1 + h1 / 2})" text-anchor="middle" fill="#333">intrinsic dimension</text>`);
  const path = profile.map((p, i) => `${i ? 'L' : 'M'}${x(p.layer).toFixed(1)},${y1(p.id).toFixed(1)}`).join(' ');
  out.push(`<path d="${path}" fill="none" stroke="#2563eb" stroke-width="2"/>`);
  for (const p of profile) {
    const cx = x(p.layer);
    out.push(`<line x1="${cx}" x2="${cx}" y1="${y1(p.low)}" y2="${y1(p.high)}" stroke="#2563eb" stroke-width="1.5"/>`);
    out.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${y1(p.low)}" y2="${y1(p.low)}" stroke="#2563eb"/><line x1="${cx - 4}" x2="${cx + 4}" y1="${y1(p.high)}" y2="${y1(p.high)}" stroke="#2563eb"/>`);
    out.push(`<circle cx="${cx}" cy="${y1(p.id)}" r="3.5" fill="#2563eb"><title>layer ${p.layer}: ${p.id.toFixed(3)} [${p.low.toFixed(3)}, ${p.high.toFixed(3)}]</title></circle>`);
    out.push(`<text x="${cx}" y="${top1 + h1 + 16}" text-anchor="middle" fill="#555">${p.layer}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${top1 + h1 + 34}" text-anchor="middle" fill="#333">hidden state (0 = embeddings, i = output of block i)</text>`);
  // panel 2: ranks per block
  for (const t of rT) out.push(`<line x1="${left}" x2="${W - right}" y1="${y2(t)}" y2="${y2(t)}" stroke="#e5e7eb"/><text x="${left - 8}" y="${y2(t) + 4}" text-anchor="end" fill="#555">${fmt(t)}</text>`);
  out.push(`<text x="16" y="${top2 + h2 / 2}" transform="rotate(-90 16 ${top2 + h2 / 2})" text-anchor="middle" fill="#333">LoRA rank</text>`);
  const bw = Math.max(4, Math.min(40, (plotW / Math.max(L, 1)) * 0.6));
  ranks.forEach((r, i) => {
    const cx = (x(i) + x(i + 1)) / 2;
    out.push(`<rect x="${cx - bw / 2}" y="${y2(r)}" width="${bw}" height="${top2 + h2 - y2(r)}" fill="#f59e0b"><title>block ${i + 1}: rank ${r}</title></rect>`);
    out.push(`<text x="${cx}" y="${y2(r) - 4}" text-anchor="middle" fill="#333">${r}</text>`);
    out.push(`<text x="${cx}" y="${top2 + h2 + 16}" text-anchor="middle" fill="#555">${i + 1}</text>`);
  });
  out.push(`<text x="${left + plotW / 2}" y="${top2 + h2 + 34}" text-anchor="middle" fill="#333">block (maps hidden state i-1 to i)</text>`);
  out.push('</svg>');
  return out.join('\n');
}

export interface Series { name: string; points: [number, number][]; color?: string; dashed?: boolean }

const PALETTE = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#0ea5e9', '#84cc16', '#ec4899'];

/** A line chart of several series sharing x (e.g. step) with a legend. */
export function lineChartSvg(series: Series[], o: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): string {
  const W = o.width ?? 640, H = o.height ?? 320, left = 64, right = 150, top = 40, bottom = 48, pw = W - left - right, ph = H - top - bottom;
  const all = series.flatMap((s) => s.points);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`, `<text x="${left}" y="22" font-size="14" font-weight="600">${esc(o.title)}</text>`];
  if (all.length === 0) { out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data</text></svg>`); return out.join('\n'); }
  const xT = ticks(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])), 6);
  const yT = ticks(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])), 5);
  const x = (v: number): number => left + ((v - xT[0]) / (xT[xT.length - 1] - xT[0] || 1)) * pw;
  const y = (v: number): number => top + ph - ((v - yT[0]) / (yT[yT.length - 1] - yT[0] || 1)) * ph;
  for (const t of yT) out.push(`<line x1="${left}" x2="${left + pw}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e7eb"/><text x="${left - 8}" y="${y(t) + 4}" text-anchor="end" fill="#555">${fmt(t)}</text>`);
  for (const t of xT) out.push(`<text x="${x(t)}" y="${top + ph + 16}" text-anchor="middle" fill="#555">${fmt(t)}</text>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 10}" text-anchor="middle" fill="#333">${esc(o.xLabel)}</text>`);
  out.push(`<text x="16" y="${top + ph / 2}" transform="rotate(-90 16 ${top + ph / 2})" text-anchor="middle" fill="#333">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    if (s.points.length <= 40) for (const p of s.points) out.push(`<circle cx="${x(p[0])}" cy="${y(p[1])}" r="2.5" fill="${color}"/>`);
    out.push(`<line x1="${W - right + 12}" x2="${W - right + 32}" y1="${top + 8 + i * 18}" y2="${top + 8 + i * 18}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/><text x="${W - right + 38}" y="${top + 12 + i * 18}" fill="#333">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Exponential moving average, for noisy per-step losses. */
export function smooth(points: [number, number][], beta = 0.9): [number, number][] {
  let avg = 0;
  return points.map(([x, v], i) => { avg = beta * avg + (1 - beta) * v; return [x, avg / (1 - beta ** (i + 1))]; });
}
