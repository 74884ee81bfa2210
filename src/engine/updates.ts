/**
 * In-place updates of weights and gradients for code outside the engine (optimisers, adapter
 * schedules, LoRA merging): tensor-level entry points to the kernels, so callers never touch a
 * tensor's storage. Optimiser/EMA state is passed as plain f32/f64 arrays the caller owns.
 */
import { kernels } from './backend.js';
import { ReduceOp, type Buf } from './kernels.js';
import type { Tensor } from './tensor.js';

/** One AdamW step of p from its gradient (no-op without one); bc1/bc2 are the bias corrections 1 - beta^t. */
export function adamwStep(p: Tensor, m: Buf, v: Buf, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number): void {
  if (!p.grad) return;
  kernels().adamw(p.data, p.grad, m, v, p.size, lr, beta1, beta2, eps, weightDecay, bc1, bc2);
}

/** The global L2 norm of the gradients of params (those without a gradient count as zero). */
export function gradNorm(params: readonly Tensor[]): number {
  const k = kernels();
  let sq = 0;
  // one running double sum over every gradient, in order, as the plain loop it replaced
  for (const p of params) if (p.grad) sq = k.reduce(ReduceOp.SumSquares, p.grad, 0, p.grad.length, sq);
  return Math.sqrt(sq);
}

/** Multiplies every gradient of params by coef, in place (coef in double). */
export function scaleGrads(params: readonly Tensor[], coef: number): void {
  const k = kernels();
  for (const p of params) if (p.grad) k.scal(p.grad, 0, p.grad.length, coef);
}

/** W [out, in] += alpha * B [out, r] A [r, in], each dot product in double (LoRA merge/unmerge, PiSSA's residual); a half W is widened to f32 in place. */
export function addLowRank(W: Tensor, B: Tensor | Float32Array, A: Tensor | Float32Array, r: number, alpha: number): void {
  const [outF, inF] = W.shape;
  const b = B instanceof Float32Array ? B : B.data, a = A instanceof Float32Array ? A : A.data;
  if (b.length !== outF * r || a.length !== r * inF) throw new Error(`addLowRank: B (${b.length} values) and A (${a.length}) do not fit ${W.name || 'W'} [${W.shape}] at rank ${r}`);
  W.widen(); // a frozen bf16/f16 weight becomes f32 first (merging needs f32 values)
  kernels().addLowRank(W.data, b, a, outF, inF, r, alpha);
}

/** AdaLoRA's importance EMAs of p from |p * grad p| (no-op without a gradient). */
export function adaloraImportance(p: Tensor, ipt: Float32Array, unc: Float32Array, beta1: number, beta2: number): void {
  if (!p.grad) return;
  kernels().adaloraImportance(p.data, p.grad, ipt, unc, p.size, beta1, beta2);
}

/** SoRA's SparseAdamW step on the gate tensor g (moments m, v in double), soft-thresholded by lambda, then its gradient cleared. */
export function soraGateStep(g: Tensor, m: Float64Array, v: Float64Array, stepSize: number, lr: number, weightDecay: number, lambda: number): void {
  if (!g.grad) return;
  kernels().soraGates(g.data, g.grad, m, v, g.size, stepSize, lr, weightDecay, lambda);
  g.zeroGrad();
}
