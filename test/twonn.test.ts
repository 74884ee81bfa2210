import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { useBackend } from '../src/engine/backend.js';
import { dedupe, twoNearest, type Points } from '../src/id/knn.js';
import { bootstrapId, estimateId, idFromMus, idScaling, neighbourRatios } from '../src/id/twonn.js';
import { LayerPoints, idProfile, poolPlan, poolRows } from '../src/id/pooling.js';
import { Rng } from '../src/engine/random.js';
import { readPoints } from '../src/io/points.js';
import { HAS_NATIVE } from './gradcheck.js';
import { gaussian, sphere, swissRoll } from '../src/id/synthetic.js';
import { geloraRanks } from '../src/gelora/allocate.js';

const DATA = new URL('../../test/data/twonn/', import.meta.url).pathname;
interface Expected { file: string; 'fit_discard_0.1': number; ml: number; wprior_a2_b5: number }
const expected = JSON.parse(readFileSync(DATA + 'expected.json', 'utf8')) as Expected[];

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('TwoNN against DADApy reference values', () => {
  for (const e of expected) {
    it(e.file, () => {
      const p = readPoints(DATA + e.file);
      assert.ok(rel(estimateId(p, { method: 'fit', discard: 0.1 }).id, e['fit_discard_0.1']) < 1e-6);
      assert.ok(rel(estimateId(p, { method: 'ml' }).id, e.ml) < 1e-6);
      assert.ok(rel(estimateId(p, { method: 'bayes', alpha: 2, beta: 5 }).id, e.wprior_a2_b5) < 1e-6);
    });
  }
  it("DADApy's own test expectation on 2gaussians_in_2d (1.85 fit, 1.8722 Bayesian)", () => {
    const p = readPoints(DATA + 'dadapy_2gaussians_in_2d.csv');
    assert.equal(estimateId(p).id.toFixed(2), '1.85');
    assert.equal(estimateId(p, { method: 'bayes' }).id.toFixed(4), '1.8722');
  });
});

describe('TwoNN on manifolds of known dimension', () => {
  // tolerance: 4 standard errors of the estimator itself (d / sqrt(N))
  const cases: [string, () => Points, number][] = [
    ['5-d Gaussian in 64-d', () => gaussian(2000, 5, 64), 5],
    ['5-d Gaussian in 768-d', () => gaussian(2000, 5, 768, 4), 5],
    ['3-sphere in 128-d', () => sphere(2000, 3, 128), 3],
    ['swiss roll (2-d) in 64-d', () => swissRoll(2000, 64), 2],
  ];
  for (const [name, make, d] of cases) {
    it(name, () => {
      const p = make();
      for (const method of ['fit', 'ml', 'bayes'] as const) {
        const est = estimateId(p, { method }).id;
        assert.ok(Math.abs(est - d) < (4 * d) / Math.sqrt(p.n), `${method}: ${est} vs ${d}`);
      }
    });
  }
});

describe('robustness', () => {
  const clean = gaussian(600, 4, 32, 9);
  const base = estimateId(clean).id;

  it('points offset by a large constant give the same estimate', () => {
    const shifted = Float64Array.from(clean.data, (x) => x + 1e6);
    assert.ok(rel(estimateId({ ...clean, data: shifted }).id, base) < 1e-9);
  });

  it('float32 points far from the origin are centred before the distance products', () => {
    const shifted = Float32Array.from(clean.data, (x) => x + 300);
    const ref = estimateId({ ...clean, data: Float64Array.from(shifted) }).id;
    assert.ok(rel(estimateId({ ...clean, data: shifted }).id, ref) < 1e-9);
  });

  it('duplicated points are removed and counted; the estimate is unchanged', () => {
    const dup = new Float64Array((clean.n + 50) * clean.dim);
    dup.set(clean.data);
    for (let i = 0; i < 50; i++) dup.set(clean.data.subarray(i * 7 * clean.dim, (i * 7 + 1) * clean.dim), (clean.n + i) * clean.dim);
    const est = estimateId({ data: dup, n: clean.n + 50, dim: clean.dim });
    assert.equal(est.duplicates, 50);
    assert.equal(est.n, clean.n + 50);
    assert.ok(Number.isFinite(est.id));
    assert.ok(rel(est.id, base) < 1e-12);
  });

  it('ties (r1 == r2) are kept with mu = 1 and give a finite estimate', () => {
    // a 1-d lattice has exact ties everywhere but at its ends; jitter half of it
    const n = 200, data = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) { data[i * 2] = i; data[i * 2 + 1] = i % 2 === 0 ? 0 : 0.25 * Math.sin(i); }
    const r = neighbourRatios({ data, n, dim: 2 });
    assert.ok(r.ties > 0, 'the set has ties');
    const est = estimateId({ data, n, dim: 2 });
    assert.equal(est.ties, r.ties);
    assert.ok(Number.isFinite(est.id) && Number.isFinite(estimateId({ data, n, dim: 2 }, { method: 'ml' }).id));
    // same number as the formula applied with log(1) = 0 for the ties
    assert.equal(est.id, idFromMus(r.mus).id);
  });

  it('a pure lattice (every mu = 1) is an error, not Infinity', () => {
    const square = { data: Float64Array.from([0, 0, 1, 0, 1, 1, 0, 1]), n: 4, dim: 2 };
    for (const method of ['fit', 'ml'] as const) assert.throws(() => estimateId(square, { method }), /unbounded/);
    assert.ok(Number.isFinite(estimateId(square, { method: 'bayes' }).id), 'the prior keeps the Bayesian estimate finite');
  });

  it('a fit that keeps every ratio (discard 0) is an error, not Infinity; the smallest discard that leaves one out works', () => {
    const mus = Float64Array.from({ length: 50 }, (_, i) => 1 + (i + 1) / 25);
    assert.throws(() => idFromMus(mus, { method: 'fit', discard: 0 }), /keeps all 50 ratios.*infinite.*method ml/);
    assert.ok(Number.isFinite(idFromMus(mus, { method: 'fit', discard: 1 / 50 }).id));
  });

  it('bad input names the point and coordinate', () => {
    const data = Float64Array.from(clean.data);
    data[3 * clean.dim + 2] = NaN;
    assert.throws(() => estimateId({ ...clean, data }), /point 3, coordinate 2/);
    assert.throws(() => estimateId({ data: new Float64Array(4), n: 2, dim: 2 }), /at least 3 distinct points/);
    assert.throws(() => estimateId({ data: new Float64Array(12), n: 4, dim: 3 }), /at least 3 distinct points; got 1 \(3 duplicates removed\)/);
  });

  it('the estimate does not depend on the units: points scaled by 1e-25, 1e-22, 1e20, 1e200 (both backends)', () => {
    // before rescaling: 4.08 against 4.46 at 1e-25 (float32 squared distances underflow), "ratio NaN" at 1e20 and 1e200
    const p = gaussian(800, 5, 32, 21);
    for (const backend of HAS_NATIVE ? (['js', 'native'] as const) : (['js'] as const)) {
      useBackend(backend);
      for (const method of ['fit', 'ml', 'bayes'] as const) {
        const ref = estimateId(p, { method });
        for (const s of [1e-25, 1e-22, 1e20, 1e200]) {
          const est = estimateId({ ...p, data: Float64Array.from(p.data, (x) => x * s) }, { method });
          assert.ok(rel(est.id, ref.id) < 1e-9, `${backend} ${method} x${s}: ${est.id} vs ${ref.id}`);
          assert.ok(rel(est.scale, ref.scale * s) < 1e-9, `${backend} ${method} x${s}: scale ${est.scale} vs ${ref.scale * s}`);
        }
      }
    }
    useBackend('js');
  });

  it('rescaling is by powers of two: distances of ordinary data are the unscaled ones bit for bit', () => {
    const p = gaussian(300, 4, 16, 22);
    const a = twoNearest(p), b = twoNearest({ ...p, data: Float64Array.from(p.data, (x) => x * 2 ** 40) });
    assert.deepEqual(Array.from(b.i1), Array.from(a.i1));
    assert.deepEqual(Array.from(b.r1), Array.from(a.r1, (r) => r * 2 ** 40));
    assert.deepEqual(Array.from(b.r2), Array.from(a.r2, (r) => r * 2 ** 40));
  });

  it('dedupe keeps first occurrences', () => {
    const p = { data: Float32Array.from([1, 2, 3, 4, 1, 2, 5, 6, 3, 4]), n: 5, dim: 2 };
    const d = dedupe(p);
    assert.deepEqual(Array.from(d.kept), [0, 1, 3]);
    assert.equal(d.duplicates, 2);
  });
});

describe('nearest neighbours', () => {
  it('blocked search equals brute force, on both backends, whatever the block size', () => {
    const p = gaussian(300, 6, 20, 5);
    const brute = (i: number): [number, number] => {
      const ds: number[] = [];
      for (let j = 0; j < p.n; j++) if (j !== i) {
        let s = 0;
        for (let t = 0; t < p.dim; t++) s += (p.data[i * p.dim + t] - p.data[j * p.dim + t]) ** 2;
        ds.push(Math.sqrt(s));
      }
      ds.sort((a, b) => a - b);
      return [ds[0], ds[1]];
    };
    for (const backend of HAS_NATIVE ? (['js', 'native'] as const) : (['js'] as const)) {
      useBackend(backend);
      for (const blockRows of [7, 64, 300]) {
        const nn = twoNearest(p, { blockRows });
        for (let i = 0; i < p.n; i += 13) {
          const [b1, b2] = brute(i);
          assert.ok(Math.abs(nn.r1[i] - b1) < 1e-12 && Math.abs(nn.r2[i] - b2) < 1e-12, `${backend} block ${blockRows} point ${i}`);
        }
      }
    }
    useBackend('js');
  });
});

describe('scale analysis and bootstrap', () => {
  it('decimation follows DADApy: sizes N, N/2, ... above nMin, error 0 at full size', () => {
    const p = gaussian(400, 3, 16, 11);
    const s = idScaling(p, { seed: 1 });
    assert.deepEqual(s.map((x) => x.size), [400, 200, 100, 50, 25, 13]);
    assert.deepEqual(s.map((x) => x.repeats), [1, 2, 4, 8, 16, 31]);
    assert.equal(s[0].error, 0);
    assert.equal(s[0].id, estimateId(p).id);
    assert.ok(s[1].scale > s[0].scale, 'fewer points: larger neighbour distances');
    assert.deepEqual(idScaling(p, { seed: 1 }), s, 'seeded');
  });

  it('bootstrap interval brackets the estimate and is seeded', () => {
    const r = neighbourRatios(gaussian(800, 4, 16, 12));
    const est = idFromMus(r.mus).id;
    const b = bootstrapId(r.mus, { samples: 100, seed: 3 });
    assert.ok(b.low < est && est < b.high && b.std > 0);
    assert.deepEqual(bootstrapId(r.mus, { samples: 100, seed: 3 }), b);
  });
});

describe('points from hidden states', () => {
  // B = 2, T = 3, H = 2; second sequence padded at t = 2; ids 101 = [CLS], 102 = [SEP]
  const hidden = Float32Array.from([1, 1, 2, 4, 3, 9, /* b1 */ 5, 5, 7, 1, 100, 100]);
  const mask = [1, 1, 1, 1, 1, 0], ids = [101, 7, 102, 101, 8, 0];
  const rows = (mode: 'mean' | 'cls' | 'last' | 'tokens', exclude?: number[]): number[] =>
    Array.from(poolRows(hidden, 2, poolPlan(mask, ids, 2, 3, { mode, excludeIds: exclude ? new Set(exclude) : undefined })));

  it('mean over non-pad tokens, optionally without special tokens', () => {
    assert.deepEqual(rows('mean'), [2, Math.fround(14 / 3), 6, 3]);
    assert.deepEqual(rows('mean', [101, 102]), [2, 4, 7, 1]);
  });
  it('cls and last non-pad token', () => {
    assert.deepEqual(rows('cls'), [1, 1, 5, 5]);
    assert.deepEqual(rows('last'), [3, 9, 7, 1]);
  });
  it('tokens: every non-pad token, the same selection for every layer', () => {
    assert.deepEqual(rows('tokens'), [1, 1, 2, 4, 3, 9, 5, 5, 7, 1]);
    const plan = poolPlan(mask, ids, 2, 3, { mode: 'tokens', keepProb: 0.5, rng: new Rng(4) });
    const lp = new LayerPoints(2, 2);
    lp.add(0, hidden, plan);
    lp.add(1, Float32Array.from(hidden, (x) => -x), plan);
    assert.equal(lp.points(0).n, plan.length);
    assert.deepEqual(Array.from(lp.points(1).data), Array.from(lp.points(0).data, (x) => -x));
  });
  it('an all-padding sequence is an error', () => {
    assert.throws(() => poolPlan([0, 0, 0], [0, 0, 0], 1, 3, { mode: 'mean' }), /no tokens/);
  });
  it('a layer of identical points (or of 2 distinct ones) gets d = 0, marked collapsed; the rule then gives block 1 ceil(d_1) + 1', () => {
    // --pooling cls at layer 0: every input has the same [CLS] embedding, by construction
    const same = { data: new Float32Array(50 * 16).fill(0.5), n: 50, dim: 16 };
    const two = { data: Float32Array.from({ length: 50 * 16 }, (_, i) => (Math.floor(i / 16) % 2 ? 1 : -1)), n: 50, dim: 16 };
    const rich = gaussian(50, 3, 16, 3);
    const prof = idProfile([same, rich, two], { bootstrap: 20 });
    assert.deepEqual([prof[0].id, prof[0].error, prof[0].low, prof[0].high, prof[0].collapsed, prof[0].duplicates], [0, 0, 0, 0, true, 49]);
    assert.match(prof[0].note!, /only 1 distinct value: a finite set of points, dimension 0/);
    assert.deepEqual([prof[2].id, prof[2].collapsed, prof[2].duplicates], [0, true, 48]);
    assert.equal(prof[1].collapsed, undefined);
    assert.ok(prof[1].id > 1);
    assert.deepEqual(geloraRanks(prof), [Math.ceil(prof[1].id) + 1, 1]);
    // too few points in all is a sample too small, still an error
    assert.throws(() => idProfile([{ data: new Float32Array(4), n: 2, dim: 2 }]), /at least 3 distinct points/);
    assert.throws(() => idProfile([{ data: Float32Array.of(1, NaN, 0, 0, 1, 1), n: 3, dim: 2 }]), /layer 0: value NaN at point 0, coordinate 1/);
  });
  it('a profile gives every layer an estimate and an interval around it', () => {
    const prof = idProfile([gaussian(400, 2, 16, 1), gaussian(400, 6, 16, 2)], { bootstrap: 50 });
    assert.equal(prof.length, 2);
    assert.ok(prof[0].id < prof[1].id);
    for (const l of prof) assert.ok(l.low <= l.id && l.id <= l.high && l.error > 0);
  });
});
