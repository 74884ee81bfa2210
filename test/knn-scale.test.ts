import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { useBackend } from '../src/engine/backend.js';
import { Rng } from '../src/engine/random.js';
import { gramErrorFactor, gramErrorFactorBf16, twoNearest, type Points } from '../src/id/knn.js';
import { idProfile } from '../src/id/pooling.js';
import { hiddenStatesProfile } from '../src/gelora/analyze.js';
import { floatToHalf, halfToFloat, writeSafetensors } from '../src/io/safetensors.js';
import { readPoints } from '../src/io/points.js';
import { HAS_NATIVE } from './gradcheck.js';
import { syntheticLayer, writeSyntheticHiddenStates } from '../bench/analyze-scale.js';

const BACKENDS = HAS_NATIVE ? (['js', 'native'] as const) : (['js'] as const);

/** Float64 distances to every other point, straightforwardly: the two nearest, ties to the lower index. */
function bruteTwo(p: Points, i: number): { d: number[]; j: number[] } {
  let d1 = Infinity, d2 = Infinity, j1 = -1, j2 = -1;
  for (let j = 0; j < p.n; j++) {
    if (j === i) continue;
    let s = 0;
    for (let t = 0; t < p.dim; t++) s += (p.data[i * p.dim + t] - p.data[j * p.dim + t]) ** 2;
    if (s < d1) { d2 = d1; j2 = j1; d1 = s; j1 = j; } else if (s < d2) { d2 = s; j2 = j; }
  }
  return { d: [Math.sqrt(d1), Math.sqrt(d2)], j: [j1, j2] };
}

/**
 * 3,000 points in 48-d: a 6-d curved cloud far from the origin, with exact duplicates, points on an
 * integer lattice (many exact ties: a lattice point's neighbours are at the same distance),
 * near-duplicates one float32 step apart and a cluster of them.
 */
function hardPoints(): Float32Array {
  const n = 3000, dim = 48, rng = new Rng(7), data = new Float32Array(n * dim);
  for (let i = 0; i < 2200; i++) {
    const z = Array.from({ length: 6 }, () => rng.normal());
    for (let t = 0; t < dim; t++) data[i * dim + t] = 300 + z[t % 6] * (1 + t / dim) + Math.sin(z[(t + 1) % 6] * t);
  }
  for (let i = 2200; i < 2700; i++) for (let t = 0; t < dim; t++) data[i * dim + t] = t < 3 ? Math.floor(rng.next() * 8) : 0; // lattice
  for (let i = 2700; i < 2850; i++) data.copyWithin(i * dim, (i - 2700) * 11 * dim, ((i - 2700) * 11 + 1) * dim); // duplicates
  for (let i = 2850; i < n; i++) {
    data.copyWithin(i * dim, (i - 2850) * 13 * dim, ((i - 2850) * 13 + 1) * dim);
    const t = i % dim, bits = new Uint32Array(data.buffer, (i * dim + t) * 4, 1);
    bits[0] += 1; // one float32 ulp away
  }
  // a cluster of 16 copies of point 5, copy m moved m ulps along coordinate m: their distances are
  // far below the float32 Gram products' rounding (the coordinates are ~300), so the candidate lists
  // of these points are noise and only the error bound sends them to the exact recheck
  for (let m = 1; m <= 16; m++) {
    const i = 2980 + m - 1;
    data.copyWithin(i * dim, 5 * dim, 6 * dim);
    new Uint32Array(data.buffer, (i * dim + m) * 4, 1)[0] += m;
  }
  return data;
}

describe('exact two nearest neighbours at scale (fused candidates, float64 re-measure, certificate)', () => {
  const data = hardPoints(), p: Points = { data, n: 3000, dim: 48 };
  const ref = Array.from({ length: p.n }, (_, i) => bruteTwo(p, i));

  for (const backend of BACKENDS) for (const gram of ['fp32', 'bf16'] as const) {
    it(`${backend}, ${gram} candidates: r1, r2 equal the brute-force float64 distances to 1e-9 relative, ids equal except at exact ties`, () => {
      useBackend(backend);
      const timings: Record<string, number> = {};
      for (const blockRows of [97, 512]) {
        const nn = twoNearest(p, { blockRows, timings, gram });
        for (let i = 0; i < p.n; i++) {
          const r = ref[i];
          for (const [got, want] of [[nn.r1[i], r.d[0]], [nn.r2[i], r.d[1]]]) {
            assert.ok(want === 0 ? got === 0 : Math.abs(got - want) <= 1e-9 * want, `${backend} block ${blockRows} point ${i}: ${got} vs ${want}`);
          }
          // ids: the same point, or another at the same distance (a tie, broken to the lower index in both)
          assert.ok(nn.i1[i] === r.j[0] || r.d[0] === r.d[1], `${backend} point ${i}: nearest ${nn.i1[i]} vs ${r.j[0]}`);
          assert.ok(nn.i1[i] !== i && nn.i2[i] !== i && nn.i1[i] !== nn.i2[i]);
        }
      }
      // the lattice's ties defeat the float32 candidate lists, so the exact recheck ran
      assert.ok(timings.rechecked > 0, `rechecked ${timings.rechecked}`);
    });
  }

  it('bf16 candidates: the same kernel contract, equal to float32 on values bf16 holds exactly, on both backends', () => {
    const rng = new Rng(4), n = 300, dim = 24, k = 6;
    const X = Float32Array.from({ length: n * dim }, () => Math.floor(rng.next() * 9) - 4); // small integers: exact in bf16, exact products
    const sq = new Float32Array(n);
    for (let i = 0; i < n; i++) for (let t = 0; t < dim; t++) sq[i] += X[i * dim + t] ** 2;
    for (const b of BACKENDS) {
      const K = useBackend(b), run = (f: typeof K.knnCandidates) => {
        const idx = new Int32Array(n * k), d2 = new Float32Array(n * k);
        f.call(K, idx, d2, X, sq, n, dim, k, 41);
        return { idx: Array.from(idx), d2: Array.from(d2) };
      };
      assert.deepEqual(run(K.knnCandidatesBf16), run(K.knnCandidates), b);
    }
  });

  it('the bf16 error bound covers worst-case rounding (every coordinate rounded the same way), where the float32 one does not', () => {
    // coordinates just under a bf16 midpoint above 1 all round down by almost 2^-8 relative: the dot
    // product's rounding errors add up instead of cancelling
    const dim = 1024, n = 3, x = 1 + 2 ** -8 - 2 ** -20, X = new Float32Array(n * dim);
    for (let t = 0; t < dim; t++) { X[t] = x; X[dim + t] = t % 2 ? x : -x; X[2 * dim + t] = 0.5 * x; }
    const sq = new Float32Array(n);
    for (let i = 0; i < n; i++) { let s = 0; for (let t = 0; t < dim; t++) s += X[i * dim + t] ** 2; sq[i] = s; }
    for (const b of BACKENDS) {
      const K = useBackend(b), idx = new Int32Array(n * 2), d2 = new Float32Array(n * 2);
      K.knnCandidatesBf16(idx, d2, X, sq, n, dim, 2, 3);
      let worst = 0, worst32 = 0;
      for (let q = 0; q < n * 2; q++) {
        const i = Math.floor(q / 2), j = idx[q];
        let exact = 0;
        for (let t = 0; t < dim; t++) exact += (X[i * dim + t] - X[j * dim + t]) ** 2;
        const err = Math.abs(d2[q] - exact), scale = sq[i] + sq[j];
        worst = Math.max(worst, err / (gramErrorFactorBf16(dim) * scale));
        worst32 = Math.max(worst32, err / (gramErrorFactor(dim) * scale));
      }
      assert.ok(worst <= 1, `${b}: the bf16 error is ${worst} of its bound`);
      assert.ok(worst > 0.1, `${b}: the test reaches ${worst} of the bound (it should come near it)`);
      assert.ok(worst32 > 1, `${b}: the float32 bound would not cover the bf16 error (${worst32})`);
    }
  });

  it('bf16 and float32 searches give the same neighbours and distances, bit for bit (a closed curve, a 24-d manifold)', () => {
    const n = 1200, dim = 256, rng = new Rng(9);
    // a circle through 256-d with a little noise: nearest distances ~1/200 of the norms, far below the
    // bf16 bound, so the search must fall back to float32; the 24-d manifold's are not
    const circle = new Float32Array(n * dim), u = Float32Array.from({ length: 2 * dim }, () => rng.normal() / Math.sqrt(dim));
    for (let i = 0; i < n; i++) {
      const a = rng.next() * 2 * Math.PI;
      for (let t = 0; t < dim; t++) circle[i * dim + t] = Math.cos(a) * u[t] + Math.sin(a) * u[dim + t] + 1e-4 * rng.normal();
    }
    for (const b of BACKENDS) {
      useBackend(b);
      for (const [name, data, fallbacks] of [['circle', circle, 1], ['24-d', syntheticLayer(16, 33, n, dim, 1), 0]] as const) {
        const q: Points = { data, n, dim }, timings: Record<string, number> = {};
        const a = twoNearest(q, { gram: 'fp32' }), c = twoNearest(q, { gram: 'bf16', timings });
        for (const key of ['r1', 'r2', 'i1', 'i2'] as const) assert.deepEqual(Array.from(c[key]), Array.from(a[key]), `${b} ${name} ${key}`);
        assert.equal(timings.bf16_fallbacks ?? 0, fallbacks, `${b} ${name}: ${JSON.stringify(timings)}`);
      }
    }
  });

  it('the candidate kernels agree between backends (same candidate sets, same float64 distances)', { skip: !HAS_NATIVE }, () => {
    const rng = new Rng(3), n = 500, dim = 16, k = 5;
    const X = Float32Array.from({ length: n * dim }, () => Math.floor(rng.next() * 5)); // integers: the Gram products are exact, so both rank alike
    const sq = new Float32Array(n);
    for (let i = 0; i < n; i++) for (let t = 0; t < dim; t++) sq[i] += X[i * dim + t] ** 2;
    const out = BACKENDS.map((b) => {
      const idx = new Int32Array(n * k), d2 = new Float32Array(n * k);
      useBackend(b).knnCandidates(idx, d2, X, sq, n, dim, k, 37);
      const a = Int32Array.from({ length: n * k }, (_, q) => Math.floor(q / k)), ex = new Float64Array(n * k);
      useBackend(b).sqDistPairs(ex, X, null, dim, a, idx, n * k, 0.5);
      return { idx: Array.from(idx), d2: Array.from(d2), ex: Array.from(ex) };
    });
    assert.deepEqual(out[1], out[0]);
    for (let q = 0; q < n * k; q++) assert.equal(out[0].ex[q], out[0].d2[q] * 0.25, `pair ${q}`);
  });

  it('floatToHalf: native F16C conversion equals the reference bit for bit (ties, subnormals, overflow, NaN)', { skip: !HAS_NATIVE }, () => {
    const rng = new Rng(5), vals: number[] = [0, -0, 1, -1, 65504, 65519, 65520, 1e6, -1e6, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 5.96e-8];
    for (let i = 0; i < 20000; i++) vals.push((rng.next() - 0.5) * 2 ** Math.floor(rng.next() * 50 - 30));
    const src = Float32Array.from(vals), got = new Uint16Array(src.length);
    useBackend('native').floatToHalf(got, src, src.length);
    for (let i = 0; i < src.length; i++) assert.equal(got[i], floatToHalf(src[i]), `${src[i]}`);
    useBackend('js');
  });
});

describe('hidden states read one layer at a time', () => {
  it('hiddenStatesProfile of an F16 file equals idProfile of its layers read whole', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-knn-scale-'));
    try {
      const f = join(dir, 'hs.safetensors');
      writeSyntheticHiddenStates(f, 4, 400, 64, 1);
      const layers = [0, 1, 2, 3].map((l) => readPoints(`${f}:hidden_states.${l}`));
      const timings: Record<string, number> = {};
      const { profile, points, dim } = hiddenStatesProfile(f, { bootstrap: 20, seed: 2, timings });
      assert.deepEqual(profile, idProfile(layers, { bootstrap: 20, seed: 2 }));
      assert.deepEqual([points, dim], [400, 64]);
      assert.ok(profile[1].id > profile[0].id + 3, `the synthetic profile rises: ${profile.map((e) => e.id.toFixed(1))}`);
      for (const key of ['read', 'checks', 'centre', 'candidates', 'exact', 'bootstrap']) assert.ok(timings[key] >= 0, key);
      // the F16 values are the ones the file holds
      const h = floatToHalf(layers[0].data[5]);
      assert.equal(layers[0].data[5], halfToFloat(h));
      // a 3-d layer is refused naming the tensor
      writeSafetensors(f, { 'hidden_states.0': { shape: [2, 3, 4], data: new Float32Array(24) }, 'hidden_states.1': { shape: [6, 4], data: new Float32Array(24) } });
      assert.throws(() => hiddenStatesProfile(f), /hidden_states\.0 has shape \[2,3,4\]; points need a 2-D tensor/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
