// RESULTS.md of experiments/lora-recipe from its results/ folder (one `gelora compare` folder per task
// and recipe) and the TF-IDF baseline (experiments/baseline/results.json); READING.md is appended.
// For every run it reads the best epoch's dev score (results.json: what compare reports, as every
// experiment here) and the last epoch's (last_epoch.json, which run.sh copies from each run's
// metrics.json), so that selecting the epoch on dev can be told apart from training longer. Prints the file's text and writes it.
// Usage: node experiments/lora-recipe/results-md.mjs
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pairedBootstrapRuns } from '../../dist/src/report/significance.js';
import { accuracy, meanStd } from '../../dist/src/train/metrics.js';

const here = dirname(fileURLToPath(import.meta.url)), root = join(here, '..', '..'), res = join(here, 'results');
const json = (f) => JSON.parse(readFileSync(f, 'utf8'));
const TASKS = ['SST-2', 'wordnet-category', 'brown-genre'];
// the recipes in run.sh's order; a folder not run is left out
const RECIPES = ['lora-r1-e2', 'lora-r1-e6', 'lora-r2-e2', 'lora-r2-e6', 'lora-r8-e2', 'lora-r8-e6', 'lora-r2-e6-lr1e-3', 'lora-r8-e6-lr1e-3', 'lora-r16-e4', 'full-e2', 'full-e6'];
// the encoders: the shipped one, and others run with TAG (run.sh's MODEL=DIR TAG=name)
const MODELS = [['', 'shipped'], ['-continued', 'continued (experiments/ppmi-init `run.sh continue`)'], ['-tapt', 'SST-2 TAPT (experiments/ppmi-init `run.sh tapt`)']];
const tfidf = Object.fromEntries(json(join(root, 'experiments', 'baseline', 'results.json')).map((r) => [r.task, r.score]));

/** every seed's run of one compare folder: seed, best and last epoch's dev score, trainable parameters, lr, epochs */
function runs(task, recipe) {
  const dir = join(res, `${task}-${recipe}`);
  if (!existsSync(join(dir, 'results.json'))) return [];
  const r = json(join(dir, 'results.json')), last = new Map(json(join(dir, 'last_epoch.json')).map((x) => [x.run, x]));
  return r.runs.map((x) => ({ seed: x.seed, method: x.method, best: x.metric_value, last: last.get(`${x.method}-seed${x.seed}`).last,
    params: x.trainable_params, lr: x.lr, epochs: r.train_config.epochs })).sort((a, b) => a.seed - b.seed);
}
const jsonl = (f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
/** recipe − TF-IDF over dev examples, paired (the seeds' mean; TF-IDF is one deterministic run), 95% bootstrap interval */
function againstTfidf(task, recipe, seeds) {
  const base = jsonl(join(root, 'experiments', 'baseline', 'predictions', `${task}.jsonl`));
  const kept = json(join(res, `${task}-${recipe}`, 'predictions.json')).runs;
  const preds = [], gold = [];
  for (const s of seeds) {
    const p = kept.find((r) => r.seed === s);
    if (p.label.length !== base.length || p.label.some((l, i) => l !== base[i].label)) {
      throw new Error(`${task}-${recipe} seed ${s}: its dev labels are not the TF-IDF baseline's (experiments/baseline/predictions/${task}.jsonl); rerun both on one dev set`);
    }
    preds.push(p.prediction); gold.push(p.label);
  }
  const iv = pairedBootstrapRuns(preds, preds.map(() => base.map((x) => x.prediction)), gold, accuracy, 2000);
  const signed = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
  return `${signed(iv.mean)} [${signed(iv.lo)}, ${signed(iv.hi)}] ${iv.lo > 0 ? 'above' : iv.hi < 0 ? 'below' : 'tie'}`;
}
const fmt = (v) => { const { mean, std } = meanStd(v); return v.length > 1 ? `${mean.toFixed(3)} ± ${std.toFixed(3)} (${v.map((x) => x.toFixed(3)).join(', ')})` : v[0].toFixed(3); };

let md = `# How much of LoRA's deficit is the downstream recipe? (issue 18)

Made by \`bash experiments/lora-recipe/run.sh\` (seed 0 of every recipe; then \`SEEDS=3\` for some: the seeds column) and
\`node experiments/lora-recipe/results-md.mjs\`. The shipped embedded encoder (models/gelora-bert-6l, the PPMI-initialised
one) fine-tuned on each task's 2,000 training examples (the seeded cap every experiment here uses), batch 32, warmup 6% and
linear decay, every Linear in the blocks adapted, bf16 frozen products (\`--precision auto\` on an AVX512-BF16 CPU), one core.
lr 3e-3 (SST-2) or 1e-3 (demo tasks) unless the recipe says otherwise; full fine-tuning at the lr its name gives. Dev accuracy
of the best epoch (as every experiment in this repository reports it) and of the last epoch; mean ± sd over seeds, then each
seed's score. TF-IDF + LR: experiments/baseline/results.json (its C chosen on dev).

`;
for (const t of TASKS) {
  const rows = MODELS.flatMap(([tag, model]) => RECIPES.map((r) => [r, tag, runs(t, r + tag), model])).filter(([, , v]) => v.length);
  if (!rows.length) continue;
  md += `## ${t} (TF-IDF + LR: ${tfidf[t]?.toFixed(3)})

| encoder | recipe | lr | epochs | trainable params | seeds | best epoch's dev accuracy | last epoch's | best − TF-IDF, paired bootstrap over dev examples (95%) |
|---|---|---|---|---|---|---|---|---|
${rows.map(([r, tag, v, model]) => `| ${model} | ${r} | ${v[0].lr} | ${v[0].epochs} | ${v[0].params.toLocaleString('en-US')} | ${v.length} | ${fmt(v.map((x) => x.best))} | ${fmt(v.map((x) => x.last))} | ${againstTfidf(t, r + tag, v.map((x) => x.seed))} |`).join('\n')}

`;
}
const reading = join(here, 'READING.md');
if (existsSync(reading)) md += readFileSync(reading, 'utf8');
writeFileSync(join(here, 'RESULTS.md.tmp'), md); // whole or not at all
renameSync(join(here, 'RESULTS.md.tmp'), join(here, 'RESULTS.md'));
console.log(md);
