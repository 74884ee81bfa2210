import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairedBootstrap, pairedSeeds } from '../src/report/significance.js';
import { accuracy } from '../src/train/metrics.js';

test('paired seeds: t interval on the per-seed differences', () => {
  // differences 0.01, 0.02, 0.03: mean 0.02, sd 0.01, t(2) = 4.303, half width 0.0248 > 0.02: a tie
  const r = pairedSeeds([0.61, 0.62, 0.63], [0.60, 0.60, 0.60]);
  assert.ok(Math.abs(r.mean - 0.02) < 1e-12);
  assert.ok(Math.abs(r.hi - r.mean - 4.303 * 0.01 / Math.sqrt(3)) < 1e-9);
  assert.equal(r.verdict, 'tie');
  // differences 0.02, 0.025, 0.03: sd 0.005, half width 0.0124 < 0.025
  assert.equal(pairedSeeds([0.62, 0.625, 0.63], [0.60, 0.60, 0.60]).verdict, 'better');
  assert.equal(pairedSeeds([0.6, 0.7], [0.65, 0.64]).verdict, 'tie');
  assert.throws(() => pairedSeeds([1, 2], [1]), /same seeds/);
});

test('paired bootstrap: identical predictions tie at exactly 0, a clearly better set wins', () => {
  const gold = Array.from({ length: 400 }, (_, i) => i % 2);
  const same = pairedBootstrap(gold, gold, gold, accuracy, 200);
  assert.deepEqual([same.lo, same.mean, same.hi, same.verdict], [0, 0, 0, 'tie']);
  const worse = gold.map((g, i) => (i % 4 === 0 ? 1 - g : g)); // 75% accurate
  const r = pairedBootstrap(gold, worse, gold, accuracy, 500);
  assert.ok(Math.abs(r.mean - 0.25) < 1e-12);
  assert.ok(r.lo > 0.15 && r.hi < 0.35 && r.lo < 0.25 && r.hi > 0.25, `${r.lo} ${r.hi}`);
  assert.equal(r.verdict, 'better');
  assert.equal(pairedBootstrap(worse, gold, gold, accuracy, 500).verdict, 'worse');
});

test('budget curve: one line per method, a point per budget with its error bar, log-scaled x', async () => {
  const { budgetCurveSvg } = await import('../src/report/budget.js');
  const svg = budgetCurveSvg([
    { method: 'lora', points: [{ params: 1e4, mean: 0.6, std: 0.01, runs: 3 }, { params: 1e5, mean: 0.65, std: 0.02, runs: 3 }] },
    { method: 'gelora', points: [{ params: 3e4, mean: 0.62, std: 0.01, runs: 3 }] },
  ], { title: 't', metric: 'accuracy' });
  assert.equal((svg.match(/<circle/g) ?? []).length, 3);
  assert.match(svg, /lora: 10000 params, 0\.6000 ± 0\.0100 \(3 runs\)/);
  // 1e4 and 1e5 are one decade apart: the 3e4 point sits log10(3) of the way between them
  const cx = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.ok(Math.abs((cx[2] - cx[0]) / (cx[1] - cx[0]) - Math.log10(3)) < 1e-9);
});
