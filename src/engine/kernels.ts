/**
 * The kernel interface: the only place where numbers are crunched. Two backends implement it,
 * `native` (C + OpenBLAS through an N-API addon) and `js` (plain TypeScript, the reference).
 * Everything is row-major, operates on flat typed arrays with explicit offsets, and never allocates:
 * callers own every buffer. Backward kernels *accumulate* into their gradient outputs (+=), so a
 * tensor used twice gets the sum of both gradients without a temporary. Those whose input gradient
 * is often the first write into a fresh buffer take `accumulate`: false overwrites (dinp is then never
 * read, as gemm's beta 0), which spares the caller a zero-fill pass (tensor.ts gradFor).
 *
 * The js backend also accepts Float64Array buffers, which is how gradient checks run in float64.
 *
 * The signatures are declared once, in kernel-spec.ts: the C prototypes and the addon's argument
 * checks are generated from it, and KernelsMatchSpec below fails to compile when this interface
 * and the spec disagree on any kernel's arguments.
 */
import type { ArgType, KERNEL_SPEC } from './kernel-spec.js';

export type Buf = Float32Array | Float64Array;

export const enum BinaryOp { Add = 0, Sub = 1, Mul = 2 }
export const enum UnaryOp { Gelu = 0, GeluTanh = 1, Relu = 2, Silu = 3, Tanh = 4 }
export const enum ReduceOp { Sum = 0, SumSquares = 1, Max = 2, FirstNonFinite = 3 }

export interface Kernels {
  readonly name: 'native' | 'js';

  /** C[cOff:] = alpha * op(A) op(B) + beta * C; op(X) = X^T when its flag is set. A is M x K after op. */
  gemm(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Buf, aOff: number, lda: number, B: Buf, bOff: number, ldb: number,
    beta: number, C: Buf, cOff: number, ldc: number): void;

  /**
   * gemm over a two-level batch (n1 x n2 problems): problem (i, j) reads A at aOff + i*aS1 + j*aS2,
   * likewise B and C. Two levels let attention address head h of batch b inside a [B, T, H*d]
   * projection directly (offset b*T*H*d + h*d, leading dimension H*d) with no permute copies.
   */
  gemmBatched(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Buf, aOff: number, lda: number, aS1: number, aS2: number,
    B: Buf, bOff: number, ldb: number, bS1: number, bS2: number,
    beta: number, C: Buf, cOff: number, ldc: number, cS1: number, cS2: number,
    n1: number, n2: number): void;

  /**
   * The LoRA branch's thin products in one read of src [rows, cols] (each part optional):
   * dots[i, j] = alphaDot sum_c src[i, c] M[j, c] (M [r, cols], dots [rows, r]: t = x A^T, dt = s dy B);
   * outer[j, c] += alphaOuter sum_i w[i, j] src[i, c] (w [rows, r], outer [r, cols]: dB^T, dA);
   * dst = bf16(src), round to nearest even (bf16 mode's operand for the frozen product). With joinDots
   * dst's rows are cols + r long, each row's values followed by bf16(dots[i, :]): the LoRA factor t
   * (or dt) joins the frozen product as r more columns (linear's joined weight). M comes with dots, w
   * with outer. The sums' order is fixed by the data's shape alone (not threads, not ISA).
   */
  loraPass(src: Buf, rows: number, cols: number, dst: Uint16Array | null, joinDots: boolean, M: Buf | null, r: number, alphaDot: number,
    dots: Buf | null, w: Buf | null, alphaOuter: number, outer: Buf | null): void;

  /** out = a (op) b over `shape`, each operand read through its own strides (0 = broadcast). */
  binary(op: BinaryOp, out: Buf, a: Buf, b: Buf, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array): void;

  /**
   * dst[dIdx] += alpha * src[sIdx] * (mul ? mul[mIdx] : 1) over `shape`. With dst strides 0 on
   * broadcast dimensions this is the reduction that broadcasting's backward needs.
   */
  accumulate(dst: Buf, src: Buf, mul: Buf | null, alpha: number, shape: Int32Array,
    dStrides: Int32Array, sStrides: Int32Array, mStrides: Int32Array): void;

  unary(op: UnaryOp, out: Buf, inp: Buf, n: number): void;
  /** dinp (+)= dout * f'(inp) (+= when accumulate) */
  unaryBackward(op: UnaryOp, dinp: Buf, inp: Buf, dout: Buf, n: number, accumulate: boolean): void;

  /**
   * Row softmax of scale * inp + mask. mask (optional) has one row of `cols` additive values per
   * `maskGroup` consecutive rows. causalQ > 0 also masks key j > i + (cols - causalQ) for query
   * i = row % causalQ. Masked entries get the most negative float, so fully masked rows stay finite.
   */
  softmax(out: Buf, inp: Buf, rows: number, cols: number, scale: number,
    mask: Buf | null, maskGroup: number, causalQ: number): void;
  /** dinp (+)= scale * out * (dout - sum(dout * out)) per row (+= when accumulate) */
  softmaxBackward(dinp: Buf, out: Buf, dout: Buf, rows: number, cols: number, scale: number, accumulate: boolean): void;

  /**
   * out = LN(inp + residual) * w + b over rows of C. The sum inp + residual is written to `sum`
   * (may alias inp when residual is null) because backward needs it; mean and rstd per row too.
   */
  layernorm(out: Buf, sum: Buf, mean: Buf, rstd: Buf, inp: Buf, residual: Buf | null,
    w: Buf | null, b: Buf | null, N: number, C: number, eps: number): void;
  /**
   * Gradients of LN(x) with x = sum (each may be null to skip): dw and db accumulate, dinp accumulates
   * when `accumulate` and is overwritten otherwise.
   */
  layernormBackward(dinp: Buf | null, dw: Buf | null, db: Buf | null, dout: Buf, x: Buf,
    w: Buf | null, mean: Buf, rstd: Buf, N: number, C: number, accumulate: boolean): void;

  /** out = inp * rsqrt(mean(inp^2) + eps) * w */
  rmsnorm(out: Buf, rstd: Buf, inp: Buf, w: Buf, N: number, C: number, eps: number): void;
  rmsnormBackward(dinp: Buf | null, dw: Buf | null, dout: Buf, inp: Buf, w: Buf, rstd: Buf, N: number, C: number): void;

  /** out[i, :] = table[ids[i], :] */
  embedding(out: Buf, table: Buf, ids: Int32Array, n: number, C: number): void;
  /** dtable[ids[i], :] += dout[i, :] */
  embeddingBackward(dtable: Buf, dout: Buf, ids: Int32Array, n: number, C: number): void;

  /**
   * torch.gather along the last axis: out[o, j] = src[o, idx[io, j]] for o < outer, j < idxLast,
   * where io = o when idxOuter == outer and io = o % idxOuter otherwise (an index shared by groups).
   */
  gatherLast(out: Buf, src: Buf, idx: Int32Array, outer: number, srcLast: number, idxLast: number, idxOuter: number): void;
  /** dsrc[o, idx[io, j]] += dout[o, j] */
  gatherLastBackward(dsrc: Buf, dout: Buf, idx: Int32Array, outer: number, srcLast: number, idxLast: number, idxOuter: number): void;

  /**
   * Rotary embedding on x [B, T, H, d] with cos/sin [T, d] (halves duplicated, as transformers builds
   * them): out (+)= x*cos + rotate_half(x)*sin*sign. sign = -1 with accumulate is the backward.
   */
  rope(out: Buf, inp: Buf, cos: Buf, sin: Buf, B: number, T: number, H: number, d: number, sign: number, accumulate: boolean): void;

  /**
   * Centred, rescaled points for distance products (x the rows of exactly one of X32, X64): s1 the
   * power of two nearest max |x|, mean the float64 mean of x / s1, s2 the power of two nearest
   * max |x / s1 - mean|; c32 = float((x / s1 - mean) / s2), sq[i] = float(sum of those values squared,
   * in float64). Returns the unit s1 s2 (see src/id/knn.ts for why).
   */
  centrePoints(c32: Buf, sq: Buf, X32: Buf | null, X64: Float64Array | null, n: number, dim: number): number;
  /**
   * Candidate nearest neighbours of every point of X [n, dim]: row i's k (index, d2) pairs with the
   * smallest d2 = sq[i] + sq[j] - 2 X[i].X[j] over j != i, ascending, ties to the lower index (so the
   * set does not depend on evaluation order). Pairs are computed once each (strips of `block` rows of
   * the upper triangle of X X^T) and offered to both rows. Rows with fewer than k others are padded
   * with (2^31 - 1, Infinity).
   */
  knnCandidates(outIdx: Int32Array, outD2: Buf, X: Buf, sq: Buf, n: number, dim: number, k: number, block: number): void;
  /**
   * knnCandidates on X rounded to bf16 (round to nearest even), the products accumulated in float32:
   * on oneDNN's bf16 matrix units where the native addon has them, else sgemm on the rounded values.
   * d2 = sq[i] + sq[j] - 2 bf16(X[i]).bf16(X[j]), sq as given (the float32 norms): the search is only
   * a candidate filter, certified by the caller with the bf16 error bound (src/id/knn.ts).
   */
  knnCandidatesBf16(outIdx: Int32Array, outD2: Buf, X: Buf, sq: Buf, n: number, dim: number, k: number, block: number): void;
  /**
   * out[q] = sum_t ((x[a[q], t] - x[b[q], t]) * scale)^2 in float64, x the rows of exactly one of X32,
   * X64 (the other null), `dim` values each.
   */
  sqDistPairs(out: Float64Array, X32: Buf | null, X64: Float64Array | null, dim: number, a: Int32Array, b: Int32Array, m: number, scale: number): void;
  /** dst = IEEE half of src, round to nearest even (floatToHalf of io/safetensors.ts, bit for bit) */
  floatToHalf(dst: Uint16Array, src: Buf, n: number): void;

  /**
   * Inverted-dropout mask: mask[i] = 0 with probability p, else keep, drawn from the mulberry32 stream
   * whose state is `state` (exactly Rng.next()); returns the state after n draws.
   */
  dropoutMask(mask: Buf, n: number, p: number, keep: number, state: number): number;

  /** AdamW with decoupled weight decay; bc1/bc2 are the bias corrections 1 - beta^t. */
  adamw(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, bc1: number, bc2: number): void;

  /** x[off:off+n] = value */
  fill(x: Buf, off: number, n: number, value: number): void;

  /**
   * dst[dOff + r*dLd + j] (+)= src[sOff + r*sLd + j] for r < rows, j < cols: slices, concatenation,
   * and with sLd = 0 one row repeated (a bias broadcast). accumulate adds instead of copying.
   */
  copy2d(rows: number, cols: number, src: Buf, sOff: number, sLd: number, dst: Buf, dOff: number, dLd: number, accumulate: boolean): void;

  /**
   * A reduction of x[off:off+n] in double, continuing from `init` (so a sum over several buffers adds
   * in one sequence): sum, sum of squares, max; or the index of the first non-finite value (-1 if none; init unused).
   */
  reduce(op: ReduceOp, x: Buf, off: number, n: number, init: number): number;

  /** x[off:off+n] *= alpha (alpha not rounded to float: gradient clipping) */
  scal(x: Buf, off: number, n: number, alpha: number): void;

  /** y[yOff:] += alpha * x[xOff:] over n values, alpha in double */
  axpy(n: number, alpha: number, x: Buf, xOff: number, y: Buf, yOff: number): void;

  /**
   * Sum over rows with labels[i] != ignoreIndex of -log probs[i, labels[i]] (from the logits'
   * log-sum-exp where the probability underflows); probs is the row softmax of logits [N, C].
   */
  crossEntropy(probs: Buf, logits: Buf, labels: Int32Array, N: number, C: number, ignoreIndex: number): number;
  /** dx[i, :] += g * (probs[i, :] - onehot(labels[i])) for every row not ignored */
  crossEntropyBackward(dx: Buf, probs: Buf, labels: Int32Array, N: number, C: number, g: number, ignoreIndex: number): void;

  /** sum((pred - target)^2); targets in double (regression labels are not rounded to float) */
  mseLoss(pred: Buf, target: Float64Array, n: number): number;
  /** dx += g * (pred - target) */
  mseBackward(dx: Buf, pred: Buf, target: Float64Array, n: number, g: number): void;

  /** AdaLoRA's importance EMAs: ipt = b1 ipt + (1-b1)|p g|; unc = b2 unc + (1-b2)|(|p g|) - ipt| */
  adaloraImportance(p: Buf, g: Buf, ipt: Buf, unc: Buf, n: number, beta1: number, beta2: number): void;

  /**
   * SoRA's SparseAdamW step on gates g (moments m, v in double, betas 0.9/0.999, eps 1e-8, decoupled
   * weight decay lr * weightDecay), then soft-thresholding by lambda when lambda > 0.
   */
  soraGates(g: Buf, grad: Buf, m: Float64Array, v: Float64Array, n: number, stepSize: number, lr: number, weightDecay: number, lambda: number): void;

  /** W [outF, inF] += alpha * B [outF, r] A [r, inF], each dot product in double (LoRA merge, PiSSA residual) */
  addLowRank(W: Buf, B: Buf, A: Buf, outF: number, inF: number, r: number, alpha: number): void;

  /** dst[dOff:] = float(src[sOff:]) over n 16-bit values (IEEE half, or bfloat16 when bf16), exact */
  halfToFloat(dst: Buf, dOff: number, src: Uint16Array, sOff: number, n: number, bf16: boolean): void;
  /** out[i, :] = float(table[ids[i], :]) for a half/bfloat16 table */
  embeddingHalf(out: Buf, table: Uint16Array, ids: Int32Array, n: number, C: number, bf16: boolean): void;
}

// ---------------------------------------------------------------------------------------------
// compile-time check of this interface against KERNEL_SPEC

type TsOf<T extends ArgType, Opt> =
  T extends 'bool' ? boolean
  : T extends 'f32' ? (Opt extends true ? Buf | null : Buf)
  : T extends 'f64' ? (Opt extends true ? Float64Array | null : Float64Array)
  : T extends 'i32' ? Int32Array
  : T extends 'u16' ? (Opt extends true ? Uint16Array | null : Uint16Array)
  : number;
type JsArgs<L> = L extends readonly [infer H, ...infer R]
  ? H extends { derived: string } ? JsArgs<R>
  : H extends { t: infer T extends ArgType } ? [TsOf<T, H extends { opt: true } ? true : false>, ...JsArgs<R>] : never
  : [];
type Spec = typeof KERNEL_SPEC;
type SpecArgs = { [K in keyof Spec]: JsArgs<Spec[K]['args']> };
type SpecRet = { [K in keyof Spec]: Spec[K] extends { ret: string } ? number : void };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type OwnKernels = Omit<Kernels, 'name'>;
/** true only when every kernel's parameters and result agree with KERNEL_SPEC, and no kernel is missing on either side */
export type KernelsMatchSpec = Same<keyof OwnKernels, keyof Spec> extends true
  ? { [K in keyof Spec]: K extends keyof OwnKernels
      ? Same<Parameters<OwnKernels[K]>, SpecArgs[K]> extends true ? Same<ReturnType<OwnKernels[K]>, SpecRet[K]> : false
      : false }[keyof Spec] extends true ? true : false
  : false;
const kernelsMatchSpec: KernelsMatchSpec = true;
void kernelsMatchSpec;
