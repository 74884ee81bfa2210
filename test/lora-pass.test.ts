// The loraPass kernel (kernels.ts; native/kernels.c): the LoRA branch's thin products in one read of
// an activation. Both backends against a float64 reference (ranks over 8 and not a multiple of 8,
// columns not a multiple of 16, rows over several chunks), the parts on their own and together, the
// argument checks, and a LoRA Linear's gradients through it against finite differences of the fp32
// products it replaced.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels, nativeAvailable, useBackend } from '../src/engine/backend.js';
import { toBf16 } from '../src/engine/backends/dnnl.js';
import * as op from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { backward, parameter, scope } from '../src/engine/tensor.js';

const BACKENDS = nativeAvailable() ? (['js', 'native'] as const) : (['js'] as const);
const normal = (n: number, seed: number): Float32Array => { const a = new Float32Array(n); new Rng(seed).fillNormal(a); return a; };

for (const b of BACKENDS) {
  describe(`${b}: loraPass`, () => {
    it('bf16 copy, dots = alpha src M^T and outer += alpha w^T src, as a float64 reference', () => {
      useBackend(b);
      const k = kernels();
      for (const [rows, cols, r] of [[5, 16, 1], [37, 21, 3], [600, 100, 11], [300, 257, 8], [1030, 48, 16]]) {
        const src = normal(rows * cols, rows + cols), M = normal(r * cols, r), w = normal(rows * r, rows);
        const dst = new Uint16Array(rows * cols).fill(0xffff), dots = new Float32Array(rows * r).fill(NaN);
        const outer = new Float32Array(r * cols).map((_, i) => i % 7); // added into
        const before = Float32Array.from(outer);
        k.loraPass(src, rows, cols, dst, false, M, r, 0.5, dots, w, 2, outer);
        assert.deepEqual(dst, toBf16(src), 'the bf16 copy is the conversion rule bit for bit');
        for (let i = 0; i < rows; i++) for (let j = 0; j < r; j++) {
          let s = 0, mag = 0;
          for (let c = 0; c < cols; c++) { s += src[i * cols + c] * M[j * cols + c]; mag += Math.abs(src[i * cols + c] * M[j * cols + c]); }
          assert.ok(Math.abs(dots[i * r + j] - 0.5 * s) <= 1e-6 * mag + 1e-30, `[${rows}x${cols}, r ${r}] dots[${i}, ${j}] = ${dots[i * r + j]}, want ${0.5 * s}`);
        }
        for (let j = 0; j < r; j++) for (let c = 0; c < cols; c++) {
          let s = 0, mag = 0;
          for (let i = 0; i < rows; i++) { s += w[i * r + j] * src[i * cols + c]; mag += Math.abs(w[i * r + j] * src[i * cols + c]); }
          const want = before[j * cols + c] + 2 * s;
          assert.ok(Math.abs(outer[j * cols + c] - want) <= 1e-6 * (2 * mag + 7), `[${rows}x${cols}, r ${r}] outer[${j}, ${c}] = ${outer[j * cols + c]}, want ${want}`);
        }
        // each part on its own gives the same values as all three at once
        const dots2 = new Float32Array(rows * r).fill(NaN), outer2 = Float32Array.from(before);
        k.loraPass(src, rows, cols, null, false, M, r, 0.5, dots2, null, 0, null);
        k.loraPass(src, rows, cols, null, false, null, r, 0, null, w, 2, outer2);
        assert.deepEqual(dots2, dots);
        assert.deepEqual(outer2, outer);
        // joinDots: dst rows cols + r long, the row's values then its dots rounded; the sums unchanged
        const joined = new Uint16Array(rows * (cols + r)).fill(0xffff), dots3 = new Float32Array(rows * r).fill(NaN), outer3 = Float32Array.from(before);
        k.loraPass(src, rows, cols, joined, true, M, r, 0.5, dots3, w, 2, outer3);
        assert.deepEqual(dots3, dots);
        assert.deepEqual(outer3, outer);
        const want = new Uint16Array(rows * (cols + r)), db = toBf16(dots);
        for (let i = 0; i < rows; i++) { want.set(dst.subarray(i * cols, (i + 1) * cols), i * (cols + r)); want.set(db.subarray(i * r, (i + 1) * r), i * (cols + r) + cols); }
        assert.deepEqual(joined, want, `[${rows}x${cols}, r ${r}] joined rows`);
      }
    });

    it('checks its arguments', { skip: b === 'js' ? 'the checks are the native glue\'s' : false }, () => {
      useBackend(b);
      const k = kernels();
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, null, false, new Float32Array(2), 1, 1, new Float32Array(4), null, 0, null), /dots/);
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, null, false, new Float32Array(2), 1, 1, new Float32Array(5), new Float32Array(5), 1, null), /both or neither/);
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, null, false, null, 1, 1, new Float32Array(5), null, 0, null), /both or neither/);
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, null, false, new Float32Array(2), 0, 1, new Float32Array(5), null, 0, null), /r must be at least 1/);
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, null, true, new Float32Array(2), 1, 1, new Float32Array(5), null, 0, null), /joinDots needs dst and dots/);
      assert.throws(() => k.loraPass(new Float32Array(10), 5, 2, new Uint16Array(10), true, new Float32Array(2), 1, 1, new Float32Array(5), null, 0, null), /dst/);
    });

    it('a LoRA Linear through the pass: y, dx, dA, dB against the separate float32 products', () => {
      useBackend(b);
      const k = kernels();
      const N = 300, inF = 40, outF = 24, r = 5, s = 0.7;
      const xd = normal(N * inF, 1), Wd = normal(outF * inF, 2), Ad = normal(r * inF, 3), Bd = normal(outF * r, 4), gy = normal(N * outF, 5);
      const got = scope(() => {
        const x = parameter(Float32Array.from(xd), [N, inF], true, 'x'), W = parameter(Float32Array.from(Wd), [outF, inF], false, 'W');
        const A = parameter(Float32Array.from(Ad), [r, inF], true, 'A'), B = parameter(Float32Array.from(Bd), [outF, r], true, 'B');
        const y = op.linear(x, W, null, { A, B, scale: s });
        backward(y, Float32Array.from(gy));
        return [Float32Array.from(y.data), Float32Array.from(x.grad!), Float32Array.from(A.grad!), Float32Array.from(B.grad!)];
      });
      // the same with one gemm per product: t = x A^T, y = x W^T + s t B^T, dt = s gy B, dB = s gy^T t, dA = dt^T x, dx = gy W + dt A
      const t = new Float32Array(N * r), y = new Float32Array(N * outF), dt = new Float32Array(N * r);
      const dB = new Float32Array(outF * r), dA = new Float32Array(r * inF), dx = new Float32Array(N * inF);
      k.gemm(false, true, N, r, inF, 1, xd, 0, inF, Ad, 0, inF, 0, t, 0, r);
      k.gemm(false, true, N, outF, inF, 1, xd, 0, inF, Wd, 0, inF, 0, y, 0, outF);
      k.gemm(false, true, N, outF, r, s, t, 0, r, Bd, 0, r, 1, y, 0, outF);
      k.gemm(false, false, N, r, outF, s, gy, 0, outF, Bd, 0, r, 0, dt, 0, r);
      k.gemm(true, false, outF, r, N, s, gy, 0, outF, t, 0, r, 0, dB, 0, r);
      k.gemm(true, false, r, inF, N, 1, dt, 0, r, xd, 0, inF, 0, dA, 0, inF);
      k.gemm(false, false, N, inF, outF, 1, gy, 0, outF, Wd, 0, inF, 0, dx, 0, inF);
      k.gemm(false, false, N, inF, r, 1, dt, 0, r, Ad, 0, inF, 1, dx, 0, inF);
      [y, dx, dA, dB].forEach((want, i) => {
        let worst = 0;
        for (let e = 0; e < want.length; e++) worst = Math.max(worst, Math.abs(got[i][e] - want[e]) / (1 + Math.abs(want[e])));
        assert.ok(worst < 2e-5, `${['y', 'dx', 'dA', 'dB'][i]} differs from the separate products by ${worst}`);
      });
    });
  });
}

describe('restore', () => {
  it('the default backend', () => { useBackend(BACKENDS[BACKENDS.length - 1]); assert.ok(kernels()); });
});
