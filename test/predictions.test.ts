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
    const r = gelora('baseline', '--train', t.data, '--c', '0.1', '--c', '10', '--out', outFile, '--predictions', pred);
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
