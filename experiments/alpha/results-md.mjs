#!/usr/bin/env node
// experiments/alpha/RESULTS.md from what experiments/alpha/run.sh left in results/: per alpha/r the
// GeLoRA and LoRA scores (mean ± std over seeds), GeLoRA − LoRA paired over seeds (t interval) and
// paired bootstrap over the dev examples (from predictions.json), and each method's alpha/r = 32 − 2,
// paired the same way. Every number is read from a results.json or predictions.json there; the reading
// (READING.md, written by hand against these numbers) is appended.
// Usage: node experiments/alpha/results-md.mjs [results dir]   (after npm run build)
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodComparisons, predictionsMetric } from '../../dist/src/compare/compare.js';
import { compareMethods, comparisonsMarkdown, pairedBootstrapRuns } from '../../dist/src/report/significance.js';
import { readPredictions } from '../../dist/src/train/predictions.js';
import { meanStd } from '../../dist/src/train/metrics.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = process.argv[2] ?? join(here, 'results');
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));
const f4 = (x) => x.toFixed(4);
const out = [];
for (const task of readdirSync(root).filter((d) => existsSync(join(root, d))).sort()) {
  const scales = readdirSync(join(root, task)).filter((d) => /^alpha\d+$/.test(d) && existsSync(join(root, task, d, 'results.json')))
    .map((d) => Number(d.slice(5))).sort((a, b) => a - b);
  if (!scales.length) continue;
  const rows = [], within = [], all = [];
  let metric = '', budget = '', kindMetric = null;
  for (const a of scales) {
    const dir = join(root, task, `alpha${a}`), res = readJson(join(dir, 'results.json'));
    const preds = existsSync(join(dir, 'predictions.json')) ? readJson(join(dir, 'predictions.json')) : null;
    metric = res.metric; budget = res.budget ?? ''; kindMetric ??= preds && predictionsMetric(preds);
    for (const m of ['gelora', 'lora']) {
      const rs = res.runs.filter((r) => r.method === m).sort((x, y) => x.seed - y.seed);
      if (!rs.length) continue;
      const { mean, std } = meanStd(rs.map((r) => r.metric_value));
      rows.push(`| ${a} | ${m} | ${rs[0].ranks.join(', ')} | ${rs[0].trainable_params} | ${rs[0].lr} | ${f4(mean)} ± ${f4(std)} | ${rs.length} (${rs.map((r) => f4(r.metric_value)).join(', ')}) |`);
    }
    within.push(...methodComparisons(res.runs, preds).map((c) => ({ ...c, label: String(a) })));
    for (const r of res.runs) {
      const p = preds?.runs.find((x) => x.method === r.method && x.seed === r.seed);
      all.push({ ...r, method: `${r.method} α/r=${a}`, prediction: p?.prediction, label: p?.label });
    }
  }
  // the TF-IDF + LR baseline (experiments/baseline, same 2,000-sentence cap with seed 0, full dev set) against each cell, paired over the dev examples
  const blFile = join(here, '..', 'baseline', 'predictions', `${task}.jsonl`), blRows = [];
  if (existsSync(blFile) && kindMetric) {
    const bl = readPredictions(blFile);
    for (const m of [...new Set(all.map((x) => x.method))]) {
      const rs = all.filter((x) => x.method === m && x.prediction);
      if (!rs.length || rs.some((x) => x.label.length !== bl.label.length || x.label.some((v, i) => v !== bl.label[i]))) continue;
      const iv = pairedBootstrapRuns(rs.map(() => bl.prediction), rs.map((x) => x.prediction), rs.map((x) => x.label), kindMetric);
      blRows.push(`| TF-IDF + LR − ${m} | ${rs.length} | ${f4(iv.mean)} | [${f4(iv.lo)}, ${f4(iv.hi)}] | ${iv.verdict} |`);
    }
  }
  const across = [];
  if (scales.length >= 2) {
    const [lo, hi] = [scales[0], scales[scales.length - 1]];
    for (const m of ['gelora', 'lora']) {
      const c = compareMethods(all, `${m} α/r=${hi}`, `${m} α/r=${lo}`, kindMetric);
      if (c) across.push(c);
    }
  }
  out.push(`## ${task}

${budget ? `Budget: ${budget}. ` : ''}Dev ${metric}, the selected (best) evaluation of each run.

| α/r | method | ranks per block | trainable params | lr | dev ${metric} (mean ± std) | seeds (per seed) |
|---|---|---|---|---|---|---|
${rows.join('\n')}

GeLoRA − LoRA at each scale (paired by seed; bootstrap: 1,000 resamples of the dev examples, the seeds'
mean difference; an interval holding 0 is a tie):

${comparisonsMarkdown(within, 'α/r')}
The same method at α/r = ${scales[scales.length - 1]} against α/r = ${scales[0]} (same seeds, so the same training sample,
data order and initialisation; the learning rates differ, see run.sh):

${across.length ? comparisonsMarkdown(across) : '(one scale only)\n'}${blRows.length ? `
The bag-of-words baseline (\`gelora baseline\`, experiments/baseline: one fit, C chosen on dev) against each
cell, paired bootstrap over the dev examples (its one prediction set against each seed's, the seeds' mean):

| comparison | seeds | mean difference | 95% bootstrap interval | verdict |
|---|---|---|---|---|
${blRows.join('\n')}
` : ''}`);
}
const reading = existsSync(join(here, 'READING.md')) ? `\n${readFileSync(join(here, 'READING.md'), 'utf8')}` : '';
const md = `# α/r ablation: GeLoRA against LoRA at equal budget, α/r = 2 and 32

Generated by \`node experiments/alpha/results-md.mjs\` from the results that \`bash experiments/alpha/run.sh\`
wrote (embedded encoder models/gelora-bert-6l, GLUE SST-2, 2,000 training sentences sampled with the
run's seed, full dev set of 872 sentences, 2 epochs, batch 32, linear schedule, 6% warmup; GeLoRA's
ranks from the GLUE experiment's analysis, scaled to the budget of uniform rank 8).

${out.join('\n')}${reading}`;
writeFileSync(join(here, 'RESULTS.md.tmp'), md);
renameSync(join(here, 'RESULTS.md.tmp'), join(here, 'RESULTS.md'));
console.log(md);
