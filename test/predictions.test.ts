import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tfidfBaseline } from '../src/baseline/tfidf.js';
import { compareMethods, comparisonsMarkdown, pairedBootstrap, pairedBootstrapRuns } from '../src/report/significance.js';
import { accuracy, evaluate } from '../src/train/metrics.js';
import { readPredictions, writePredictions } from '../src/train/predictions.js';
import { loadTask } from '../src/train/task.js';
import { dogTask } from './dog-task.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ROOT + 'dist/src/cli/main.js';
const gelora = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

describe('dev predictions', () => {
  it('predictions.jsonl round-trips; a bad line, a skipped index or a NaN is refused with the file and line', () => {
    const t = dogTask(10, 1), f = join(t.dir, 'p.jsonl');
    writePredictions(f, { prediction: [1, 0, 2.5], label: [1, 1, 2] });
    assert.deepEqual(readPredictions(f), { prediction: [1, 0, 2.5], label: [1, 1, 2] });
    assert.ok(!existsSync(`${f}.tmp`));
    assert.throws(() => writePredictions(f, { prediction: [NaN], label: [0] }), /dev example 0 is NaN/);
    assert.throws(() => writePredictions(f, { prediction: [1], label: [0, 1] }), /1 predictions for 2 dev labels/);
    assert.deepEqual(readPredictions(f).prediction, [1, 0, 2.5], 'a refused write leaves the old file');
    writeFileSync(f, '{"index":0,"prediction":1,"label":1}\n{"index":2,"prediction":1,"label":1}\n');
    assert.throws(() => readPredictions(f), /p\.jsonl:2: expected index 1, got 2/);
    writeFileSync(f, '{"index":0,"prediction":null,"label":1}\n');
    assert.throws(() => readPredictions(f), /p\.jsonl:1: prediction and label must be finite/);
    writeFileSync(f, 'nope\n');
    assert.throws(() => readPredictions(f), /p\.jsonl:1: not JSON/);
  });

  it('train saves the selected state\'s dev predictions, which score its metric; eval --predictions writes the same', async () => {
    const t = dogTask(240, 7), out = join(t.dir, 'lora');
    const r = gelora('train', '--model', t.model, '--train', t.data, '--method', 'lora', '--epochs', '3', '--lr', '2e-3', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /the saved predictions score/);
    const m = readJson<{ best: { primary: number }; metric: string }>(join(out, 'metrics.json'));
    const p = readPredictions(join(out, 'predictions.jsonl'));
    const task = await loadTask({ train: t.data, seed: 0 });
    assert.equal(p.prediction.length, task.dev.length);
    assert.deepEqual(p.label, task.dev.map((x) => x.label));
    assert.equal(evaluate('classification', p.prediction, p.label, 'accuracy').primary, m.best.primary);
    const evFile = join(t.dir, 'eval-pred.jsonl');
    const ev = gelora('eval', '--model', t.model, '--adapter', join(out, 'adapter'), '--train', t.data, '--predictions', evFile);
    assert.equal(ev.status, 0, ev.stderr);
    assert.deepEqual(readPredictions(evFile), p);
  });

  it('compare gathers every run\'s predictions into predictions.json and reports both paired tests', () => {
    const t = dogTask(200, 5), out = join(t.dir, 'cmp');
    const r = gelora('compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,lora', '--seeds', '2', '--epochs', '1', '--lr', '2e-3', '--samples', '150', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const preds = readJson<{ kind: string; metric: string; runs: { method: string; seed: number; prediction: number[]; label: number[] }[] }>(join(out, 'predictions.json'));
    assert.deepEqual(preds.runs.map((x) => `${x.method}-${x.seed}`), ['gelora-0', 'gelora-1', 'lora-0', 'lora-1']);
    const res = readJson<{ runs: { method: string; seed: number; metric_value: number }[]; significance: { a: string; b: string; overSeeds: { mean: number }; overExamples: { mean: number; lo: number; hi: number; verdict: string } }[] }>(join(out, 'results.json'));
    for (const run of res.runs) {
      const p = preds.runs.find((x) => x.method === run.method && x.seed === run.seed)!;
      assert.equal(evaluate('classification', p.prediction, p.label, 'accuracy').primary, run.metric_value);
    }
    const s = res.significance[0];
    assert.deepEqual([s.a, s.b], ['gelora', 'lora']);
    const mean = (m: string) => res.runs.filter((x) => x.method === m).reduce((a, x) => a + x.metric_value, 0) / 2;
    assert.ok(Math.abs(s.overSeeds.mean - (mean('gelora') - mean('lora'))) < 1e-12);
    assert.ok(Math.abs(s.overExamples.mean - s.overSeeds.mean) < 1e-12, 'accuracy: the bootstrap\'s full-set difference is the seeds\' mean difference');
    assert.ok(s.overExamples.lo <= s.overExamples.mean && s.overExamples.mean <= s.overExamples.hi);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /\| gelora − lora \| 2 \| -?\d\.\d{4} \| \[/);
    assert.ok(readFileSync(join(out, 'report.html'), 'utf8').includes('gelora − lora'));
  });
});

describe('paired bootstrap over seeds and dev examples', () => {
  const gold = Array.from({ length: 300 }, (_, i) => i % 2);
  const flip = (every: number, off = 0) => gold.map((g, i) => (i % every === off ? 1 - g : g));

  it('one seed is the single-run paired bootstrap; identical runs tie at exactly 0', () => {
    const a = flip(5), b = flip(3);
    const one = pairedBootstrapRuns([a], [b], [gold], accuracy, 300, 4), ref = pairedBootstrap(a, b, gold, accuracy, 300, 4);
    assert.deepEqual([one.mean, one.lo, one.hi, one.verdict], [ref.mean, ref.lo, ref.hi, ref.verdict]);
    const same = pairedBootstrapRuns([a, b], [a, b], [gold, gold], accuracy, 200);
    assert.deepEqual([same.lo, same.mean, same.hi, same.verdict], [0, 0, 0, 'tie']);
  });

  it('averages the per-seed differences; a consistent gain is better, opposite seeds tie', () => {
    const good = flip(10), bad = flip(4);
    const r = pairedBootstrapRuns([good, good], [bad, bad], [gold, gold], accuracy, 400);
    assert.ok(Math.abs(r.mean - (accuracy(good, gold) - accuracy(bad, gold))) < 1e-12);
    assert.equal(r.verdict, 'better');
    const mixed = pairedBootstrapRuns([good, bad], [bad, good], [gold, gold], accuracy, 400);
    assert.equal(mixed.mean, 0);
    assert.equal(mixed.verdict, 'tie');
    // dev sets that differ per seed are resampled on their own
    const gold2 = gold.slice(0, 200).map((g) => 1 - g), good2 = gold2.map((g, i) => (i % 10 === 0 ? 1 - g : g)), bad2 = gold2.map((g, i) => (i % 4 === 0 ? 1 - g : g));
    assert.equal(pairedBootstrapRuns([good, good2], [bad, bad2], [gold, gold2], accuracy, 300).verdict, 'better');
    assert.throws(() => pairedBootstrapRuns([good], [bad.slice(1)], [gold], accuracy), /299 predictions for 300 dev examples/);
  });

  it('compareMethods pairs by seed, refuses pairs scored on different dev sets and marks same-rank runs', () => {
    const run = (method: string, seed: number, p: number[], ranks = [2, 2]) => ({ method, seed, metric_value: accuracy(p, gold), ranks, prediction: p, label: gold });
    const runs = [run('gelora', 0, flip(10)), run('gelora', 1, flip(9)), run('lora', 1, flip(4)), run('lora', 0, flip(5)), run('lora', 2, flip(6))];
    const c = compareMethods(runs, 'gelora', 'lora', accuracy)!;
    assert.deepEqual(c.seeds, [0, 1]);
    assert.ok(Math.abs(c.overSeeds!.mean - ((accuracy(flip(10), gold) - accuracy(flip(5), gold)) + (accuracy(flip(9), gold) - accuracy(flip(4), gold))) / 2) < 1e-12);
    assert.equal(c.identicalRanks, true);
    assert.equal(compareMethods(runs, 'gelora', 'lora', null)!.overExamples, null, 'no metric, no bootstrap');
    const other = [...runs.slice(0, 3), { ...run('lora', 0, flip(5)), label: flip(2) }];
    assert.throws(() => compareMethods(other, 'gelora', 'lora', accuracy), /seed 0 scored different dev sets/);
    const same = [run('gelora', 0, flip(5)), run('gelora', 1, flip(4)), run('lora', 0, flip(5)), run('lora', 1, flip(4))];
    assert.match(comparisonsMarkdown([compareMethods(same, 'gelora', 'lora', accuracy)!]), /\| gelora − lora \| 2 \| 0\.0000 \| \[0\.0000, 0\.0000\] \| tie \(same ranks\) \|/);
  });
});

describe('gelora baseline', () => {
  it('prints the TF-IDF + LR result as JSON and a line of text, C chosen on dev, predictions saved', async () => {
    const t = dogTask(300, 3), pred = join(t.dir, 'bl.jsonl'), outFile = join(t.dir, 'bl.json');
    const r = gelora('baseline', '--train', t.data, '--c', '0.1,10', '--out', outFile, '--predictions', pred);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { task: string; metric: string; C: number; score: number; grid: { C: number; score: number }[]; train: number; dev: number };
    assert.deepEqual(readJson(outFile), j);
    const task = await loadTask({ train: t.data, seed: 0 });
    const ref = tfidfBaseline(task.train, task.dev, task.labels.length, (p, g) => accuracy(p, g), { grid: [0.1, 10] });
    assert.deepEqual([j.C, j.score, j.grid, j.train, j.dev], [ref.C, ref.score, ref.grid, task.train.length, task.dev.length]);
    assert.match(r.stderr, new RegExp(`dev accuracy ${ref.score.toFixed(4)} at C=${ref.C}`));
    assert.deepEqual(readPredictions(pred).prediction, ref.predictions);
    // the dog task is learnable from words: the baseline has to find it
    assert.ok(j.score > 0.9, `${j.score}`);
  });

  it('refuses regression labels and a missing dataset, naming the fix', () => {
    const t = dogTask(20, 2), f = join(t.dir, 'reg.csv');
    writeFileSync(f, 'text,label\n' + Array.from({ length: 30 }, (_, i) => `a b ${i},${(i * 0.37).toFixed(2)}`).join('\n') + '\n');
    const r = gelora('baseline', '--train', f);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /a classifier; this task's labels are real-valued/);
    const none = gelora('baseline');
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /give --train FILE/);
  });
});

describe('compare where GeLoRA\'s allocation is uniform', () => {
  interface Run { method: string; seed: number; metric_value: number; same_as?: string; ranks: number[] }
  /** a compare folder whose analysis says: flat profile (uniform ranks) or a growing one */
  const withProfile = (t: { dir: string; model: string; data: string }, name: string, ids: (layer: number) => number): string => {
    const first = join(t.dir, 'first');
    if (!existsSync(join(first, 'analysis', 'gelora.json'))) {
      const r = gelora('compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,lora', '--seeds', '1', '--epochs', '1', '--samples', '100', '--max-steps', '1', '--out', first);
      assert.equal(r.status, 0, r.stderr);
    }
    const g = readJson<{ profile: { layer: number; id: number; low: number; high: number }[] }>(join(first, 'analysis', 'gelora.json'));
    g.profile = g.profile.map((p) => ({ ...p, id: ids(p.layer), low: ids(p.layer) - 0.1, high: ids(p.layer) + 0.1 }));
    const out = join(t.dir, name);
    spawnSync('mkdir', ['-p', join(out, 'analysis')]);
    writeFileSync(join(out, 'analysis', 'gelora.json'), JSON.stringify(g));
    return out;
  };

  it('says so, trains GeLoRA once (as LoRA) and draws the budget curve from LoRA at each rank', () => {
    const t = dogTask(160, 4), out = withProfile(t, 'flat', () => 5);
    const r = gelora('compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,lora', '--seeds', '1', '--epochs', '1', '--lr', '2e-3', '--budget-like-rank', '1', '--budget-curve', '1,2', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(out, 'runs', 'gelora-seed0')), 'the GeLoRA run is not trained a second time');
    assert.ok(existsSync(join(out, 'budget', 'r2', 'runs', 'lora-seed0', 'metrics.json')));
    const res = readJson<{ runs: Run[]; uniform_allocation: number[]; budget_curve: { method: string; points: { r: number; params: number; mean: number; same_as_lora?: boolean }[] }[] }>(join(out, 'results.json'));
    const [g, l] = ['gelora', 'lora'].map((m) => res.runs.find((x) => x.method === m)!);
    assert.equal(g.same_as, 'lora');
    assert.equal(g.metric_value, l.metric_value);
    assert.deepEqual(res.uniform_allocation, l.ranks);
    const lora2 = readJson<{ best: { primary: number }; trainable_params: number }>(join(out, 'budget', 'r2', 'runs', 'lora-seed0', 'metrics.json'));
    const [lc, gc] = res.budget_curve;
    assert.deepEqual(lc.points.map((p) => [p.r, p.mean]), [[1, l.metric_value], [2, lora2.best.primary]]);
    assert.ok(lc.points[1].params === lora2.trainable_params && lc.points[1].params > lc.points[0].params);
    assert.ok(gc.points.every((p) => p.same_as_lora), 'a flat profile scaled to any budget stays uniform');
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /GeLoRA's allocation is uniform: rank 1 in every block/);
    assert.match(md, /\| 2 \| \d+ \| \d\.\d{4} ± 0\.0000 \| 1 \| same ranks as LoRA/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(html.includes('<h2>Budget curve</h2>') && html.includes('lora = gelora (same ranks: identical runs)'));
    assert.ok(!/<td>gelora<\/td>/.test(html), 'no second, identical row');
    assert.ok(existsSync(join(out, 'budget.svg')));
  });

  it('trains GeLoRA and draws no curve where the allocation is not uniform', () => {
    const t = dogTask(160, 4), out = withProfile(t, 'growing', (layer) => 2 + 3 * layer * (layer % 2));
    const r = gelora('compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,lora', '--seeds', '1', '--epochs', '1', '--budget-like-rank', '2', '--budget-curve', '1,2', '--max-steps', '2', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const res = readJson<{ runs: Run[]; budget_curve?: unknown }>(join(out, 'results.json'));
    assert.ok(new Set(res.runs.find((x) => x.method === 'gelora')!.ranks).size > 1);
    assert.ok(existsSync(join(out, 'runs', 'gelora-seed0', 'metrics.json')) && !existsSync(join(out, 'budget.svg')) && res.budget_curve === undefined);
    assert.doesNotMatch(readFileSync(join(out, 'results.md'), 'utf8'), /allocation is uniform/);
  });
});
