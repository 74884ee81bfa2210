#!/usr/bin/env node
// Rank sensitivity of the GeLoRA analysis (issue 18, item 5; issue 14's bf16 accuracy target for analysis).
// For each task, one factor at a time is moved away from `gelora analyze`'s defaults (mean pooling,
// 2,000 samples, TwoNN fit, discard 0.1, point rule, fp32), and for every setting it records:
//  - the profile d_0..d_L with idProfile's per-layer bootstrap (100 resamples), as analyze computes it;
//  - the rule's ranks from that profile (what analyze would write);
//  - a paired bootstrap of the ranks (bootstrapRanks, B resamples of the input rows, the same rows in
//    every layer), summarised per block as the modal rank and the share of resamples giving it.
// Pooled hidden states are computed by the library's collectLayerPoints (the code analyze runs, same
// options) and cached on disk per (task, pooling, samples, precision, seed) as safetensors with
// hidden_states.0..L, the file `gelora analyze --hidden-states` reads; later runs re-estimate from the cache.
// Usage: node experiments/sensitivity/sensitivity.mjs [task ...]   (run.sh runs it with nice; B=50 to change resamples)
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, TextTokenizer, readExamples, loadTask, collectLayerPoints, idProfile, geloraRanks, writeSafetensors, SafetensorsFile } from '../../dist/src/index.js';
import { bootstrapRanks, ratiosByRow, rankStability } from '../../dist/src/gelora/ranks.js';
import { applyPrecision, setMatmulPrecision } from '../../dist/src/engine/precision.js';
import { bf16Available } from '../../dist/src/engine/backends/dnnl.js';
import { writeDemoTask } from '../../dist/src/demo/files.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const MODEL = process.env.MODEL ?? join(root, 'models', 'gelora-bert-6l');
const GLUE = process.env.GLUE ?? join(root, '..', 'shared', 'data', 'glue');
const CACHE = process.env.CACHE ?? join(here, 'cache');
const OUT = process.env.OUT ?? join(here, 'results');
const B = Number(process.env.B ?? 200);          // rank-bootstrap resamples per setting
const SEEDS = Number(process.env.SEEDS ?? 5);     // input samples drawn with seeds 0..SEEDS-1 at the defaults

// analyze's defaults (src/cli/analyze.ts), the point every factor moves away from
const DEFAULTS = { pooling: 'mean', samples: 2000, method: 'fit', discard: 0.1, errorAware: false, precision: 'fp32', seed: 0 };
const FACTORS = [
  ['pooling', ['cls', 'last', 'tokens']],
  ['samples', [250, 500, 1000, 4000]],
  ['method', ['ml', 'bayes']],
  // discard 0 is refused by the fit (its last target -log(1 - N/N) is infinite); ml is the estimator that uses every ratio
  ['discard', [0.02, 0.05, 0.2, 0.3]],
  ['errorAware', [true]],
  ['precision', ['bf16']],
];
// settings checked on other input samples too: the defaults and those that could replace them
const CANDIDATES = [{}, { samples: 4000 }, { method: 'ml' }, { discard: 0.05 }, { pooling: 'tokens' }];
const SEEDS_TOKENS = Number(process.env.SEEDS_TOKENS ?? 3);
// fp32 against bf16 under every pooling (issue 14: bf16 analysis within the bootstrap error, or analysis stays fp32)
const PRECISION_POOLINGS = ['mean', 'cls', 'last', 'tokens'];
const TASKS = {
  // the GLUE experiment's data: a seeded 2,000-sentence sample of the training set (experiments/glue/run.sh, --max-train 2000), max length 128
  'SST-2': { maxLength: 128, source: 'GLUE SST-2 train, seeded sample of 2,000 (as experiments/glue)', load: async (seed) => {
    if (!existsSync(join(GLUE, 'SST-2'))) throw new Error(`${join(GLUE, 'SST-2')}: no such folder; set GLUE=path/to/glue (the folder holding SST-2/)`);
    return (await loadTask({ glue: GLUE, task: 'SST-2', maxTrain: 2000, seed })).train;
  }, seedOfData: true },
  // the demo tasks as `gelora demo` builds them (full training split; the demo analyses 2,000 of it at max length 64)
  'brown-genre': { maxLength: 64, source: 'gelora demo --task brown-genre, training split', load: async () => demoExamples('brown-genre') },
  'wordnet-category': { maxLength: 64, source: 'gelora demo --task wordnet-category, training split', load: async () => demoExamples('wordnet-category') },
};

async function demoExamples(name) {
  const files = writeDemoTask(name, join(CACHE, 'data', name));
  return (await readExamples(files.train)).examples;
}

function writeJson(file, obj) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(obj, null, 1) + '\n');
  renameSync(file + '.tmp', file);
}

let models = {};
function model(precision) {
  if (!models[precision]) {
    const { model: m } = loadModel(MODEL);
    const info = applyPrecision(m, precision, () => {});
    if (info.precision !== precision) throw new Error(`precision ${precision} asked, ${info.precision} runs`);
    models[precision] = { m, info, tok: TextTokenizer.fromDir(MODEL, Number(m.config.pad_token_id ?? 0)) };
  }
  setMatmulPrecision(precision);
  return models[precision];
}

/** Pooled points of every layer, from the cache or from the model (and then cached). */
async function layerPoints(task, s, examplesOf) {
  const examples = await examplesOf(s.seed);
  const n = Math.min(s.samples, examples.length);
  // under SST-2 the seed draws the 2,000-sentence training sample itself; the analysis sample (all of it) then uses seed 0
  const analysisSeed = TASKS[task].seedOfData ? 0 : s.seed;
  const key = `${task}-${s.pooling}-n${n}-${s.precision}-seed${s.seed}`;
  const file = join(CACHE, `${key}.safetensors`), meta = join(CACHE, `${key}.json`);
  if (existsSync(file) && existsSync(meta)) {
    const f = new SafetensorsFile(file), info = JSON.parse(readFileSync(meta, 'utf8'));
    const layers = f.names().filter((x) => /^hidden_states\.\d+$/.test(x)).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
      .map((x) => { const t = f.read(x); return { data: t.data, n: t.shape[0], dim: t.shape[1] }; });
    f.close();
    return { layers, key, ...info, cached: true };
  }
  const { m, tok, info: prec } = model(s.precision);
  const t0 = performance.now();
  const { layers, sequences } = collectLayerPoints(m, tok, examples, {
    samples: s.samples, pooling: s.pooling, excludeSpecial: true, maxTokens: 10000, maxLength: TASKS[task].maxLength, batchSize: 16, seed: analysisSeed,
  });
  const seconds = (performance.now() - t0) / 1000;
  setMatmulPrecision('fp32');
  mkdirSync(CACHE, { recursive: true });
  writeSafetensors(file, Object.fromEntries(layers.map((p, l) => [`hidden_states.${l}`, { shape: [p.n, p.dim], data: p.data }])));
  const info = { sequences, examples: examples.length, forward_seconds: seconds, precision: prec.precision, isa: prec.isa ?? null };
  writeJson(meta, info);
  return { layers, key, ...info, cached: false };
}

const byRowCache = new Map();
function estimate(s, pts) {
  const t0 = performance.now();
  const idOpts = { method: s.method, discard: s.discard };
  const profile = idProfile(pts.layers, { ...idOpts, bootstrap: 100, seed: 0 });
  const ranks = geloraRanks(profile, { offset: 1, errorAware: s.errorAware });
  if (!byRowCache.has(pts.key)) byRowCache.set(pts.key, pts.layers.map((p) => ratiosByRow(p)));
  const boot = bootstrapRanks(byRowCache.get(pts.key), { ...idOpts, samples: B, seed: 0, offset: 1, errorAware: s.errorAware, inner: 100 });
  const stab = rankStability(boot.ranks);
  const L = profile.length;
  const idStd = Array.from({ length: L }, (_, l) => {
    const v = boot.ids.map((d) => d[l]), m = v.reduce((a, x) => a + x, 0) / v.length;
    return Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, v.length - 1));
  });
  return {
    points: pts.layers[0].n, sequences: pts.sequences, examples: pts.examples, cache: `${pts.key}.safetensors`, forward_seconds: pts.forward_seconds, precision_ran: pts.precision,
    profile: profile.map((p) => ({ layer: p.layer, id: p.id, error: p.error, low: p.low, high: p.high, duplicates: p.duplicates, ...(p.collapsed ? { collapsed: true } : {}) })),
    ranks, uniform: ranks.every((r) => r === ranks[0]),
    bootstrap: { resamples: stab.resamples, dropped: boot.dropped, blocks: stab.blocks, uniform_share: stab.uniformShare, pattern_mode: stab.patternMode, pattern_share: stab.patternShare, id_std: idStd },
    estimate_seconds: (performance.now() - t0) / 1000,
  };
}

const describe = (s) => Object.entries(s).filter(([k, v]) => DEFAULTS[k] !== v).map(([k, v]) => `${k}=${v}`).join(', ') || 'defaults';

async function runTask(task) {
  const t = TASKS[task], t0 = performance.now();
  const exCache = new Map();
  const examplesOf = async (seed) => { const k = t.seedOfData ? seed : 0; if (!exCache.has(k)) exCache.set(k, await t.load(k)); return exCache.get(k); };
  const settings = [{ factor: 'defaults', value: null, s: { ...DEFAULTS } }];
  for (const [factor, values] of FACTORS) for (const value of values) settings.push({ factor, value, s: { ...DEFAULTS, [factor]: value } });
  // other input samples (seeds) at the defaults and at the settings that could replace them (SEEDS_TOKENS
  // for tokens pooling, whose estimates cost the most); a setting the data cap is left out
  const inputs = (await examplesOf(0)).length;
  for (const c of CANDIDATES) {
    if ((c.samples ?? DEFAULTS.samples) > inputs) continue;
    const seeds = c.pooling === 'tokens' ? SEEDS_TOKENS : SEEDS;
    for (let seed = 1; seed < seeds; seed++) settings.push({ factor: 'seed', value: seed, s: { ...DEFAULTS, ...c, seed } });
  }
  for (const pooling of PRECISION_POOLINGS) if (pooling !== 'mean') settings.push({ factor: 'precision-pooling', value: pooling, s: { ...DEFAULTS, pooling, precision: 'bf16' } });
  // without bf16 matrix units (or oneDNN) there is no bf16 analysis to compare: those settings are left out and said so
  const bf16 = bf16Available();
  if (!bf16.available) {
    process.stderr.write(`${task}: bf16 settings skipped: ${bf16.reason}\n`);
    settings.splice(0, settings.length, ...settings.filter((x) => x.s.precision !== 'bf16'));
  }
  // rows of an earlier run with the same options, resamples and model are reused (FRESH=1 recomputes them)
  const outFile = join(OUT, `${task}.json`);
  const earlier = !process.env.FRESH && existsSync(outFile) ? JSON.parse(readFileSync(outFile, 'utf8')) : null;
  const reusable = earlier && earlier.bootstrap_resamples === B && earlier.model === MODEL.replace(root + '/', '') ? earlier.rows : [];
  const rows = [];
  for (const { factor, value, s } of settings) {
    const old = reusable.find((r) => JSON.stringify(r.options) === JSON.stringify(s));
    if (old) { rows.push({ ...old, factor, value }); process.stderr.write(`${task} ${describe(s).padEnd(28)} reused from ${outFile}\n`); continue; }
    const pts = await layerPoints(task, s, examplesOf);
    const r = estimate(s, pts);
    rows.push({ factor, value, setting: describe(s), options: s, ...r });
    process.stderr.write(`${task} ${describe(s).padEnd(28)} n=${r.points} ranks ${r.ranks.join(',')}  modal ${r.bootstrap.blocks.map((b) => `${b.mode}(${Math.round(b.share * 100)}%)`).join(' ')}  uniform ${(r.bootstrap.uniform_share * 100).toFixed(0)}%  ${pts.cached ? 'cached' : `forward ${pts.forward_seconds.toFixed(1)}s`}, estimate ${r.estimate_seconds.toFixed(1)}s\n`);
  }
  // fp32 against bf16, pooling by pooling: |d_bf16 - d_fp32| in units of fp32's bootstrap standard deviation
  const find = (pooling, precision) => rows.find((r) => r.options.pooling === pooling && r.options.precision === precision && r.options.samples === DEFAULTS.samples && r.options.method === DEFAULTS.method && r.options.discard === DEFAULTS.discard && !r.options.errorAware && r.options.seed === 0);
  const precision = (bf16.available ? PRECISION_POOLINGS : []).map((pooling) => {
    const a = find(pooling, 'fp32'), b = find(pooling, 'bf16');
    const layers = a.profile.map((p, l) => {
      const q = b.profile[l], delta = q.id - p.id;
      return { layer: l, fp32: p.id, bf16: q.id, delta, fp32_error: p.error, bf16_error: q.error, z: p.error > 0 ? delta / p.error : delta === 0 ? 0 : Infinity };
    });
    return { pooling, layers, max_abs_z: Math.max(...layers.map((x) => Math.abs(x.z))), ranks_fp32: a.ranks, ranks_bf16: b.ranks, same_ranks: a.ranks.join() === b.ranks.join(), isa: b.precision_ran === 'bf16' ? JSON.parse(readFileSync(join(CACHE, b.cache.replace(/\.safetensors$/, '.json')), 'utf8')).isa : null };
  });
  const result = {
    task, model: MODEL.replace(root + '/', ''), source: t.source, max_length: t.maxLength, defaults: DEFAULTS, bootstrap_resamples: B,
    rows, precision, seconds: (performance.now() - t0) / 1000, date: new Date().toISOString(),
  };
  writeJson(outFile, result);
  return result;
}

/** results/crosscheck.json: the defaults' profile of this script against the tools' own (written by run.sh's analyze calls). */
function crosscheck() {
  const rowOf = (task, pred) => {
    const f = join(OUT, `${task}.json`);
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')).rows.find(pred) : undefined;
  };
  const pairs = [
    ['`gelora analyze --model --train` (brown-genre training split, max length 64) against the script\'s defaults row', join(CACHE, 'cli', 'brown-fp32', 'gelora.json'), rowOf('brown-genre', (r) => r.factor === 'defaults')],
    ['`gelora analyze --precision bf16` against the script\'s bf16 row (brown-genre)', join(CACHE, 'cli', 'brown-bf16', 'gelora.json'), rowOf('brown-genre', (r) => r.factor === 'precision')],
    ['`gelora analyze --hidden-states` on the cached points (brown-genre defaults) against the script\'s defaults row', join(CACHE, 'cli', 'brown-hs', 'gelora.json'), rowOf('brown-genre', (r) => r.factor === 'defaults')],
    ['the GLUE experiment\'s SST-2 analysis (experiments/glue/results/SST-2/analysis, by `gelora compare`) against the script\'s SST-2 defaults row', join(root, 'experiments', 'glue', 'results', 'SST-2', 'analysis', 'gelora.json'), rowOf('SST-2', (r) => r.factor === 'defaults')],
  ];
  const checks = [];
  for (const [what, file, row] of pairs) {
    if (!existsSync(file) || !row) { process.stderr.write(`crosscheck: skipped (${existsSync(file) ? 'no results row' : file + ' missing'}): ${what}\n`); continue; }
    const g = JSON.parse(readFileSync(file, 'utf8'));
    const max = Math.max(...g.profile.map((p, l) => Math.abs(p.id - row.profile[l].id)));
    checks.push({ what, file: file.replace(root + '/', ''), max_abs_delta: max, ranks_a: g.rule_ranks ?? g.ranks, ranks_b: row.ranks });
  }
  writeJson(join(OUT, 'crosscheck.json'), { checks });
  for (const c of checks) process.stderr.write(`crosscheck: max |delta d| ${c.max_abs_delta.toExponential(2)}, ranks ${c.ranks_a} / ${c.ranks_b}: ${c.what}\n`);
}

const args = process.argv.slice(2);
if (args[0] === '--crosscheck') { crosscheck(); process.exit(0); }
const tasks = args.length ? args : Object.keys(TASKS);
for (const task of tasks) {
  if (!TASKS[task]) throw new Error(`unknown task "${task}" (${Object.keys(TASKS).join(', ')})`);
  const r = await runTask(task);
  process.stderr.write(`${task}: ${r.rows.length} settings in ${r.seconds.toFixed(0)} s -> ${join(OUT, task + '.json')}\n`);
}
