#!/usr/bin/env node
// Writes experiments/sensitivity/RESULTS.md, stability.svg and samples.svg from results/*.json (sensitivity.mjs)
// and results/crosscheck.json (run.sh): every number in them is read from those files. READING.md, written by
// hand from a run, is included as the reading.
// Usage: node experiments/sensitivity/results-md.mjs [results dir] [output dir]   (needs `npx tsc -p .` for the plots)
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineChartSvg } from '../../dist/src/report/plots.js';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = process.argv[2] ?? join(here, 'results');
const outDir = process.argv[3] ?? here;
const TASKS = ['SST-2', 'brown-genre', 'wordnet-category'];
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
function writeAtomic(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', text);
  renameSync(file + '.tmp', file);
}
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pct = (x) => `${Math.round(x * 100)}%`;
const f1 = (x) => x.toFixed(1), f2 = (x) => x.toFixed(2);

const tasks = TASKS.filter((t) => existsSync(join(resultsDir, `${t}.json`))).map((t) => readJson(join(resultsDir, `${t}.json`)));
if (tasks.length === 0) throw new Error(`${resultsDir}: no results (run experiments/sensitivity/run.sh first)`);
const cross = existsSync(join(resultsDir, 'crosscheck.json')) ? readJson(join(resultsDir, 'crosscheck.json')) : null;

// the settings of the one-factor-at-a-time study, in table order (seed and precision-by-pooling rows have their own tables)
const mainRows = (t) => t.rows.filter((r) => r.factor !== 'seed' && r.factor !== 'precision-pooling');
const label = (r) => (r.factor === 'defaults' ? 'defaults' : r.setting);
const meanShare = (r) => r.bootstrap.blocks.reduce((a, b) => a + b.share, 0) / r.bootstrap.blocks.length;
const minShare = (r) => Math.min(...r.bootstrap.blocks.map((b) => b.share));
const capped = (t, r) => r.factor === 'samples' && r.points < r.options.samples;

const md = [];
const B = tasks[0].bootstrap_resamples;
md.push('# Rank sensitivity of the GeLoRA analysis', '');
// compute per task: each cached forward pass once, plus every setting's estimate (timed when it ran, also for rows reused later)
const compute = (t) => {
  const fw = new Map(t.rows.map((r) => [r.cache, r.forward_seconds]));
  return { forward: [...fw.values()].reduce((a, x) => a + x, 0), estimate: t.rows.reduce((a, r) => a + r.estimate_seconds, 0) };
};
md.push(`Produced by \`bash experiments/sensitivity/run.sh\` (sensitivity.mjs, then this file by results-md.mjs), model \`${tasks[0].model}\`; compute per task (forward passes + estimates, wall seconds as measured on this 2-core machine while it was shared with other work, run with \`nice -n 10\`): ${tasks.map((t) => { const c = compute(t); return `${t.task} ${Math.round(c.forward)} + ${Math.round(c.estimate)} s`; }).join(', ')}. Results written ${tasks.map((t) => t.date.slice(0, 16).replace('T', ' ')).join(', ')} UTC.`, '');
md.push('**Method.** Every setting moves one factor away from `gelora analyze`\'s defaults (' +
  Object.entries(tasks[0].defaults).map(([k, v]) => `${k} ${v}`).join(', ') + '). For each, the pooled hidden states of every layer come from the library\'s ' +
  '`collectLayerPoints` (the code `gelora analyze` runs, the same options, cached per task, pooling, sample count, precision and seed); the profile d_0..d_L and its ' +
  'per-layer bootstrap (100 resamples of the neighbour ratios) come from `idProfile`, and the ranks from the rule r_i = max(ceil(d_i − d_{i−1}), 0) + 1, as analyze writes them ("rule ranks"). ' +
  `The **rank bootstrap** (\`bootstrapRanks\` in src/gelora/ranks.ts) draws the input rows with replacement ${B} times, the same rows in every layer (a rank depends on the difference of two layers' estimates, which share their inputs), ` +
  're-estimates every layer from the drawn rows\' neighbour ratios and applies the rule; per block it reports the modal rank and the share of resamples giving it ("2 (80%)"). ' +
  'Like idProfile\'s interval, it resamples ratios without searching neighbours again, so it measures the estimator\'s noise on this sample; the seed table below measures what another sample of the inputs gives. ' +
  'Error-aware mode takes each resample\'s own intervals (100 inner resamples per layer). "Uniform" = every block gets the same rank.', '');
md.push('Data: ' + tasks.map((t) => `${t.task}: ${t.source}, max length ${t.max_length}`).join('; ') + '. Under tokens pooling the points are tokens (about 10,000, `--max-tokens`), and the rows drawn are tokens.', '');

md.push('## Rank stability by setting', '');
md.push(`![modal rank and its bootstrap share per block and setting](stability.svg)`, '');
md.push('Rule ranks: what `gelora analyze` writes for the setting. Bootstrap: modal rank (share of resamples) per block. Mean share: the per-block shares averaged; min: the least stable block.', '');
for (const t of tasks) {
  const L = t.rows[0].ranks.length;
  md.push(`### ${t.task}`, '');
  md.push(`| setting | points | rule ranks | bootstrap modal rank (share), blocks 1..${L} | mean share | min share | uniform in resamples | modal allocation (share) |`);
  md.push('|---|---|---|---|---|---|---|---|');
  for (const r of mainRows(t)) {
    md.push(`| ${label(r)}${capped(t, r) ? ` (capped: ${r.examples} inputs)` : ''} | ${r.points} | ${r.ranks.join(', ')}${r.uniform ? ' (uniform)' : ''} | ${r.bootstrap.blocks.map((b) => `${b.mode} (${pct(b.share)})`).join(', ')} | ${pct(meanShare(r))} | ${pct(minShare(r))} | ${pct(r.bootstrap.uniform_share)} | ${r.bootstrap.pattern_mode.join(', ')} (${pct(r.bootstrap.pattern_share)}) |`);
  }
  md.push('');
}

md.push('## Profiles', '');
md.push('d_i ± bootstrap standard deviation (idProfile, 100 resamples) by layer, 0 = embeddings.', '');
for (const t of tasks) {
  md.push(`### ${t.task}`, '');
  const L = t.rows[0].profile.length;
  md.push(`| setting | ${Array.from({ length: L }, (_, l) => `d_${l}`).join(' | ')} |`);
  md.push(`|---|${'---|'.repeat(L)}`);
  for (const r of mainRows(t)) md.push(`| ${label(r)} | ${r.profile.map((p) => (p.collapsed ? '0 (collapsed)' : `${f1(p.id)} ± ${f2(p.error)}`)).join(' | ')} |`);
  md.push('');
}
md.push('![ID profile by number of samples](samples.svg)', '');

md.push('## Another sample of the inputs (seeds)', '');
md.push('The defaults, and the settings that could replace them, with the analysis sample drawn with other seeds (demo tasks: another sample of the training split; ' +
  'SST-2: another seeded 2,000-sentence training sample, as `--max-train 2000 --seed S` would draw, all of it analysed). This is the variation a user meets; the rank bootstrap above resamples one sample\'s ratios. ' +
  'Across seeds: per block, the share of seeds at the most common rank, averaged over blocks ("agreement"); the number of distinct allocations; the seeds whose allocation is uniform. ' +
  'Bootstrap: the mean per-block share of seed 0\'s rank bootstrap, for comparison.', '');
md.push('| task | setting | rule ranks by seed (0, 1, ...) | agreement across seeds | distinct allocations | uniform | bootstrap mean share (seed 0) |', '|---|---|---|---|---|---|---|');
const sameBut = (a, b) => Object.keys(a).every((k) => k === 'seed' || a[k] === b[k]);
const seedGroups = [];
for (const t of tasks) {
  const heads = mainRows(t).filter((r) => t.rows.some((x) => x.factor === 'seed' && sameBut(x.options, r.options)));
  for (const h of heads) {
    const rows = [h, ...t.rows.filter((x) => x.factor === 'seed' && sameBut(x.options, h.options))];
    const L = h.ranks.length;
    const agree = Array.from({ length: L }, (_, i) => {
      const c = {};
      for (const r of rows) c[r.ranks[i]] = (c[r.ranks[i]] ?? 0) + 1;
      return Math.max(...Object.values(c)) / rows.length;
    }).reduce((a, x) => a + x, 0) / L;
    const distinct = new Set(rows.map((r) => r.ranks.join())).size;
    seedGroups.push({ task: t.task, setting: label(h), agree, distinct, n: rows.length });
    md.push(`| ${t.task} | ${label(h)} | ${rows.map((r) => r.ranks.join(',')).join(' / ')} | ${pct(agree)} | ${distinct} of ${rows.length} | ${rows.filter((r) => r.uniform).length} of ${rows.length} | ${pct(meanShare(h))} |`);
  }
}
md.push('');

md.push('## bf16 against fp32 (issue 14: analysis in bf16 only within the bootstrap error)', '');
md.push('`--precision bf16` (block Linears in bf16 on oneDNN, fp32 accumulation; TwoNN distances fp32) against fp32 on the same inputs, defaults otherwise. ' +
  'z = (d_bf16 − d_fp32) / (fp32 bootstrap standard deviation) per layer; |z| ≤ 1 means within one bootstrap error.', '');
md.push('| task | pooling | z by layer (0..L) | max \\|z\\| | rule ranks fp32 | rule ranks bf16 |', '|---|---|---|---|---|---|');
const allZ = [];
for (const t of tasks) {
  for (const p of t.precision) {
    allZ.push(...p.layers.map((x) => Math.abs(x.z)));
    md.push(`| ${t.task} | ${p.pooling} | ${p.layers.map((x) => (x.fp32_error === 0 ? `${x.delta === 0 ? '0' : 'Δ ' + x.delta.toExponential(1)} (collapsed)` : x.z.toFixed(2))).join(', ')} | ${f2(p.max_abs_z)} | ${p.ranks_fp32.join(', ')} | ${p.ranks_bf16.join(', ')}${p.same_ranks ? '' : ' (differ)'} |`);
  }
}
const finiteZ = allZ.filter(Number.isFinite);
md.push('', `Over ${allZ.length} layer comparisons: max |z| ${f2(Math.max(...finiteZ))}, median ${f2(finiteZ.sort((a, b) => a - b)[Math.floor(finiteZ.length / 2)])}; ${finiteZ.filter((z) => z <= 1).length} of ${finiteZ.length} within one bootstrap error; rule ranks identical in ${tasks.flatMap((t) => t.precision).filter((p) => p.same_ranks).length} of ${tasks.flatMap((t) => t.precision).length} (task, pooling) pairs.` +
  ` bf16 ran on ${[...new Set(tasks.flatMap((t) => t.precision.map((p) => p.isa)).filter(Boolean))].join(', ') || 'the bf16 units'}.`, '');

if (cross) {
  md.push('## Cross-checks', '');
  md.push('That the cached points and the script compute what the tools compute:', '');
  for (const c of cross.checks) md.push(`- ${c.what}: largest |Δd| over layers ${c.max_abs_delta.toExponential(2)}; ranks ${c.ranks_a.join(', ')} vs ${c.ranks_b.join(', ')}${c.ranks_a.join() === c.ranks_b.join() ? ' (same)' : ' (differ)'}.`);
  md.push('');
}

const readingFile = join(here, 'READING.md');
if (existsSync(readingFile)) md.push(readFileSync(readingFile, 'utf8').trim(), '');
writeAtomic(join(outDir, 'RESULTS.md'), md.join('\n'));

// stability.svg: one panel per task; a row per setting, a cell per block: the modal rank, shaded by its share
{
  const cell = 34, rowH = 20, left = 190, colGap = 40, top = 56;
  const panels = tasks.map((t) => ({ t, rows: mainRows(t), L: t.rows[0].ranks.length }));
  const panelW = (p) => left + p.L * cell + 70;
  const W = panels.reduce((a, p) => a + panelW(p) + colGap, 20);
  const H = top + Math.max(...panels.map((p) => p.rows.length)) * rowH + 70;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="20" y="20" font-size="14" font-weight="600">Modal GeLoRA rank per block and the share of ${B} bootstrap resamples giving it (darker = more stable)</text>`];
  const shade = (s) => { const v = Math.round(255 - s * 190); return `rgb(${v},${Math.round(255 - s * 120)},255)`; };
  let x0 = 20;
  for (const p of panels) {
    out.push(`<text x="${x0}" y="${top - 22}" font-size="13" font-weight="600">${esc(p.t.task)}</text>`);
    for (let i = 0; i < p.L; i++) out.push(`<text x="${x0 + left + i * cell + cell / 2}" y="${top - 6}" text-anchor="middle" fill="#555">${i + 1}</text>`);
    out.push(`<text x="${x0 + left + p.L * cell + 8}" y="${top - 6}" fill="#555">uniform</text>`);
    p.rows.forEach((r, j) => {
      const y = top + j * rowH;
      out.push(`<text x="${x0 + left - 6}" y="${y + 14}" text-anchor="end" fill="#333">${esc(label(r))}</text>`);
      r.bootstrap.blocks.forEach((b, i) => {
        const cx = x0 + left + i * cell, differs = r.ranks[i] !== b.mode;
        out.push(`<rect x="${cx}" y="${y}" width="${cell - 2}" height="${rowH - 2}" fill="${shade(b.share)}"${differs ? ' stroke="#dc2626" stroke-width="1.5"' : ''}><title>${esc(`${p.t.task}, ${label(r)}, block ${i + 1}: rule rank ${r.ranks[i]}; bootstrap ${Object.entries(b.counts).map(([k, v]) => `${k}: ${v}`).join(', ')}`)}</title></rect>`);
        out.push(`<text x="${cx + (cell - 2) / 2}" y="${y + 13}" text-anchor="middle" fill="${b.share > 0.6 ? '#fff' : '#111'}">${b.mode}</text>`);
      });
      out.push(`<text x="${x0 + left + p.L * cell + 8}" y="${y + 14}" fill="#333">${pct(r.bootstrap.uniform_share)}</text>`);
    });
    x0 += panelW(p) + colGap;
  }
  const ly = H - 30;
  [0.2, 0.4, 0.6, 0.8, 1].forEach((s, i) => out.push(`<rect x="${20 + i * 40}" y="${ly}" width="36" height="14" fill="${shade(s)}"/><text x="${20 + i * 40 + 18}" y="${ly + 26}" text-anchor="middle" fill="#555">${pct(s)}</text>`));
  out.push(`<rect x="240" y="${ly}" width="36" height="14" fill="#fff" stroke="#dc2626" stroke-width="1.5"/><text x="282" y="${ly + 11}" fill="#555">rule rank (what analyze writes) differs from the bootstrap's modal rank</text>`);
  out.push('</svg>');
  writeAtomic(join(outDir, 'stability.svg'), out.join('\n'));
}

// samples.svg: d by layer for each number of samples, one chart per task stacked
{
  const charts = tasks.map((t) => {
    const rows = t.rows.filter((r) => r.options.pooling === 'mean' && r.options.precision === 'fp32' && r.options.method === 'fit' && r.options.discard === 0.1 && !r.options.errorAware && r.options.seed === 0);
    const seen = new Set();
    const series = rows.filter((r) => !seen.has(r.points) && seen.add(r.points)).sort((a, b) => a.points - b.points)
      .map((r) => ({ name: `${r.points} points`, points: r.profile.map((p) => [p.layer, p.id]) }));
    return lineChartSvg(series, { title: `${t.task}: intrinsic dimension by layer, by number of samples (mean pooling, fit)`, xLabel: 'layer (0 = embeddings)', yLabel: 'intrinsic dimension', width: 720, height: 300 });
  });
  const H = 300;
  const inner = charts.map((c, i) => `<g transform="translate(0 ${i * H})">${c.replace(/^<svg[^>]*>/, '').replace(/<\/svg>\s*$/, '')}</g>`).join('\n');
  writeAtomic(join(outDir, 'samples.svg'), `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="${H * charts.length}" viewBox="0 0 720 ${H * charts.length}" font-family="system-ui, sans-serif" font-size="12">\n${inner}\n</svg>\n`);
}
console.log(`wrote ${join(outDir, 'RESULTS.md')}, stability.svg, samples.svg`);
