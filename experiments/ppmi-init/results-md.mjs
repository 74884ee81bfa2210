// RESULTS.md of experiments/ppmi-init from its results/ folder (run.sh's copies of each run's
// pretrain.json and log.jsonl, and the compare results), the stage-1 model's held-out log (its
// evaluations, kept as stage1_pretrain_log.jsonl since ship.sh replaced the model) and the TF-IDF baseline. Prints the file's text and writes it.
// Usage: node experiments/ppmi-init/results-md.mjs
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url)), root = join(here, '..', '..'), res = join(here, 'results');
const json = (f) => JSON.parse(readFileSync(f, 'utf8'));
const lines = (f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const ARMS = [['random', 'random (normal, std 0.02; stage 1\'s init)'], ['ppmi', 'ppmi (`--init-embeddings ppmi`)'],
  ['random-s1', 'random, pretraining seed 1'], ['ppmi-s1', 'ppmi, pretraining seed 1']];
const TASKS = [['SST-2', 'LoRA r 2, lr 3e-3, max length 128'], ['brown-genre', 'LoRA r 1, lr 1e-3, max length 64'], ['wordnet-category', 'LoRA r 1, lr 1e-3, max length 64']];
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v) => Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / Math.max(1, v.length - 1));

/** the LoRA runs' dev scores of task on an arm, by seed (null: not run) */
function downstream(task, arm) {
  const f = join(res, `${task}-${arm}`, 'results.json');
  return existsSync(f) ? json(f).runs.filter((r) => r.method === 'lora').sort((a, b) => a.seed - b.seed).map((r) => r.metric_value) : null;
}
/** held-out evaluations of a pretraining log */
const evalsOf = (log) => log.filter((l) => l.dev_loss !== undefined).map((l) => ({ step: l.step, loss: l.dev_loss, acc: l.primary }));
/** a downstream cell: mean ± sd, then each seed */
const seedsCell = (v) => (v && v.length ? `${mean(v).toFixed(3)} ± ${sd(v).toFixed(3)} (${v.map((x) => x.toFixed(3)).join(', ')})` : 'not run');
const arms = ARMS.filter(([n]) => existsSync(join(res, `${n}.pretrain.json`))).map(([n, label]) => {
  const s = json(join(res, `${n}.pretrain.json`));
  const evals = evalsOf(lines(join(res, `${n}.log.jsonl`)));
  const train = lines(join(res, `${n}.log.jsonl`)).filter((l) => l.loss !== undefined);
  const last200 = train.slice(-200).map((l) => l.loss);
  const down = Object.fromEntries(TASKS.map(([t]) => [t, downstream(t, n)]));
  return { n, label, s, evals, trainLoss: last200.length ? mean(last200) : null, down };
});
const stage1 = lines(join(here, 'stage1_pretrain_log.jsonl')).filter((l) => l.heldout_loss !== undefined).map((l) => ({ step: l.step, loss: l.heldout_loss, acc: l.heldout_accuracy }));
const tfidf = Object.fromEntries(json(join(root, 'experiments', 'baseline', 'results.json')).map((r) => [r.task, r.score]));

const steps = [...new Set(arms.flatMap((a) => a.evals.map((e) => e.step)))].sort((a, b) => a - b);
const at = (evals, step) => evals.find((e) => e.step === step);
const cell = (e) => (e ? `${e.loss.toFixed(3)} / ${pct(e.acc)}` : '');
const init = arms.find((a) => a.n === 'ppmi')?.s.init_embeddings;

let md = `# PPMI-SVD word embeddings as the encoder's start (issue 18, deliverable 1)

Made by \`bash experiments/ppmi-init/run.sh\` and \`node experiments/ppmi-init/results-md.mjs\`. Two BERT encoders of the embedded
model's shape (6 blocks, hidden 256, bert-base-uncased's 30,522 pieces) trained from scratch with stage 1's recipe (the shipped
\`models/gelora-bert-6l\`: MLM, 15% masked, lr 1e-3, 6% warmup then linear decay, batch 32 × 128, seed 0, the default corpus),
mixed precision (\`--precision bf16\`), side by side on one core each of a 2-core machine, differing only in the word embeddings'
init. Held-out: the default corpus' seeded 1% (never trained on), 15% masked with a fixed seed.
${init ? `
The PPMI start (\`src/train/ppmi.ts\`): co-occurrence counts of word pieces within ±${init.window} positions over the ${init.tokens.toLocaleString('en-US')} training tokens
(${init.pairs.toLocaleString('en-US')} pairs, ${init.nnz_counts.toLocaleString('en-US')} distinct), positive PMI with context counts^${init.smoothing} (${init.nnz_ppmi.toLocaleString('en-US')} positive entries), pieces seen under
${init.min_count} times dropped; a truncated SVD to 256 components; vectors U·S^${init.eig_power} scaled to std ${init.std} (the random init's). ${init.kept_rows.toLocaleString('en-US')} of
30,522 pieces got a vector, the rest kept their random rows. It took ${Math.round(init.seconds)} s of one core (with the other arm on the other core).
` : ''}
## Held-out MLM loss / accuracy

| step | ${arms.map((a) => a.label).join(' | ')} | stage 1 as it shipped (fp32, both cores, another machine; models/gelora-bert-6l at 0d04746) |
|---|${arms.map(() => '---|').join('')}---|
${steps.map((st) => `| ${st} | ${arms.map((a) => cell(at(a.evals, st))).join(' | ')} | ${cell(at(stage1, st))} |`).join('\n')}

${arms.map((a) => `- ${a.n}: ${a.s.steps} steps in ${Math.round(a.s.seconds)} s (${(a.s.seconds / a.s.steps).toFixed(2)} s a step); training loss, mean of the last 200 steps: ${a.trainLoss?.toFixed(3) ?? 'n/a'}.`).join('\n')}

## Downstream: uniform LoRA on each encoder against TF-IDF + logistic regression

Dev accuracy, 2,000 training examples (the same seeded cap as experiments/encoder), 2 epochs, batch 32, warmup 6% and linear decay,
best epoch, 3 seeds (mean ± sd, then seeds 0, 1, 2). TF-IDF + LR: experiments/baseline/results.json.

| task | settings | TF-IDF + LR | ${arms.map((a) => a.n).join(' | ')} | stage 1 (the embedded model before this experiment, commit 0d04746) |
|---|---|---|${arms.map(() => '---|').join('')}---|
${TASKS.map(([t, settings]) => `| ${t} | ${settings} | ${tfidf[t]?.toFixed(3) ?? ''} | ${[...arms.map((a) => a.down[t]), downstream(t, 'stage1')].map(seedsCell).join(' | ')} |`).join('\n')}
`;
// `run.sh continue`: the shipped PPMI model pretrained further (stage 3's recipe), and LoRA on it
if (existsSync(join(res, 'ppmi-continued.pretrain.json'))) {
  const s = json(join(res, 'ppmi-continued.pretrain.json')), log = lines(join(res, 'ppmi-continued.log.jsonl'));
  const evals = evalsOf(log);
  const train = log.filter((l) => l.loss !== undefined).slice(-200).map((l) => l.loss);
  const down = TASKS.map(([t]) => [t, downstream(t, 'ppmi-continued'), downstream(t, 'ppmi')]);
  md += `
## Continued: the shipped PPMI model, ${s.steps} more steps

\`bash experiments/ppmi-init/run.sh continue\`: models/gelora-bert-6l (the ppmi arm above, as shipped in F16) pretrained further with
the recipe that continued the random start in experiments/encoder (stage3.sh): lr 3e-4, 30% of the tokens masked in training (15% in the
held-out evaluation), a fresh 6% warmup and linear decay, batch 32 × 128, mixed precision, one core (the other running other work).
${s.steps} steps in ${Math.round(s.seconds)} s (${(s.seconds / s.steps).toFixed(2)} s a step); training loss, mean of the last 200 steps (30% masked): ${mean(train).toFixed(3)}.

| step | held-out MLM loss / accuracy |
|---|---|
| 0 (the shipped model) | ${s.start_heldout ? cell({ loss: s.start_heldout.loss, acc: s.start_heldout.accuracy }) : ''} |
${evals.map((e) => `| ${e.step} | ${cell(e)} |`).join('\n')}

Downstream LoRA, the settings of the table above (3 seeds):

| task | TF-IDF + LR | the shipped model (ppmi) | continued |
|---|---|---|---|
${down.map(([t, c, p]) => `| ${t} | ${tfidf[t]?.toFixed(3) ?? ''} | ${[p, c].map(seedsCell).join(' | ')} |`).join('\n')}
`;
}
// `run.sh tapt`: the shipped model pretrained further on SST-2's training sentences (no labels)
if (existsSync(join(res, 'ppmi-tapt-sst2.pretrain.json'))) {
  const s = json(join(res, 'ppmi-tapt-sst2.pretrain.json'));
  const evals = evalsOf(lines(join(res, 'ppmi-tapt-sst2.log.jsonl')));
  const [t, v, p] = ['SST-2', downstream('SST-2', 'ppmi-tapt-sst2'), downstream('SST-2', 'ppmi')];
  md += `
## Task-adaptive: the shipped PPMI model on SST-2's training sentences, ${s.steps} steps

\`bash experiments/ppmi-init/run.sh tapt\`: models/gelora-bert-6l pretrained further on SST-2's training sentences without labels (\`--texts\`;
never dev.tsv): ${s.corpus_lines.toLocaleString('en-US')} trained on, a seeded 1% (${s.held_out_lines.toLocaleString('en-US')}) held out. lr 3e-4, 15% masked, a fresh 6% warmup and linear
decay, batch 32 × 128, mixed precision, both cores. ${s.steps} steps (${s.sequences} packed sequences, so ${(s.steps * 32 / s.sequences).toFixed(1)} epochs) in ${Math.round(s.seconds)} s.

| step | held-out (SST-2 sentences) MLM loss / accuracy |
|---|---|
| 0 (the shipped model) | ${s.start_heldout ? cell({ loss: s.start_heldout.loss, acc: s.start_heldout.accuracy }) : ''} |
${evals.map((e) => `| ${e.step} | ${cell(e)} |`).join('\n')}

SST-2 LoRA with the settings of the first downstream table (3 seeds): the shipped model ${seedsCell(p)}; after TAPT ${seedsCell(v)}; TF-IDF + LR ${tfidf[t].toFixed(3)}.
experiments/lora-recipe has the best recipe there on both (tagged tapt).
`;
}
const reading = join(here, 'READING.md');
if (existsSync(reading)) md += `\n${readFileSync(reading, 'utf8')}`;
writeFileSync(join(here, 'RESULTS.md.tmp'), md); // whole or not at all
renameSync(join(here, 'RESULTS.md.tmp'), join(here, 'RESULTS.md'));
console.log(md);
