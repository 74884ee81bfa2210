/**
 * Gradient checks: analytic gradients against central finite differences computed in float64 on the
 * js backend, and the native backend (float32) against that same float64 reference.
 */
import assert from 'node:assert/strict';
import { nativeAvailable, useBackend } from '../src/engine/backend.js';
import type { Buf } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/random.js';
import { Tensor, backward, noGrad, parameter, scope, setPrecision } from '../src/engine/tensor.js';

export interface InputSpec {
  shape: number[];
  /** gradient checked (default true) */
  grad?: boolean;
  /** draw values in (lo, hi) instead of N(0, 1) */
  range?: [number, number];
}

export interface CheckOptions {
  /** finite-difference samples per input (all elements when the input is smaller) */
  samples?: number;
  /** relative tolerance of float64 analytic vs finite differences */
  tol64?: number;
  /** relative tolerance (to the largest reference magnitude) of native float32 vs float64 */
  tol32?: number;
}

export const HAS_NATIVE = nativeAvailable();

function makeInputs(specs: InputSpec[], seed: number, f64: boolean): Tensor[] {
  const rng = new Rng(seed);
  return specs.map((s, i) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const d: Buf = f64 ? new Float64Array(n) : new Float32Array(n);
    const vals = new Float64Array(n);
    if (s.range) rng.fillUniform(vals, s.range[0], s.range[1]);
    else rng.fillNormal(vals);
    d.set(vals);
    return parameter(d, s.shape, s.grad ?? true, `input${i}`);
  });
}

function weightsFor(n: number, seed: number, f64: boolean): Buf {
  const w = f64 ? new Float64Array(n) : new Float32Array(n);
  new Rng(seed ^ 0x5bd1e995).fillNormal(w);
  return w;
}

function weightedSum(out: Tensor, w: Buf): number {
  let s = 0;
  for (let i = 0; i < out.size; i++) s += out.data[i] * w[i];
  return s;
}

/** Forward + backward with output gradient w; returns the output values and input gradients. */
function run(build: (xs: Tensor[]) => Tensor, inputs: Tensor[], seed: number, f64: boolean) {
  return scope(() => {
    const out = build(inputs);
    const w = weightsFor(out.size, seed, f64);
    const values = Float64Array.from(out.data);
    if (out.requiresGrad) backward(out, w);
    return { values, grads: inputs.map((x) => (x.grad ? Float64Array.from(x.grad) : null)), w };
  });
}

const maxAbs = (a: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };

/**
 * Checks the op built by `build` on inputs of `specs`: float64 js gradients against finite
 * differences, then native forward/backward (when the addon is built) against js.
 */
export function checkOp(build: (xs: Tensor[]) => Tensor, specs: InputSpec[], o: CheckOptions = {}, seed = 7): void {
  const samples = o.samples ?? 24, tol64 = o.tol64 ?? 1e-5, tol32 = o.tol32 ?? 2e-4;
  // 1. js backend in float64 against central differences
  useBackend('js');
  setPrecision('f64');
  let ref: ReturnType<typeof run>;
  try {
    const xs = makeInputs(specs, seed, true);
    ref = run(build, xs, seed, true);
    const rng = new Rng(seed + 1);
    specs.forEach((s, i) => {
      if (s.grad === false) return;
      const g = ref.grads[i];
      assert.ok(g, `input ${i} received no gradient`);
      const x = xs[i].data, h = 1e-6, scaleG = Math.max(maxAbs(g), 1e-3);
      const picks = x.length <= samples ? [...Array(x.length).keys()] : Array.from({ length: samples }, () => rng.int(x.length));
      for (const j of picks) {
        const keep = x[j];
        x[j] = keep + h;
        const fp = noGrad(() => scope(() => weightedSum(build(xs), ref.w)));
        x[j] = keep - h;
        const fm = noGrad(() => scope(() => weightedSum(build(xs), ref.w)));
        x[j] = keep;
        const numeric = (fp - fm) / (2 * h);
        const err = Math.abs(numeric - g[j]);
        assert.ok(err <= tol64 * scaleG + 1e-7, `input ${i}[${j}]: analytic ${g[j]} vs finite difference ${numeric} (error ${err.toExponential(2)}, scale ${scaleG.toExponential(2)})`);
      }
    });
  } finally {
    setPrecision('f32');
  }
  // 2. js float32 forward (the reference the native backend must match to 1e-5 relative)
  const js32 = run(build, makeInputs(specs, seed, false), seed, false);
  const outScale = Math.max(maxAbs(ref.values), 1e-6);
  for (let k = 0; k < js32.values.length; k++) {
    assert.ok(Math.abs(js32.values[k] - ref.values[k]) <= 2e-5 * outScale + 1e-6, `js f32 forward[${k}] ${js32.values[k]} vs f64 ${ref.values[k]}`);
  }
  // 3. native float32 against js
  if (!HAS_NATIVE) return;
  useBackend('native');
  try {
    const nat = run(build, makeInputs(specs, seed, false), seed, false);
    for (let k = 0; k < nat.values.length; k++) {
      assert.ok(Math.abs(nat.values[k] - js32.values[k]) <= 1e-5 * outScale + 1e-6,
        `native forward[${k}] ${nat.values[k]} vs js ${js32.values[k]} (scale ${outScale})`);
    }
    specs.forEach((s, i) => {
      if (s.grad === false) return;
      const g = nat.grads[i], r = ref.grads[i]!;
      assert.ok(g, `native: input ${i} received no gradient`);
      const sc = Math.max(maxAbs(r), 1e-6);
      for (let k = 0; k < r.length; k++) {
        assert.ok(Math.abs(g[k] - r[k]) <= tol32 * sc, `native grad input ${i}[${k}] ${g[k]} vs float64 ${r[k]} (scale ${sc})`);
      }
    });
  } finally {
    useBackend('js');
  }
}
