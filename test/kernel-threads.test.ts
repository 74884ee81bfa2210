// The native element-wise kernels split large inputs over OpenMP threads (native/kernels.c). Each row
// (or element) is still computed by one thread as the serial loop does, and sums over rows split by
// columns, so one thread and two must give the same bits; and both must match the JavaScript
// reference, including the cases that must stay serial (an accumulate that reduces over rows).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { kernels, nativeAvailable, useBackend } from '../src/engine/backend.js';
import { loadNative } from '../src/engine/backends/native.js';
import { BinaryOp, ReduceOp, UnaryOp } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/random.js';

const normal = (n: number, seed: number, s = 1): Float32Array => { const a = new Float32Array(n); new Rng(seed).fillNormal(a, s); return a; };
const I = (...v: number[]): Int32Array => Int32Array.from(v);

// Big enough that every kernel below takes its threaded path (PAR_MIN is 32,768 values).
const N = 600, C = 384;

/** Runs `f` (which writes into fresh buffers and returns them) on js, native with 1 thread and native with 2. */
function three(f: () => Float32Array[]): { js: Float32Array[]; one: Float32Array[]; two: Float32Array[] } {
  useBackend('js');
  const js = f();
  useBackend('native');
  const { addon } = loadNative();
  addon.elementThreads(1);
  const one = f();
  addon.elementThreads(2);
  const two = f();
  return { js, one, two };
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  assert.ok(worst <= tol, `${what}: native differs from js by ${worst}`);
}

function check(name: string, f: () => Float32Array[], tol = 1e-5): void {
  it(name, () => {
    const { js, one, two } = three(f);
    one.forEach((o, i) => {
      assert.deepEqual(two[i], o, `${name}: output ${i} differs between 1 and 2 threads`);
      close(o, js[i], tol, `${name} output ${i}`);
    });
  });
}

// An addon built with GELORA_NO_OPENMP=1 (the portable prebuilt one) runs every kernel on one thread:
// elementThreads(2) then stays 1, and there is nothing to compare.
const threadsOf = (): number => { const a = loadNative().addon, now = a.elementThreads(0), two = a.elementThreads(2); a.elementThreads(now); return two; };
const skip = !nativeAvailable() ? 'native addon not built' : threadsOf() !== 2 ? 'the addon was built without OpenMP (GELORA_NO_OPENMP)' : false;

describe('native kernels: two threads give the bits of one', { skip }, () => {
  const threads = nativeAvailable() ? loadNative().addon.elementThreads(0) : 1;
  after(() => { if (nativeAvailable()) loadNative().addon.elementThreads(threads); useBackend('native'); });

  const x = normal(N * C, 1), y = normal(N * C, 2), w = normal(C, 3), bias = normal(C, 4);
  check('binary with a broadcast row', () => {
    const out = new Float32Array(N * C);
    kernels().binary(BinaryOp.Mul, out, x, w, I(N, C), I(C, 1), I(0, 1));
    return [out];
  });
  check('accumulate into distinct rows (threaded) and over rows (a reduction, serial)', () => {
    const d1 = Float32Array.from(y), d2 = new Float32Array(C), d3 = new Float32Array(N);
    kernels().accumulate(d1, x, y, 0.5, I(N, C), I(C, 1), I(C, 1), I(C, 1));
    kernels().accumulate(d2, x, null, 1, I(N, C), I(0, 1), I(C, 1), I(0, 0)); // bias gradient: sum over rows
    kernels().accumulate(d3, x, null, 1, I(N, C), I(1, 0), I(C, 1), I(0, 0)); // sum over columns
    return [d1, d2, d3];
  }, 1e-4);
  for (const [name, op] of [['gelu', UnaryOp.Gelu], ['gelu tanh', UnaryOp.GeluTanh], ['silu', UnaryOp.Silu], ['tanh', UnaryOp.Tanh]] as const) {
    check(`unary and its backward: ${name}`, () => {
      const out = new Float32Array(N * C), din = Float32Array.from(y), fresh = new Float32Array(N * C).fill(NaN);
      kernels().unary(op, out, x, N * C);
      kernels().unaryBackward(op, din, x, y, N * C, true);
      kernels().unaryBackward(op, fresh, x, y, N * C, false); // overwrites: the NaNs are never read
      return [out, din, fresh];
    }, 1e-5);
  }
  check('softmax with mask and causality, and its backward', () => {
    const T = 256, rows = 4 * 2 * T, inp = normal(rows * T, 5), mask = new Float32Array(4 * T);
    for (let i = 0; i < mask.length; i += 7) mask[i] = -1e9;
    const out = new Float32Array(rows * T), din = normal(rows * T, 7), fresh = new Float32Array(rows * T).fill(NaN);
    kernels().softmax(out, inp, rows, T, 0.125, mask, 2 * T, T);
    kernels().softmaxBackward(din, out, normal(rows * T, 6), rows, T, 0.125, true);
    kernels().softmaxBackward(fresh, out, normal(rows * T, 6), rows, T, 0.125, false);
    return [out, din, fresh];
  }, 1e-5);
  check('layernorm with residual, and its backward (weight/bias sums over rows)', () => {
    const out = new Float32Array(N * C), sum = new Float32Array(N * C), mean = new Float32Array(N), rstd = new Float32Array(N);
    kernels().layernorm(out, sum, mean, rstd, x, y, w, bias, N, C, 1e-5);
    const din = normal(N * C, 8), dw = new Float32Array(C), db = new Float32Array(C), fresh = new Float32Array(N * C).fill(NaN);
    kernels().layernormBackward(din, dw, db, y, sum, w, mean, rstd, N, C, true);
    kernels().layernormBackward(fresh, null, null, y, sum, w, mean, rstd, N, C, false);
    return [out, sum, mean, rstd, din, dw, db, fresh];
  }, 1e-4);
  check('rmsnorm and its backward', () => {
    const out = new Float32Array(N * C), rstd = new Float32Array(N), din = new Float32Array(N * C), dw = new Float32Array(C);
    kernels().rmsnorm(out, rstd, x, w, N, C, 1e-6);
    kernels().rmsnormBackward(din, dw, y, x, w, rstd, N, C);
    return [out, rstd, din, dw];
  }, 1e-4);
  check('rope forward and backward', () => {
    const B = 2, T = 100, H = 6, d = 64, inp = normal(B * T * H * d, 7), cos = normal(T * d, 8), sin = normal(T * d, 9);
    const out = new Float32Array(inp.length), back = Float32Array.from(inp);
    kernels().rope(out, inp, cos, sin, B, T, H, d, 1, false);
    kernels().rope(back, out, cos, sin, B, T, H, d, -1, true);
    return [out, back];
  });
  check('reduce: the first non-finite value, wherever it is (blocks counted over threads, then searched in order)', () => {
    const n = 300_001, found: number[] = [];
    for (const spots of [[], [0], [n - 1], [123_456], [200_000, 9_000], [8191, 8192], [40_000, 40_001]]) {
      const a = normal(n, 17);
      spots.forEach((i, j) => { a[i] = [NaN, Infinity, -Infinity][j % 3]; });
      found.push(kernels().reduce(ReduceOp.FirstNonFinite, a, 0, n, 0));
    }
    assert.deepEqual(found, [-1, 0, n - 1, 123_456, 9_000, 8191, 40_000]);
    return [Float32Array.from(found)];
  });
  check('embedding, fill, copy2d (bias broadcast and accumulate), adamw', () => {
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 37) % 500), table = normal(500 * C, 10);
    const emb = new Float32Array(N * C), filled = normal(N * C, 11), filled0 = normal(N * C, 12), rows = new Float32Array(N * C), acc = Float32Array.from(x);
    kernels().embedding(emb, table, ids, N, C);
    kernels().fill(filled, 5, N * C - 10, 0.25);
    kernels().fill(filled0, 3, N * C - 6, 0);
    kernels().copy2d(N, C, bias, 0, 0, rows, 0, C, false);
    kernels().copy2d(N, C, y, 0, C, acc, 0, C, true);
    const p = Float32Array.from(x), m = new Float32Array(N * C), v = new Float32Array(N * C);
    for (let s = 1; s <= 2; s++) kernels().adamw(p, y, m, v, N * C, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1 - 0.9 ** s, 1 - 0.999 ** s);
    return [emb, filled, filled0, rows, acc, p, m, v];
  });
  check('loraPass: the rows in chunks over the threads, the outer sums\' partials added in chunk order', () => {
    const r = 8, M = normal(r * C, 13), wr = normal(N * r, 14), dots = new Float32Array(N * r), outer = normal(r * C, 15);
    const bits = new Uint16Array(N * C);
    kernels().loraPass(x, N, C, bits, false, M, r, 0.5, dots, wr, 2, outer);
    return [dots, outer, Float32Array.from(bits)];
  }, 1e-4);
});
