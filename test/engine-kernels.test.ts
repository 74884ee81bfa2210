// The kernels that replaced JavaScript loops (reductions, losses, clipping, AdaLoRA/SoRA updates,
// LoRA merge) give bit for bit what those loops gave, on both backends. Each reference below is the
// loop as it was before it moved into a kernel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels, nativeAvailable, useBackend } from '../src/engine/backend.js';
import * as op from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { backward, parameter, scope } from '../src/engine/tensor.js';
import { clipGradNorm } from '../src/train/optim.js';

const BACKENDS = nativeAvailable() ? (['js', 'native'] as const) : (['js'] as const);
const normal = (n: number, seed: number, s = 1): Float32Array => { const a = new Float32Array(n); new Rng(seed).fillNormal(a, s); return a; };

for (const b of BACKENDS) {
  describe(`${b}: kernels equal the loops they replaced`, () => {
    it('clipGradNorm: one running double sum of squares, coefficient applied in double', () => {
      useBackend(b);
      const grads = [normal(37, 1), normal(5, 2), normal(300, 3)];
      const ps = grads.map((g, i) => { const p = parameter(new Float32Array(g.length), [g.length], true, `p${i}`); p.grad = Float32Array.from(g); return p; });
      const ref = grads.map((g) => Float32Array.from(g));
      let sq = 0;
      for (const g of ref) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
      const norm = Math.sqrt(sq), coef = 1 / (norm + 1e-6);
      for (const g of ref) for (let i = 0; i < g.length; i++) g[i] *= coef;
      assert.equal(clipGradNorm(ps, 1), norm);
      ps.forEach((p, i) => assert.deepEqual(p.grad, ref[i]));
    });

    it('addLowRank (merge, unmerge, PiSSA residual): double dot products', () => {
      useBackend(b);
      const outF = 6, inF = 9, r = 3, scale = 1.7;
      const W = normal(outF * inF, 4), A = normal(r * inF, 5), B = normal(outF * r, 6), ref = Float32Array.from(W);
      for (let i = 0; i < outF; i++) for (let j = 0; j < inF; j++) {
        let d = 0;
        for (let k = 0; k < r; k++) d += B[i * r + k] * A[k * inF + j];
        ref[i * inF + j] += -1 * scale * d;
      }
      kernels().addLowRank(W, B, A, outF, inF, r, -1 * scale);
      assert.deepEqual(W, ref);
    });

    it('adaloraImportance: the EMAs of |p * grad|', () => {
      useBackend(b);
      const n = 50, p = normal(n, 7), g = normal(n, 8), ipt = normal(n, 9, 0.1).map(Math.abs), unc = normal(n, 10, 0.1).map(Math.abs);
      const rI = Float32Array.from(ipt), rU = Float32Array.from(unc), b1 = 0.85, b2 = 0.85;
      for (let i = 0; i < n; i++) {
        const s = Math.abs(p[i] * g[i]);
        rI[i] = b1 * rI[i] + (1 - b1) * s;
        rU[i] = b2 * rU[i] + (1 - b2) * Math.abs(s - rI[i]);
      }
      kernels().adaloraImportance(p, g, ipt, unc, n, b1, b2);
      assert.deepEqual(ipt, rI);
      assert.deepEqual(unc, rU);
    });

    it('soraGates: SparseAdamW with weight decay, then soft-thresholding', () => {
      useBackend(b);
      const n = 16, g = normal(n, 11), grad = normal(n, 12), m = new Float64Array(n).fill(0.01), v = new Float64Array(n).fill(0.002);
      const rg = Float32Array.from(g), rm = Float64Array.from(m), rv = Float64Array.from(v);
      const lr = 0.01, wd = 0.1, lambda = 0.3, stepSize = (lr * Math.sqrt(1 - 0.999 ** 3)) / (1 - 0.9 ** 3);
      for (let i = 0; i < n; i++) {
        const gr = grad[i];
        rm[i] = 0.9 * rm[i] + (1 - 0.9) * gr;
        rv[i] = 0.999 * rv[i] + (1 - 0.999) * gr * gr;
        let upd = -stepSize * (rm[i] / (Math.sqrt(rv[i]) + 1e-8));
        upd += -lr * wd * rg[i];
        rg[i] += upd;
      }
      for (let i = 0; i < n; i++) { const x = rg[i]; rg[i] = x > lambda ? x - lambda : x < -lambda ? x + lambda : 0; }
      kernels().soraGates(g, grad, m, v, n, stepSize, lr, wd, lambda);
      assert.deepEqual(g, rg);
      assert.deepEqual(m, rm);
      assert.deepEqual(v, rv);
    });

    for (const ignore of [false, true]) {
      it(`crossEntropy${ignore ? ' with an ignored label' : ''}: loss and gradient`, () => {
        const k = useBackend(b);
        const N = 4, C = 5, logits = normal(N * C, 13, 3), labels = Int32Array.of(1, ignore ? -100 : 4, 0, 3);
        // the previous implementation: softmax kernel, a host loop for the loss, accumulate + host loops for the gradient
        const probs = new Float32Array(N * C);
        k.softmax(probs, logits, N, C, 1, null, 1, 0);
        let total = 0, count = 0;
        for (let i = 0; i < N; i++) { if (labels[i] === -100) continue; total += -Math.log(probs[i * C + labels[i]]); count++; }
        const refLoss = Math.fround(total / count), g = Math.fround(0.7) / count, refDx = new Float32Array(N * C);
        if (count === N) {
          k.accumulate(refDx, probs, null, g, Int32Array.of(N * C), Int32Array.of(1), Int32Array.of(1), Int32Array.of(1));
          for (let i = 0; i < N; i++) refDx[i * C + labels[i]] -= g;
        } else {
          for (let i = 0; i < N; i++) {
            if (labels[i] === -100) continue;
            for (let j = 0; j < C; j++) refDx[i * C + j] += g * probs[i * C + j];
            refDx[i * C + labels[i]] -= g;
          }
        }
        const got = scope(() => {
          const x = parameter(Float32Array.from(logits), [N, C], true, 'logits');
          const loss = op.crossEntropy(x, labels);
          backward(loss, Float32Array.of(0.7));
          return { loss: loss.item(), dx: Float32Array.from(x.grad!) };
        });
        assert.equal(got.loss, refLoss);
        assert.deepEqual(got.dx, refDx);
      });
    }

    it('sum, frobenius and mseLoss: double sums, gradients in double', () => {
      useBackend(b);
      const n = 23, xs = normal(n, 14), target = Array.from(normal(n, 15), (v) => v + 0.1);
      let s = 0, sq = 0, se = 0;
      for (let i = 0; i < n; i++) { s += xs[i]; sq += xs[i] * xs[i]; const d = xs[i] - target[i]; se += d * d; }
      const norm = Math.sqrt(sq), dF = new Float32Array(n), dM = new Float32Array(n);
      for (let i = 0; i < n; i++) dF[i] += (0.5 / norm) * xs[i];
      for (let i = 0; i < n; i++) dM[i] += ((2 * 0.5) / n) * (xs[i] - target[i]);
      const x = parameter(Float32Array.from(xs), [n], true, 'x'), y = parameter(Float32Array.from(xs), [n], true, 'y');
      const sumV = scope(() => op.sum(x).item());
      const f = scope(() => { const t = op.frobenius(x); backward(t, Float32Array.of(0.5)); return t.item(); });
      const m = scope(() => { const t = op.mseLoss(y, target); backward(t, Float32Array.of(0.5)); return t.item(); });
      const got = { sumV, f, m, dF: Float32Array.from(x.grad!), dM: Float32Array.from(y.grad!) };
      assert.equal(got.sumV, Math.fround(s));
      assert.equal(got.f, Math.fround(norm));
      assert.equal(got.m, Math.fround(se / n));
      assert.deepEqual(got.dF, dF);
      assert.deepEqual(got.dM, dM);
    });
  });
}

describe('restore', () => {
  it('the default backend', () => { useBackend(BACKENDS[BACKENDS.length - 1]); assert.ok(kernels()); });
});
