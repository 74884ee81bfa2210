// experiments/encoder/RESULTS.md from the runs of experiments/encoder/run.sh: held-out MLM accuracy per
// pretraining stage, and downstream LoRA against the embedded model's earlier runs and TF-IDF + LR.
// Usage: node experiments/encoder/results-md.mjs
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const R = 'experiments/encoder/results';
const read = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null);
const readLog = (f) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const pct = (x, d = 1) => `${(100 * x).toFixed(d)}%`;
const f3 = (x) => x.toFixed(3);
const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const out = [];
const p = (s = '') => out.push(s);

p('# A stronger embedded encoder (issue 18, deliverable 1)');
p();
p('Made by `bash experiments/encoder/run.sh` (probe, continued pretraining, TAPT, downstream LoRA) and');
p('`node experiments/encoder/results-md.mjs`. Every pretraining job ran on one core (`taskset -c 1`,');
p('one OpenBLAS thread) of the project\'s 2-core machine while other work used the other core, so the');
p('seconds are wall-clock training time under that load, not clean timings.');
p();

// --- pretraining
const base = read('models/gelora-bert-6l/pretrain.json');
const cont = read(`${R}/continued.pretrain.json`), tapt = read(`${R}/tapt-sst2.pretrain.json`);
const stage1 = cont?.stages?.[0] ?? base;
// the seventh session's longer run from stage 2 (experiments/encoder/stage3.sh), when it has finished
const more = read(`${R}/stage3.pretrain.json`);
p('## Held-out MLM accuracy per stage');
p();
p('Held-out text: the default corpus\' seeded 1% (1,534 lines of Brown and WordNet, never trained on), 15% of');
p('the tokens masked with a fixed seed. The TAPT row is on its own held-out text (1% of SST-2\'s training sentences).');
p();
p('| stage | steps | tokens | held-out MLM loss | held-out MLM accuracy |');
p('|---|---|---|---|---|');
if (stage1) p(`| 1: \`gelora pretrain\` from a random init (the embedded model before this work) | ${stage1.steps} | ${(stage1.tokens_seen / 1e6).toFixed(2)}M | ${f3(stage1.heldout.loss)} | ${pct(stage1.heldout.accuracy)} |`);
if (cont) p(`| 2: continued on the default corpus (lr ${cont.config.lr}, ${Math.round(cont.config.maskProb * 100)}% masked, fresh warmup ${Math.round(cont.config.warmupRatio * 100)}% + linear decay) | +${cont.steps} | +${(cont.tokens_seen / 1e6).toFixed(2)}M | ${f3(cont.heldout.loss)} | ${pct(cont.heldout.accuracy)} |`);
if (more) p(`| 2 → 3: continued again from stage 2 on the default corpus (stage3.sh: lr ${more.config.lr}, ${Math.round(more.config.maskProb * 100)}% masked, fresh warmup, ${more.precision?.precision === 'bf16' ? 'mixed precision' : 'fp32'}) | +${more.steps} | +${(more.tokens_seen / 1e6).toFixed(2)}M | ${f3(more.heldout.loss)} | ${pct(more.heldout.accuracy)} |`);
if (tapt) p(`| 3 (TAPT, from stage 2): on SST-2 train sentences, SST-2 held-out (before → after) | +${tapt.steps} | +${(tapt.tokens_seen / 1e6).toFixed(2)}M | ${f3(tapt.start_heldout.loss)} → ${f3(tapt.heldout.loss)} | ${pct(tapt.start_heldout.accuracy)} → ${pct(tapt.heldout.accuracy)} |`);
p();
const evals = readLog(`${R}/continued.log.jsonl`).filter((l) => l.dev_loss !== undefined);
if (evals.length) {
  p('Stage 2, every held-out evaluation (step 0: the embedded model):');
  p();
  p('| step | held-out MLM loss | accuracy |');
  p('|---|---|---|');
  if (cont.start_heldout) p(`| 0 | ${f3(cont.start_heldout.loss)} | ${pct(cont.start_heldout.accuracy)} |`);
  for (const e of evals) p(`| ${e.step} | ${f3(e.dev_loss)} | ${pct(e.primary)} |`);
  p();
  p(`${cont.steps} steps in ${Math.round(cont.seconds)} s: ${(cont.seconds / cont.steps).toFixed(2)} s per step of 32 × 128 tokens.`);
  p();
}
const moreEvals = readLog(`${R}/stage3.log.jsonl`).filter((l) => l.dev_loss !== undefined);
if (more && moreEvals.length) {
  p(`The continued-again run (from stage 2, ${more.steps} steps), every held-out evaluation (step 0: stage 2):`);
  p();
  p('| step | held-out MLM loss | accuracy |');
  p('|---|---|---|');
  if (more.start_heldout) p(`| 0 | ${f3(more.start_heldout.loss)} | ${pct(more.start_heldout.accuracy)} |`);
  for (const e of moreEvals) p(`| ${e.step} | ${f3(e.dev_loss)} | ${pct(e.primary)} |`);
  p();
  p(`${more.steps} steps in ${Math.round(more.seconds)} s on both cores: ${(more.seconds / more.steps).toFixed(2)} s per step of 32 × 128 tokens.`);
  p();
}
const probe = read(`${R}/probe.json`);
if (probe) {
  p('### The probe (equal steps, before the long run)');
  p();
  p(`From the embedded model, ${probe[0].steps} steps each, fresh warmup (6%) and decay; held-out at 15% masking for every row.`);
  p();
  p('| run | lr | training mask rate | held-out loss | held-out accuracy | seconds |');
  p('|---|---|---|---|---|---|');
  const start = probe[0].start;
  p(`| the embedded model (start) | | | ${f3(start.loss)} | ${pct(start.accuracy, 2)} | |`);
  for (const r of probe) p(`| ${r.run} | ${r.lr} | ${Math.round(r.mask_prob * 100)}% | ${f3(r.heldout.loss)} | ${pct(r.heldout.accuracy, 2)} | ${Math.round(r.seconds)} |`);
  p();
  const best = [...probe].sort((a, b) => b.heldout.accuracy - a.heldout.accuracy)[0], below = probe.filter((r) => r.heldout.accuracy < start.accuracy);
  p(`The long run took the best row (${best.run}). ${below.length === probe.length ? `Every probe run ended below the model it started from: ${probe[0].steps} steps of a new warmup and decay do not win back what re-warming the rate costs, so the probe ranks settings for short runs (less disruption wins), which need not hold for the long run.` : `${below.length} of ${probe.length} probe runs ended below the start.`}`);
  p();
}

// --- downstream
const tfidf = Object.fromEntries((read('experiments/baseline/results.json') ?? []).map((r) => [r.task, r]));
const runsOf = (f, method = 'lora') => (read(f)?.runs ?? []).filter((r) => r.method === method).sort((a, b) => a.seed - b.seed);
const cell = (runs) => (runs.length > 1 ? `${f3(mean(runs.map((r) => r.metric_value)))} ± ${f3(sd(runs.map((r) => r.metric_value)))} (${runs.map((r) => f3(r.metric_value)).join(', ')})` : runs.length ? `${f3(runs[0].metric_value)} (seed ${runs[0].seed} only)` : '–');
const rows = [
  { task: 'SST-2', setting: 'LoRA r 2, lr 3e-3, max length 128 (experiments/glue)', old: runsOf('experiments/glue/results/SST-2/results.json'), ctrl: runsOf(`${R}/SST-2-embedded/results.json`), cont: runsOf(`${R}/SST-2-continued/results.json`), tapt: runsOf(`${R}/SST-2-tapt/results.json`), more: runsOf(`${R}/SST-2-stage3/results.json`) },
  { task: 'brown-genre', setting: 'LoRA r 1, lr 1e-3, max length 64 (experiments/demo)', old: runsOf('experiments/demo/results-stage1/brown-genre/results.json'), ctrl: runsOf(`${R}/brown-genre-embedded/results.json`), cont: runsOf(`${R}/brown-genre-continued/results.json`), tapt: [], more: runsOf(`${R}/brown-genre-stage3/results.json`) },
  { task: 'wordnet-category', setting: 'LoRA r 1, lr 1e-3, max length 64 (experiments/demo)', old: runsOf('experiments/demo/results-stage1/wordnet-category/results.json'), ctrl: runsOf(`${R}/wordnet-category-embedded/results.json`), cont: runsOf(`${R}/wordnet-category-continued/results.json`), tapt: [], more: runsOf(`${R}/wordnet-category-stage3/results.json`) },
];
p('## Downstream: uniform LoRA against TF-IDF + logistic regression');
p();
p('Dev accuracy, 2,000 training examples (the same seeded cap, seed 0, for every column), 2 epochs, batch 32,');
p('warmup 6% and linear decay, best epoch; mean ± sd over the seeds (each seed\'s score in brackets, seeds 0, 1, 2 in order). The embedded-model');
p('column is the earlier experiments\' runs with the same settings; TF-IDF + LR is experiments/baseline/results.json');
p('(word 1-2-grams, sublinear tf, C chosen on dev). The control column is the embedded model run again through');
p('run.sh\'s own commands with this code: where it equals the earlier run of the same seed, the columns compare like for like.');
p();
p('| task | settings | TF-IDF + LR | embedded model (stage 1) | control: stage 1 rerun | continued (stage 2) | continued + TAPT (stage 3) | continued again (stage 2 → 3, stage3.sh) |');
p('|---|---|---|---|---|---|---|---|');
for (const r of rows) p(`| ${r.task} | ${r.setting} | ${tfidf[r.task] ? f3(tfidf[r.task].score) : '–'} | ${cell(r.old)} | ${cell(r.ctrl)} | ${cell(r.cont)} | ${r.task === 'SST-2' ? cell(r.tapt) : 'not run'} | ${r.more.length ? cell(r.more) : 'not run'} |`);
p();

// --- the stage-1 recipe rerun in PyTorch (torch-reference.sh): gelora's engine or the recipe?
const s1evals = readLog('models/gelora-bert-6l/pretrain_log.jsonl').filter((l) => l.heldout_loss !== undefined);
const torchRef = { postln: read(`${R}/torch-reference-postln.json`), prenorm: read(`${R}/torch-reference-prenorm.json`) };
if (torchRef.postln && s1evals.length) {
  p('## The stage-1 recipe in PyTorch');
  p();
  p(`\`bash experiments/encoder/torch-reference.sh all\` (torch-reference.py, PyTorch ${torchRef.postln.torch}, bf16 autocast): stage 1's recipe from a random init on the same`);
  p('packed corpus (dump-corpus.mjs): BERT post-LayerNorm blocks of the same shape, no dropout (gelora\'s BERT has none), tied decoder, the same');
  p('masking rule, AdamW, warmup and decay, clipping and init. Random streams differ, so curves compare, not digits. Pre-LayerNorm is');
  p('the same run with pre-LN blocks and a final LayerNorm (not BERT: a model gelora could not ship as models/gelora-bert-6l).');
  p();
  p(`| step | gelora (stage 1, fp32): held-out loss | accuracy | PyTorch post-LN: held-out loss | accuracy | PyTorch pre-LN: held-out loss | accuracy |`);
  p('|---|---|---|---|---|---|---|');
  const at = (r, s) => r?.history.find((h) => h.step === s);
  for (const e of s1evals) {
    const a = at(torchRef.postln, e.step), b = at(torchRef.prenorm, e.step);
    p(`| ${e.step} | ${f3(e.heldout_loss)} | ${pct(e.heldout_accuracy)} | ${a ? f3(a.heldout_loss) : '–'} | ${a ? pct(a.heldout_accuracy) : '–'} | ${b ? f3(b.heldout_loss) : '–'} | ${b ? pct(b.heldout_accuracy) : '–'} |`);
  }
  p();
}

// --- the reading, from the numbers
p('## Reading');
p();
const target = 0.35;
if (cont) {
  const a0 = stage1.heldout.accuracy, a1 = cont.heldout.accuracy;
  p(`- Held-out MLM accuracy went from ${pct(a0)} to ${pct(a1)} (${a1 >= target ? 'the issue\'s target of 35% is reached' : `the issue's target of 35% is not reached: ${(100 * (target - a1)).toFixed(1)} points short`}) after ${cont.steps} more steps`
    + ` (${((cont.tokens_seen + stage1.tokens_seen) / 1e6).toFixed(1)}M tokens in all, about ${((cont.tokens_seen + stage1.tokens_seen) / (cont.sequences * 126)).toFixed(1)} epochs of the corpus).`);
}
for (const r of rows) {
  const t = tfidf[r.task]?.score;
  if (!r.cont.length || t === undefined) continue;
  const m = mean(r.cont.map((x) => x.metric_value)), lo = Math.min(...r.cont.map((x) => x.metric_value)), hi = Math.max(...r.cont.map((x) => x.metric_value));
  const o = r.old.length ? mean(r.old.map((x) => x.metric_value)) : null;
  const verdict = lo > t ? 'beats TF-IDF + LR on every seed' : hi < t ? `is below TF-IDF + LR on every seed (mean ${f3(t - m)} short)` : 'is level with TF-IDF + LR within the seeds\' spread (a tie)';
  let line = `- ${r.task}: LoRA on the continued model (${f3(m)}) ${verdict} (${f3(t)})`;
  if (o !== null) {
    const sep = lo > Math.max(...r.old.map((x) => x.metric_value)) ? ', every seed above every earlier seed' : hi < Math.min(...r.old.map((x) => x.metric_value)) ? ', every seed below every earlier seed' : ', within the seeds\' spread';
    line += `; against the embedded model's ${f3(o)}: ${m > o ? '+' : ''}${f3(m - o)}${sep}`;
  }
  if (r.tapt.length) {
    const tm = mean(r.tapt.map((x) => x.metric_value));
    line += `; after TAPT ${f3(tm)} (${tm > t ? 'above' : 'below'} TF-IDF by ${f3(Math.abs(tm - t))}, ${tm > m ? '+' : ''}${f3(tm - m)} from TAPT)`;
  }
  p(line + '.');
}
// why: the train/held-out gap of stage 1 (same 15% masking), the rate of gain, the control
const s1log = readLog('models/gelora-bert-6l/pretrain_log.jsonl').filter((l) => l.loss !== undefined).slice(-200);
if (cont && s1log.length) {
  const trainLoss = mean(s1log.map((l) => l.loss)), gap = stage1.heldout.loss - trainLoss;
  p(`- Why 35% is out of reach here: the model underfits, it does not overfit. At the end of stage 1 the training loss (mean of the last`);
  p(`  200 steps, 15% masked) was ${f3(trainLoss)} against ${f3(stage1.heldout.loss)} held out, a gap of ${f3(gap)} nats after ${(stage1.tokens_seen / (cont.sequences * 126)).toFixed(1)} epochs, so more text`);
  p(`  (npm's State of the Union or Moby Dick packages) would not change the loss at this budget; steps would. Stage 2 gained`);
  p(`  ${(100 * (cont.heldout.accuracy - stage1.heldout.accuracy)).toFixed(1)} points in ${cont.steps} steps, after first losing some to the re-warmed rate (step 250: ${pct(evals[0].primary)}), so at this`);
  p(`  recipe's rate (${(cont.seconds / cont.steps).toFixed(1)} s per step on one core) 35% is not a matter of the 1-2 hours a session has: the held-out`);
  p(`  loss stays near the level stage 1 flattened out at, and how many more updates leaving it takes was not measured here`);
  p(torchRef.prenorm ? '  (a pre-LayerNorm model of the same size, measured in PyTorch below, does not leave it sooner).'
    : '  (nor whether another architecture, e.g. pre-LayerNorm, would leave it sooner: that would be a new model, not this one continued).');
}
if (more) {
  const total = stage1.tokens_seen + cont.tokens_seen + more.tokens_seen;
  p(`- Continued again from stage 2 (the seventh session, ${more.steps} steps): held-out MLM accuracy ${pct(more.start_heldout.accuracy)} → ${pct(more.heldout.accuracy)}, loss ${f3(more.start_heldout.loss)} → ${f3(more.heldout.loss)}`
    + ` (${(total / 1e6).toFixed(1)}M tokens in all); ${more.heldout.accuracy >= target ? 'the 35% target is reached' : `${(100 * (target - more.heldout.accuracy)).toFixed(1)} points short of 35%`}.`);
  for (const r of rows) {
    const t = tfidf[r.task]?.score;
    if (!r.more.length || t === undefined || !r.cont.length) continue;
    const m = mean(r.more.map((x) => x.metric_value)), c = mean(r.cont.map((x) => x.metric_value)), lo = Math.min(...r.more.map((x) => x.metric_value)), hi = Math.max(...r.more.map((x) => x.metric_value));
    p(`  - ${r.task}: LoRA on it ${f3(m)} (${lo > t ? 'above TF-IDF + LR on every seed' : hi < t ? 'below TF-IDF + LR on every seed' : 'level with TF-IDF + LR within the seeds'}, ${f3(t)}); against stage 2's ${f3(c)}: ${m > c ? '+' : ''}${f3(m - c)}.`);
  }
}
if (torchRef.postln && s1evals.length) {
  const g = s1evals[s1evals.length - 1], t = torchRef.postln.history.find((h) => h.step === g.step), pre = torchRef.prenorm?.history.find((h) => h.step === g.step);
  if (t) {
    const pairs = s1evals.map((e) => [e.heldout_loss, torchRef.postln.history.find((h) => h.step === e.step)?.heldout_loss]).filter(([, b]) => b !== undefined);
    const maxGap = Math.max(...pairs.map(([a, b]) => Math.abs(a - b))), lowerAll = pairs.every(([a, b]) => a < b);
    p(`- The plateau is the recipe's, not gelora's engine's: PyTorch running stage 1's recipe on the same corpus ends at ${f3(t.heldout_loss)} nats and ${pct(t.heldout_accuracy)}`
      + ` after ${g.step} steps, gelora at ${f3(g.heldout_loss)} and ${pct(g.heldout_accuracy)}; at all ${pairs.length} evaluations the two held-out losses are within ${f3(maxGap)} nats`
      + `${lowerAll ? ', gelora\'s the lower at each' : ''} (one seed each, fp32 against bf16 autocast, different random streams: a match, not a win).`);
    if (pre) {
      const better = t.heldout_loss - pre.heldout_loss;
      p(`- Pre-LayerNorm blocks (the what-if the earlier reading left open) end at ${f3(pre.heldout_loss)} nats and ${pct(pre.heldout_accuracy)}: ${better > 0.05 ? `${f3(better)} nats below post-LN, so a pre-LN encoder would leave the plateau sooner` : better < -0.05 ? `${f3(-better)} nats above post-LN` : `within ${f3(Math.abs(better))} nats of post-LN, so the block layout is not what holds the model at this level (same steps, one seed each)`}.`);
    }
  }
}
const ctrlOk = rows.every((r) => !r.ctrl.length || r.old.find((o) => o.seed === r.ctrl[0].seed)?.metric_value === r.ctrl[0].metric_value);
if (rows.some((r) => r.ctrl.length)) p(`- The control runs ${ctrlOk ? 'reproduce the earlier runs of the same seed exactly' : 'do NOT reproduce the earlier runs of the same seed'}, so the stage-1 column ${ctrlOk ? 'is' : 'is not'} a like-for-like baseline.`);
if (tapt) p(`- TAPT lowered SST-2's held-out MLM loss by ${f3(tapt.start_heldout.loss - tapt.heldout.loss)} nats (the model learned the reviews' word statistics) with accuracy almost unchanged, and did not help LoRA on SST-2.`);
if (cont) p(`- Not shipped: stage 2's held-out gain (${(100 * (cont.heldout.accuracy - stage1.heldout.accuracy)).toFixed(1)} points) is not the clearly stronger encoder that replacing models/gelora-bert-6l (and every result measured on it) needs; the folder is kept outside the repository (experiments/encoder/ship.sh swaps it in).`);
p('- Three seeds and one data sample per task: differences of about one seed standard deviation are not');
p('  evidence either way. The TF-IDF numbers pick C on dev (an optimistic baseline); LoRA picks its best epoch on dev too.');
p('- The TAPT model saw SST-2\'s 67k training sentences without labels (never dev.tsv); its LoRA runs use the same');
p('  2,000 labelled ones as every other column, so the comparison with TF-IDF (which sees only those 2,000) is not');
p('  equal in unlabelled data: it answers whether in-domain text helps, not whether the encoder alone is better.');

const md = out.join('\n') + '\n';
writeFileSync('experiments/encoder/RESULTS.md.tmp', md);
renameSync('experiments/encoder/RESULTS.md.tmp', 'experiments/encoder/RESULTS.md');
console.log(md);
