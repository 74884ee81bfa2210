/**
 * Differentiable ops. Each op computes its forward through the kernels, then registers its backward
 * right beside it (micrograd style). Backward code accumulates into gradOf(input) and skips inputs
 * that do not require a gradient, so frozen weights cost no gradient work. A backward that writes
 * every value of an input's gradient asks gradFor instead: a gradient it creates is overwritten
 * (beta 0, the kernels' accumulate = false), never zero-filled first.
 */
import { kernels } from './backend.js';
import { dnnlAddon } from './backends/dnnl.js';
import { bf16Operand, bf16Rounded, matmulPrecision } from './precision.js';
import { BinaryOp, ReduceOp, UnaryOp, type Buf, type Kernels } from './kernels.js';
import { Rng } from './random.js';
import { Tensor, empty, gradFor, gradOf, record, recording, scratch, view, withScratch } from './tensor.js';

const K = kernels;
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * The f32 values of an operand that may be a half-precision (bf16/f16) frozen weight: those are
 * widened once into pooled scratch, so every product below runs sgemm on exactly the upcast values.
 */
function f32Of(t: Tensor): Buf {
  const half = t.halfBits;
  if (!half) return t.data;
  const w = scratch(t.size);
  K().halfToFloat(w, 0, half, 0, t.size, t.dtype === 'bf16');
  return w;
}

/**
 * A half-precision weight W [out, in] in the fp32 path of linear: widened into pooled scratch and
 * multiplied, fn(r0, rows, w) running the product of rows r0 .. r0 + rows. A weight of up to
 * halfWhole values is widened whole, so its product is the very sgemm call of an f32 load, bit for
 * bit. A larger one (a vocab-sized LM head: 1 GB as f32) is widened halfSlice values at a time, so
 * its f32 copy never exists; those products equal the f32 load's to rounding only, because OpenBLAS
 * picks its kernel (and so its summation order) by the shape of each call.
 */
function halfRowSlices(W: Tensor, fn: (r0: number, rows: number, w: Buf) => void): void {
  const [outF, inF] = W.shape, half = W.halfBits!, bf16 = W.dtype === 'bf16';
  const R = W.size <= halfWhole ? outF : Math.max(1, Math.min(outF, Math.floor(halfSlice / inF)));
  // lent, not scope-owned: every Linear of a block reuses the same buffer (backward widens again)
  withScratch(R * inF, (w) => {
    for (let r0 = 0; r0 < outF; r0 += R) {
      const rows = Math.min(R, outF - r0);
      K().halfToFloat(w, 0, half, r0 * inF, rows * inF, bf16);
      fn(r0, rows, w);
    }
  });
}
/** 2^24 values (64 MB as f32): every Linear of a Llama-3.2-1B-sized model but its vocab-sized head */
let halfWhole = 1 << 24;
/** 2^20 values (4 MB of f32, an L2's worth: sgemm reads the widened slice from cache) */
let halfSlice = 1 << 20;
/** Sets halfRowSlices' limits (tests slice a tiny model's weights); returns the previous ones. */
export function setHalfSlicing(whole: number, slice: number): [number, number] {
  const prev: [number, number] = [halfWhole, halfSlice];
  halfWhole = whole;
  halfSlice = slice;
  return prev;
}

/** A one-element result holding v (rounded to the tensor's precision). */
function scalar(v: number): Tensor {
  const out = empty([]);
  K().fill(out.data, 0, 1, v);
  return out;
}

// ---------------------------------------------------------------------------------------------
// broadcasting element-wise ops

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    out.push(Math.max(da, db));
  }
  return out;
}

/** Strides of a contiguous tensor of `shape` read as `outShape` (0 where it broadcasts). */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const st = new Int32Array(outShape.length);
  let s = 1;
  for (let i = outShape.length - 1, j = shape.length - 1; i >= 0; i--, j--) {
    const d = j >= 0 ? shape[j] : 1;
    st[i] = d === 1 ? 0 : s;
    s *= d;
  }
  return st;
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  const out = empty(shape);
  const sh = Int32Array.from(shape), sa = broadcastStrides(a.shape, shape), sb = broadcastStrides(b.shape, shape);
  const so = broadcastStrides(shape, shape);
  K().binary(op, out.data, a.data, b.data, sh, sa, sb);
  return record(out, [a, b], () => {
    const g = out.grad!;
    if (a.requiresGrad) K().accumulate(gradOf(a), g, op === BinaryOp.Mul ? b.data : null, 1, sh, sa, so, sb);
    if (b.requiresGrad) K().accumulate(gradOf(b), g, op === BinaryOp.Mul ? a.data : null, op === BinaryOp.Sub ? -1 : 1, sh, sb, so, sa);
  });
}

export const add = (a: Tensor, b: Tensor): Tensor => binaryOp(BinaryOp.Add, a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binaryOp(BinaryOp.Sub, a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binaryOp(BinaryOp.Mul, a, b);

/** x * s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  const out = empty(x.shape);
  const sh = Int32Array.from([x.size]), one = Int32Array.from([1]), zero = Int32Array.from([0]);
  const sv = x.data instanceof Float64Array ? Float64Array.of(s) : Float32Array.of(s);
  K().binary(BinaryOp.Mul, out.data, x.data, sv, sh, one, zero);
  return record(out, [x], () => K().accumulate(gradOf(x), out.grad!, null, s, sh, one, one, one));
}

// ---------------------------------------------------------------------------------------------
// activations

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = empty(x.shape);
  K().unary(op, out.data, x.data, x.size);
  return record(out, [x], () => {
    const { g, accumulate } = gradFor(x);
    K().unaryBackward(op, g, x.data, out.grad!, x.size, accumulate);
  });
}

export const gelu = (x: Tensor): Tensor => unaryOp(UnaryOp.Gelu, x);
export const geluTanh = (x: Tensor): Tensor => unaryOp(UnaryOp.GeluTanh, x);
export const relu = (x: Tensor): Tensor => unaryOp(UnaryOp.Relu, x);
export const silu = (x: Tensor): Tensor => unaryOp(UnaryOp.Silu, x);
export const tanh = (x: Tensor): Tensor => unaryOp(UnaryOp.Tanh, x);

/** The activation named by a Hugging Face config's hidden_act. */
export function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case 'gelu': return gelu;
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': return geluTanh;
    case 'relu': return relu;
    case 'silu': case 'swish': return silu;
    case 'tanh': return tanh;
    default: throw new Error(`unsupported activation "${name}" (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh)`);
  }
}

// ---------------------------------------------------------------------------------------------
// matrix products

export interface MatmulOptions { transA?: boolean; transB?: boolean }

/**
 * a [..., M, K] (or [..., K, M] with transA) times b [..., K, N] (or [..., N, K] with transB).
 * b is either 2-D (shared by every batch) or has a's batch dimensions. No operand is copied.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const tA = opts.transA ?? false, tB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul needs at least 2-D operands, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = tA ? ac : ar, Ka = tA ? ar : ac, Kb = tB ? bc : br, N = tB ? br : bc;
  if (Ka !== Kb) throw new Error(`matmul: inner dimensions differ: ${shapeStr(a.shape)}${tA ? 'ᵀ' : ''} x ${shapeStr(b.shape)}${tB ? 'ᵀ' : ''}`);
  const batchShape = a.shape.slice(0, -2), batch = prod(batchShape);
  const shared = b.ndim === 2;
  if (!shared && (b.ndim !== a.ndim || prod(b.shape.slice(0, -2)) !== batch)) {
    throw new Error(`matmul: batch dimensions differ: ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
  const Kd = Ka, lda = ac, ldb = bc;
  const out = empty([...batchShape, M, N]);
  const aD = f32Of(a), bD = f32Of(b);
  const sA = ar * ac, sB = shared ? 0 : br * bc, sC = M * N;
  const k = K();
  if (shared && !tA) k.gemm(false, tB, batch * M, N, Kd, 1, aD, 0, lda, bD, 0, ldb, 0, out.data, 0, N);
  else k.gemmBatched(tA, tB, M, N, Kd, 1, aD, 0, lda, sA, 0, bD, 0, ldb, sB, 0, 0, out.data, 0, N, sC, 0, batch, 1);

  return record(out, [a, b], () => {
    const k = K(), dC = out.grad!;
    if (a.requiresGrad) {
      // dA = dC op(B)^T, written in A's own layout
      const dA = gradOf(a);
      if (!tA) {
        if (shared) k.gemm(false, !tB, batch * M, Kd, N, 1, dC, 0, N, bD, 0, ldb, 1, dA, 0, lda);
        else k.gemmBatched(false, !tB, M, Kd, N, 1, dC, 0, N, sC, 0, bD, 0, ldb, sB, 0, 1, dA, 0, lda, sA, 0, batch, 1);
      } else {
        // A stored [K, M]: dA = op(B) dC^T
        k.gemmBatched(tB, true, Kd, M, N, 1, bD, 0, ldb, sB, 0, dC, 0, N, sC, 0, 1, dA, 0, lda, sA, 0, batch, 1);
      }
    }
    if (b.requiresGrad) {
      const dB = gradOf(b);
      if (!tB) {
        // B stored [K, N]: dB = op(A)^T dC
        if (shared && !tA) k.gemm(true, false, Kd, N, batch * M, 1, aD, 0, lda, dC, 0, N, 1, dB, 0, ldb);
        else k.gemmBatched(!tA, false, Kd, N, M, 1, aD, 0, lda, sA, 0, dC, 0, N, sC, 0, 1, dB, 0, ldb, sB, 0, batch, 1);
      } else {
        // B stored [N, K]: dB = dC^T op(A)
        if (shared && !tA) k.gemm(true, false, N, Kd, batch * M, 1, dC, 0, N, aD, 0, lda, 1, dB, 0, ldb);
        else k.gemmBatched(true, tA, N, Kd, M, 1, dC, 0, N, sC, 0, aD, 0, lda, sA, 0, 1, dB, 0, ldb, sB, 0, batch, 1);
      }
    }
  });
}

/** x [..., in] must fit W [out, in]. */
function checkLinearInput(x: Tensor, W: Tensor): void {
  if (x.shape[x.ndim - 1] !== W.shape[1]) throw new Error(`linear: input ${shapeStr(x.shape)} does not fit weight ${shapeStr(W.shape)}${W.name ? ` (${W.name})` : ''}`);
}

/**
 * act(linear(x, W, b)): a Linear and its activation (BERT's intermediate.dense + GELU). Where nothing
 * records a tape (a forward under noGrad: `gelora forward`, evaluation of a merged model, bench
 * forward) and the product is oneDNN's bf16 one, GELU is applied by the product as it writes its
 * output, bias first: one pass over the [tokens, intermediate] activation fewer (bench forward base
 * bf16: GELU 0.019-0.028 s a batch). Everywhere else the two ops, as before (training needs the
 * pre-activation for GELU's backward).
 */
export function linearAct(act: (t: Tensor) => Tensor, x: Tensor, W: Tensor, b: Tensor | null): Tensor {
  const code = act === gelu ? 1 : act === geluTanh ? 2 : 0;
  const wb = code && !recording() ? bf16Operand(W) : null, dn = wb ? dnnlAddon() : null;
  if (!dn) return act(linear(x, W, b));
  const [outF, inF] = W.shape;
  checkLinearInput(x, W);
  const out = empty([...x.shape.slice(0, -1), outF]);
  dn.gemmBf16(false, true, x.size / inF, outF, inF, 1, x.data as Float32Array, 0, inF, wb!, 0, inF, 0, out.data as Float32Array, 0, outF,
    b ? f32Of(b) as Float32Array : null, code as 1 | 2);
  return out;
}

/** The low-rank branch of a LoRA layer: scale * (input A^T) B^T, input defaulting to x. */
export interface LoraBranch { A: Tensor; B: Tensor; scale: number; input?: Tensor }

/**
 * y = x W^T + b (+ scale * (input A^T) B^T): a Hugging Face nn.Linear (W [out, in]) with an optional
 * LoRA branch fused in, so the adapter adds two thin GEMMs and no element-wise pass.
 */
export function linear(x: Tensor, W: Tensor, b: Tensor | null, lora?: LoraBranch): Tensor {
  const [outF, inF] = W.shape;
  checkLinearInput(x, W);
  const N = x.size / inF;
  const r = lora ? lora.A.shape[0] : 0;
  if (lora && (lora.A.shape[1] !== inF || lora.B.shape[0] !== outF || lora.B.shape[1] !== r)) {
    throw new Error(`linear: LoRA A ${shapeStr(lora.A.shape)} / B ${shapeStr(lora.B.shape)} do not fit weight ${shapeStr(W.shape)}`);
  }
  const out = empty([...x.shape.slice(0, -1), outF]);
  // bf16 mode (precision.ts): a bf16 frozen weight is multiplied by oneDNN as is, x rounded to bf16
  // on the way in, fp32 accumulation; everything else (bias, LoRA branch, gradients' sums) stays fp32
  // (bf16Operand is null off the native backend, whose buffers are all Float32Array). A trained weight
  // under mixed precision (pretraining) is rounded here, once for the product and dx; dW stays sgemm's.
  let wb = bf16Operand(W) ?? (bf16Rounded(W) ? roundedWeight(W) : null);
  const dn = wb ? dnnlAddon() : null;
  // a half W in the fp32 path is widened slice by slice, here and again in backward (halfRowSlices)
  const k = K(), y = out.data, half = !dn && W.halfBits !== null, w = dn || half ? null : W.data;
  const bias = b ? f32Of(b) : null;
  const xl = lora ? lora.input ?? x : null;
  // The LoRA branch's [tokens x r] products (t = x A^T, and in backward dt = s dy B, dB and dA) run in
  // the loraPass kernel, float32 in either mode: one read of the activation each, where sgemm ran them
  // at 20-50 GFLOP/s (bench lora-pass). The rank-r expansions (t B^T, dt A): in bf16 mode on a frozen
  // bf16 W with the branch on x itself, part of the frozen product (joinedWeight); otherwise ordinary
  // products, fp32 mode OpenBLAS's, bf16 mode oneDNN's, so that one thread pool runs the whole step
  // (the two pools share the cores; moving them over measured 2.4-2.7% faster mini steps).
  const thin: Kernels['gemm'] | null = !lora ? null : dn ? (tA, tB, M, Nn, Kd, al, A, aO, lda, Bm, bO, ldb, be, C, cO, ldc) =>
    dn.gemmDnnl(tA, tB, M, Nn, Kd, al, A as Float32Array, aO, lda, Bm as Float32Array, bO, ldb, be, C as Float32Array, cO, ldc) : k.gemm.bind(k);
  // bf16 mode with the LoRA branch on x itself (no dropout): the same pass over x also writes x's bf16
  // copy for the frozen product, instead of a second read of x
  const fuse = dn !== null && lora !== undefined && xl === x;
  // the A rows are written only for a backward that will read them (a recorded forward with dx)
  const withA = recording() && x.requiresGrad;
  const J = fuse && wb === bf16Operand(W) ? joinedWeight(W, lora!, wb!, outF, inF, withA) : null;
  if (J) wb = J.wb; // W's bits may now be [W ; A]'s prefix: the tape must not keep the old array alive
  const t = lora ? scratch(N * r) : null;
  // the bias in every row, then y += x W^T (oneDNN adds the bias itself)
  if (bias && !dn) k.copy2d(N, outF, bias, 0, 0, y, 0, outF, false);
  if (J) {
    // y = [x | t] [W | sB]^T + b: t's bf16 copy rides in x's as r more columns
    const ld = inF + r;
    withBf16Scratch(N * ld, (xb) => {
      k.loraPass(x.data, N, inF, xb, true, lora!.A.data, r, 1, t, null, 0, null);
      dn!.gemmBf16(false, true, N, outF, ld, 1, xb, 0, ld, J.fwd, 0, ld, 0, y as Float32Array, 0, outF, bias as Float32Array | null);
    });
  } else if (fuse) {
    withBf16Scratch(N * inF, (xb) => {
      k.loraPass(x.data, N, inF, xb, false, lora!.A.data, r, 1, t, null, 0, null);
      dn!.gemmBf16(false, true, N, outF, inF, 1, xb, 0, inF, wb!, 0, inF, 0, y as Float32Array, 0, outF, bias as Float32Array | null);
    });
  } else if (dn) dn.gemmBf16(false, true, N, outF, inF, 1, x.data as Float32Array, 0, inF, wb!, 0, inF, 0, y as Float32Array, 0, outF, bias as Float32Array | null);
  else if (half) halfRowSlices(W, (r0, rows, ws) => k.gemm(false, true, N, rows, inF, 1, x.data, 0, inF, ws, 0, inF, b ? 1 : 0, y, r0, outF));
  else k.gemm(false, true, N, outF, inF, 1, x.data, 0, inF, w!, 0, inF, b ? 1 : 0, y, 0, outF);
  if (lora) {
    if (!fuse) k.loraPass(xl!.data, N, inF, null, false, lora.A.data, r, 1, t, null, 0, null);
    if (!J) thin!(false, true, N, outF, r, lora.scale, t!, 0, r, lora.B.data, 0, r, 1, y, 0, outF);
  }
  return record(out, [x, W, b, lora?.A, lora?.B, xl], () => {
    const k = K(), dy = out.grad!;
    // dx (+)= dy W (dy rounded to bf16 in bf16 mode, as autocast's backward of a bf16 product); a fresh
    // dx is overwritten (beta 0), except by the half path, whose row slices each add their part
    const gx = x.requiresGrad && !half ? gradFor(x) : null, bx = gx?.accumulate === false ? 0 : 1;
    const needDt = !!lora && (lora.A.requiresGrad || xl!.requiresGrad), needDb = !!lora && lora.B.requiresGrad;
    // the joined weight's A rows (written by this forward) take dt A into dx's product
    const joinBack = J !== null && withA && gx !== null && needDt;
    const dt = needDt ? scratch(N * r) : null; // scale * dy B
    // dx's product, dy (or its bf16 copy) times W
    const dxProduct = (dyb: Uint16Array | null): void => {
      if (gx && dn) dn.gemmBf16(false, false, N, inF, outF, 1, dyb ?? dy as Float32Array, 0, outF, wb!, 0, inF, bx, gx.g as Float32Array, 0, inF);
      else if (x.requiresGrad && half) halfRowSlices(W, (r0, rows, ws) => k.gemm(false, false, N, inF, rows, 1, dy, r0, outF, ws, 0, inF, 1, gradOf(x), 0, inF));
      else if (gx) k.gemm(false, false, N, inF, outF, 1, dy, 0, outF, w!, 0, inF, bx, gx.g, 0, inF);
    };
    if (lora && (needDt || needDb)) {
      // one pass over dy: dt = scale dy B and dB^T += scale t^T dy (and in bf16 mode dy's bf16 copy for
      // dx's product), instead of two or three reads of dy
      const Bt = scratch(r * outF), Bd = lora.B.data, outer = needDb ? scratch(r * outF).fill(0) : null;
      for (let o = 0; o < outF; o++) for (let j = 0; j < r; j++) Bt[j * outF + o] = Bd[o * r + j];
      const pass = (dyb: Uint16Array | null, join = false): void => k.loraPass(dy, N, outF, dyb, join, Bt, r, lora.scale, dt ?? scratch(N * r), outer ? t : null, lora.scale, outer);
      if (joinBack) {
        // dx = [dy | dt] [W; A]: dt's bf16 copy rides in dy's as r more columns
        const ld = outF + r;
        withBf16Scratch(N * ld, (dyb) => {
          pass(dyb, true);
          dn!.gemmBf16(false, false, N, inF, ld, 1, dyb, 0, ld, J!.bwd!, 0, inF, bx, gx!.g as Float32Array, 0, inF);
        });
      } else if (gx && dn) withBf16Scratch(N * outF, (dyb) => { pass(dyb); dxProduct(dyb); });
      else { pass(null); dxProduct(null); }
      if (outer) {
        const gB = gradOf(lora.B);
        for (let o = 0; o < outF; o++) for (let j = 0; j < r; j++) gB[o * r + j] += outer[j * outF + o];
      }
    } else dxProduct(null);
    if (W.requiresGrad) k.gemm(true, false, outF, inF, N, 1, dy, 0, outF, x.data, 0, inF, 1, gradOf(W), 0, inF);
    if (b && b.requiresGrad) sumRowsInto(gradOf(b), dy, N, outF);
    if (lora && dt && xl) {
      if (lora.A.requiresGrad) k.loraPass(xl.data, N, inF, null, false, null, r, 0, null, dt, 1, gradOf(lora.A)); // dA += dt^T x
      if (xl.requiresGrad && !joinBack) thin!(false, false, N, inF, r, 1, dt, 0, r, lora.A.data, 0, inF, 1, gradOf(xl), 0, inF);
    }
  });
}

/**
 * bf16 mode's LoRA Linear as one product each way: the frozen weight's bits copied (once per adapter)
 * into joined matrices with the adapter beside them,
 *     forward   y  = [x | t] [W | sB]^T + b    [W | sB]: out rows of in + r     (K = in + r)
 *     backward  dx = [dy | dt] [W ; A]         [W ; A]:  out + r rows of in     (K = out + r)
 * with t = x A^T and dt = s dy B in bf16 beside the activation's own bf16 copy (loraPass joinDots).
 * They replace the two rank-r expansions, t B^T and dt A: products of r multiply-adds per output that
 * still read and wrote the whole float32 [tokens x features] output, bound by memory (0.5-2 ms each on
 * the mini and BERT-base shapes, where r more columns of the AMX product cost 0.0-0.1 ms). Each
 * operand is dense: oneDNN's bf16 product of a non-transposed B whose rows are further apart than its
 * width ran 1.3-1.9x slower, so the two layouts are two copies. The branch's products are then bf16
 * with float32 sums, as torch.autocast runs them; t, dt and the gradients dA, dB stay float32. The sB
 * columns and A rows are rewritten from the adapter at each forward: they are the adapter's values until
 * the optimiser steps, after that step's backward. [W ; A] begins with W itself, so W's storage
 * becomes that prefix (a view; half bits are never written in place): the price is one more bf16 copy
 * of each adapted frozen weight, [W | sB].
 */
interface Joined { wb: Uint16Array; fwd: Uint16Array; bwd: Uint16Array | null }
const joinedWeights = new WeakMap<Tensor, Joined>();
function joinedWeight(W: Tensor, lora: LoraBranch, wb: Uint16Array, outF: number, inF: number, withA: boolean): Joined {
  const r = lora.A.shape[0], ld = inF + r;
  let e = joinedWeights.get(lora.B);
  if (!e || e.wb !== wb || e.fwd.length !== outF * ld) {
    // keyed by the adapter's B (a parameter; AdaLoRA's and SoRA's A is a new product E * A at every
    // forward) and checked against W's bits: half bits are never written in place (a
    // change of W widens it or adopts new bits), so the same array means the same values
    const fwd = new Uint16Array(outF * ld);
    for (let o = 0; o < outF; o++) fwd.set(wb.subarray(o * inF, (o + 1) * inF), o * ld);
    e = { wb, fwd, bwd: null };
    joinedWeights.set(lora.B, e);
  }
  // rounded by the addon (a TypeScript loop here cost 4-8 ms of a 0.16-0.19 s mini step)
  const J = e.fwd, B = lora.B.data as Float32Array, A = lora.A.data as Float32Array, s = lora.scale, dn = dnnlAddon()!;
  dn.f32ToBf16Rows(J, inF, ld, B, 0, r, outF, r, s);
  if (withA) {
    if (!e.bwd) {
      // [W ; A] starts with W's own bits: W's storage becomes that prefix, so W is held twice, not three times
      e.bwd = new Uint16Array((outF + r) * inF);
      e.bwd.set(wb);
      W.adoptHalf(e.bwd.subarray(0, outF * inF), 'bf16');
      e.wb = W.halfBits!;
    }
    dn.f32ToBf16(e.bwd, outF * inF, A, 0, r * inF);
  }
  return e;
}

/** A pooled buffer of n bf16 values lent to fn only (withScratch's float32 buffer seen as twice as many halves). */
function withBf16Scratch<T>(n: number, fn: (b: Uint16Array) => T): T {
  return withScratch(Math.ceil(n / 2), (s) => fn(new Uint16Array(s.buffer, s.byteOffset, n)));
}

/** A trained f32 weight's values rounded to bf16 into scope-owned scratch (mixed precision: every step anew). */
function roundedWeight(W: Tensor): Uint16Array {
  const s = scratch(Math.ceil(W.size / 2)), bits = new Uint16Array(s.buffer, s.byteOffset, W.size);
  dnnlAddon()!.f32ToBf16(bits, 0, W.data as Float32Array, 0, W.size);
  return bits;
}

/** dst[j] += sum_i src[i, j] */
function sumRowsInto(dst: Buf, src: Buf, rows: number, cols: number): void {
  K().accumulate(dst, src, null, 1, Int32Array.of(rows, cols), Int32Array.of(0, 1), Int32Array.of(cols, 1), Int32Array.of(0, 0));
}

// ---------------------------------------------------------------------------------------------
// attention

export interface AttentionOptions {
  heads: number;
  /** key/value heads (grouped-query attention); defaults to heads */
  kvHeads?: number;
  /** multiplies QK^T; defaults to 1/sqrt(head_dim) */
  scale?: number;
  /** additive key mask [B, Tk] (0 keep, very negative drop) */
  mask?: Tensor | null;
  causal?: boolean;
  /** added to the scaled scores before softmax, [B, H, Tq, Tk] (DeBERTa's relative terms) */
  scoreBias?: Tensor | null;
  /**
   * 0/1 per query [B, Tq]: a masked query row has every score masked, and transformers' masked_fill +
   * softmax then spreads it uniformly over all keys (DeBERTa's 2-D mask m_q * m_k)
   */
  queryMask?: ArrayLike<number> | null;
}

/**
 * Multi-head attention core on projections laid out [B, T, heads*d]: softmax(scale QK^T + bias + mask) V,
 * output [B, Tq, heads*d]. Heads are addressed in place through strides, never permuted; the
 * probabilities are the only saved activation.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  const [B, Tq, HD] = q.shape, Tk = k.shape[1];
  const H = o.heads, Hkv = o.kvHeads ?? H, d = HD / H;
  if (!Number.isInteger(d) || k.shape[2] !== Hkv * d || v.shape[2] !== Hkv * d || k.shape[0] !== B || v.shape[1] !== Tk) {
    throw new Error(`attention: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)} do not fit ${H} heads / ${Hkv} kv heads`);
  }
  if (H % Hkv !== 0) throw new Error(`attention: ${H} heads are not a multiple of ${Hkv} kv heads`);
  const group = H / Hkv, sc = o.scale ?? 1 / Math.sqrt(d);
  const mask = o.mask ?? null, bias = o.scoreBias ?? null;
  if (mask && (mask.size !== B * Tk)) throw new Error(`attention: mask ${shapeStr(mask.shape)} is not [${B}, ${Tk}]`);
  if (bias && bias.size !== B * H * Tq * Tk) throw new Error(`attention: score bias ${shapeStr(bias.shape)} is not [${B}, ${H}, ${Tq}, ${Tk}]`);
  const P = empty([B, H, Tq, Tk]);
  const out = empty([B, Tq, HD]);
  const kk = K(), bmm = batchedProducts();
  const qB = Tq * HD, kB = Tk * Hkv * d, pB = H * Tq * Tk, pH = Tq * Tk;
  // Products per kv head g: its `group` query heads (n2 = group, stride d on the query side) share K
  // and V (stride 0). With one query head per kv head, and a library that batches, all heads are one
  // call (n2 = H, kv stride d): the same problems, each computed the same way.
  const allHeads = group === 1 && bmm.batches;
  const perKv = (f: (g: number, n2: number, kvS: number) => void): void => {
    if (allHeads) f(0, H, d);
    else for (let g = 0; g < Hkv; g++) f(g, group, 0);
  };
  perKv((g, n2, kvS) => bmm.run(false, true, Tq, Tk, d, sc, q.data, g * group * d, HD, qB, d, k.data, g * d, Hkv * d, kB, kvS,
    0, P.data, g * group * pH, Tk, pB, pH, B, n2));
  if (bias) kk.binary(BinaryOp.Add, P.data, P.data, bias.data, Int32Array.of(P.size), Int32Array.of(1), Int32Array.of(1));
  kk.softmax(P.data, P.data, B * H * Tq, Tk, 1, mask ? mask.data : null, H * Tq, o.causal ? Tq : 0);
  const maskedRows: number[] = [];
  if (o.queryMask) {
    for (let b = 0; b < B; b++) for (let i = 0; i < Tq; i++) if (!o.queryMask[b * Tq + i]) {
      for (let h = 0; h < H; h++) maskedRows.push(((b * H + h) * Tq + i) * Tk);
    }
    for (const r of maskedRows) kk.fill(P.data, r, Tk, 1 / Tk);
  }
  perKv((g, n2, kvS) => bmm.run(false, false, Tq, d, Tk, 1, P.data, g * group * pH, Tk, pB, pH, v.data, g * d, Hkv * d, kB, kvS,
    0, out.data, g * group * d, HD, qB, d, B, n2));
  return record(out, [q, k, v, bias], () => {
    const kk = K(), dO = out.grad!;
    const dP = scratch(P.size), dS = scratch(P.size); // softmaxBackward overwrites dS
    // gradients the products may overwrite when fresh (beta 0): every value of dQ is written once, and
    // of dK/dV too unless a group's query heads add into one kv head; q, k, v sharing one buffer (a
    // self-attention without projections) always add
    const distinct = new Set([q.base ?? q, k.base ?? k, v.base ?? v]).size === 3;
    const slot = (t: Tensor, once: boolean): { g: Buf; beta: number } => {
      const s = distinct && once ? gradFor(t) : { g: gradOf(t), accumulate: true };
      return { g: s.g, beta: s.accumulate ? 1 : 0 };
    };
    const dV = v.requiresGrad ? slot(v, group === 1) : null;
    perKv((g, n2, kvS) => {
      // dP = dO V^T
      bmm.run(false, true, Tq, Tk, d, 1, dO, g * group * d, HD, qB, d, v.data, g * d, Hkv * d, kB, kvS,
        0, dP, g * group * pH, Tk, pB, pH, B, n2);
      // dV += P^T dO (heads of a group accumulate into the same kv head: C stride kvS = 0, sequentially)
      if (dV) bmm.run(true, false, Tk, d, Tq, 1, P.data, g * group * pH, Tk, pB, pH, dO, g * group * d, HD, qB, d,
        dV.beta, dV.g, g * d, Hkv * d, kB, kvS, B, n2);
    });
    kk.softmaxBackward(dS, P.data, dP, B * H * Tq, Tk, 1, false);
    for (const r of maskedRows) kk.fill(dS, r, Tk, 0); // constant rows pass no gradient to the scores
    if (bias && bias.requiresGrad) {
      kk.accumulate(gradOf(bias), dS, null, 1, Int32Array.of(P.size), Int32Array.of(1), Int32Array.of(1), Int32Array.of(0));
    }
    const dQ = q.requiresGrad ? slot(q, true) : null, dK = k.requiresGrad ? slot(k, group === 1) : null;
    perKv((g, n2, kvS) => {
      // dQ (+)= sc dS K ; dK (+)= sc dS^T Q
      if (dQ) bmm.run(false, false, Tq, d, Tk, sc, dS, g * group * pH, Tk, pB, pH, k.data, g * d, Hkv * d, kB, kvS,
        dQ.beta, dQ.g, g * group * d, HD, qB, d, B, n2);
      if (dK) bmm.run(true, false, Tk, d, Tq, sc, dS, g * group * pH, Tk, pB, pH, q.data, g * group * d, HD, qB, d,
        dK.beta, dK.g, g * d, Hkv * d, kB, kvS, B, n2);
    });
  });
}

type GemmBatched = Kernels['gemmBatched'];

/**
 * Who runs attention's activation x activation products. fp32 mode: the kernels' gemmBatched
 * (OpenBLAS, one sgemm per problem: today's numerics bit for bit). bf16 mode: still float32 (autocast
 * would run them in bf16; gelora's bf16 accuracy was measured with them in float32), but through
 * oneDNN's batched matmul, one threaded primitive over all B x H problems instead of one small sgemm
 * each (measured on BERT-base shapes, B8 x T128 x 12 heads: QK^T 3.0 -> 1.6 ms, dV 2.9 -> 1.9 ms). A
 * problem set that writes one C from several problems (grouped-query attention's dK, dV) stays on the
 * kernels, which run them in order.
 */
function batchedProducts(): { run: GemmBatched; batches: boolean } {
  const kk = K();
  const dn = matmulPrecision() === 'bf16' && kk.name === 'native' ? dnnlAddon() : null;
  if (!dn || typeof dn.gemmBatchedDnnl !== 'function') return { run: kk.gemmBatched.bind(kk), batches: false };
  const run: GemmBatched = (tA, tB, M, N, Kd, alpha, A, aOff, lda, aS1, aS2, Bm, bOff, ldb, bS1, bS2, beta, C, cOff, ldc, cS1, cS2, n1, n2) => {
    if ((n2 > 1 && cS2 === 0) || (n1 > 1 && cS1 === 0)) kk.gemmBatched(tA, tB, M, N, Kd, alpha, A, aOff, lda, aS1, aS2, Bm, bOff, ldb, bS1, bS2, beta, C, cOff, ldc, cS1, cS2, n1, n2);
    else dn.gemmBatchedDnnl(tA, tB, M, N, Kd, alpha, A as Float32Array, aOff, lda, aS1, aS2, Bm as Float32Array, bOff, ldb, bS1, bS2, beta, C as Float32Array, cOff, ldc, cS1, cS2, n1, n2);
  };
  return { run, batches: true };
}

/**
 * Per-head products with a shared table: out[b, h, t, r] = x[b, t, h, :] . table[r, h, :], for
 * x [B, T, heads*d] and table [R, heads*d]; output [B, heads, T, R]. DeBERTa's content-to-position
 * and position-to-content terms.
 */
export function headsMatmul(x: Tensor, table: Tensor, heads: number): Tensor {
  const [B, T, HD] = x.shape, R = table.shape[0], d = HD / heads;
  if (table.ndim !== 2 || table.shape[1] !== HD || !Number.isInteger(d)) throw new Error(`headsMatmul: x ${shapeStr(x.shape)} and table ${shapeStr(table.shape)} do not fit ${heads} heads`);
  const out = empty([B, heads, T, R]);
  const sB = T * HD, oB = heads * T * R, oH = T * R, tab = f32Of(table);
  K().gemmBatched(false, true, T, R, d, 1, x.data, 0, HD, sB, d, tab, 0, HD, 0, d, 0, out.data, 0, R, oB, oH, B, heads);
  return record(out, [x, table], () => {
    const k = K(), g = out.grad!;
    if (x.requiresGrad) k.gemmBatched(false, false, T, d, R, 1, g, 0, R, oB, oH, tab, 0, HD, 0, d, 1, gradOf(x), 0, HD, sB, d, B, heads);
    if (table.requiresGrad) k.gemmBatched(true, false, R, d, T, 1, g, 0, R, oB, oH, x.data, 0, HD, sB, d, 1, gradOf(table), 0, HD, 0, d, B, heads);
  });
}

export interface SoftmaxOptions {
  scale?: number;
  /** additive mask, one row of the last dimension per group of consecutive rows (e.g. [B, Tk] for [B, H, Tq, Tk]) */
  mask?: Tensor | null;
  causal?: boolean;
}

/** softmax over the last dimension of scale * x + mask. */
export function softmax(x: Tensor, o: SoftmaxOptions = {}): Tensor {
  const cols = x.shape[x.ndim - 1], rows = x.size / cols, sc = o.scale ?? 1;
  const mask = o.mask ?? null;
  let group = 1;
  if (mask) {
    const mrows = mask.size / cols;
    if (!Number.isInteger(mrows) || rows % mrows !== 0) throw new Error(`softmax: mask ${shapeStr(mask.shape)} does not tile ${shapeStr(x.shape)}`);
    group = rows / mrows;
  }
  const Tq = x.ndim >= 2 ? x.shape[x.ndim - 2] : 1;
  const out = empty(x.shape);
  K().softmax(out.data, x.data, rows, cols, sc, mask ? mask.data : null, group, o.causal ? Tq : 0);
  return record(out, [x, mask], () => {
    if (x.requiresGrad) {
      const { g, accumulate } = gradFor(x);
      K().softmaxBackward(g, out.data, out.grad!, rows, cols, sc, accumulate);
    }
    if (mask && mask.requiresGrad) throw new Error('softmax: gradients towards the mask are not supported');
  });
}

// ---------------------------------------------------------------------------------------------
// normalisation

/** LayerNorm(x + residual) over the last dimension, with the residual add fused in. */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number, residual?: Tensor | null): Tensor {
  const C = x.shape[x.ndim - 1], N = x.size / C;
  if ((w && w.size !== C) || (b && b.size !== C)) throw new Error(`layerNorm: weight/bias do not have ${C} values`);
  if (residual && residual.size !== x.size) throw new Error(`layerNorm: residual ${shapeStr(residual.shape)} differs from ${shapeStr(x.shape)}`);
  const out = empty(x.shape);
  const sum = residual ? scratch(x.size) : x.data, mean = scratch(N), rstd = scratch(N);
  const wD = w ? f32Of(w) : null;
  K().layernorm(out.data, sum, mean, rstd, x.data, residual ? residual.data : null, wD, b ? f32Of(b) : null, N, C, eps);
  return record(out, [x, residual, w, b], () => {
    const k = K(), dy = out.grad!;
    // the sum's gradient goes to x and to the residual: written straight into the first of them
    // (overwriting it when fresh), then added to the second; into a scratch only when neither is fresh
    const to = [x, residual].filter((t): t is Tensor => !!t && t.requiresGrad);
    const first = to.length ? gradFor(to[0]) : null;
    let dx = first?.g ?? null, acc = first?.accumulate ?? true, copies: Tensor[] = to.slice(1);
    if (first?.accumulate && to.length === 2) {
      const second = gradFor(to[1]);
      if (second.accumulate) { dx = scratch(x.size); acc = false; copies = to; }
      else { dx = second.g; acc = false; copies = [to[0]]; }
    }
    k.layernormBackward(dx, w && w.requiresGrad ? gradOf(w) : null, b && b.requiresGrad ? gradOf(b) : null,
      dy, sum, wD, mean, rstd, N, C, acc);
    for (const t of copies) {
      const s = gradFor(t);
      k.copy2d(1, x.size, dx!, 0, x.size, s.g, 0, x.size, s.accumulate);
    }
  });
}

export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const C = x.shape[x.ndim - 1], N = x.size / C;
  if (w.size !== C) throw new Error(`rmsNorm: weight has ${w.size} values, expected ${C}`);
  const out = empty(x.shape), rstd = scratch(N), wD = f32Of(w);
  K().rmsnorm(out.data, rstd, x.data, wD, N, C, eps);
  return record(out, [x, w], () => {
    K().rmsnormBackward(x.requiresGrad ? gradOf(x) : null, w.requiresGrad ? gradOf(w) : null, out.grad!, x.data, wD, rstd, N, C);
  });
}

// ---------------------------------------------------------------------------------------------
// gathers

/** Rows of table [V, C] picked by ids (shape `idsShape`): output [...idsShape, C]. */
export function embedding(table: Tensor, ids: Int32Array, idsShape: readonly number[] = [ids.length]): Tensor {
  const [V, C] = table.shape;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= V) throw new Error(`embedding: id ${ids[i]} at position ${i} is outside the table of ${V} rows${table.name ? ` (${table.name})` : ''}`);
  }
  const out = empty([...idsShape, C]);
  const half = table.halfBits; // a half table: only the rows looked up are widened
  if (half) K().embeddingHalf(out.data, half, ids, ids.length, C, table.dtype === 'bf16');
  else K().embedding(out.data, table.data, ids, ids.length, C);
  return record(out, [table], () => K().embeddingBackward(gradOf(table), out.grad!, ids, ids.length, C));
}

/**
 * torch.gather on the last axis: out[..., j] = src[..., idx[..., j]]. idx has the shape of the
 * output, or fewer leading elements (then it repeats: an index shared by batches/heads).
 */
export function gatherLast(src: Tensor, idx: Int32Array, outShape: readonly number[]): Tensor {
  const srcLast = src.shape[src.ndim - 1], idxLast = outShape[outShape.length - 1];
  const outer = prod(outShape) / idxLast, idxOuter = idx.length / idxLast;
  if (outer * srcLast !== src.size) throw new Error(`gatherLast: output ${shapeStr(outShape)} does not match source ${shapeStr(src.shape)}`);
  if (!Number.isInteger(idxOuter) || outer % idxOuter !== 0) throw new Error(`gatherLast: ${idx.length} indices do not tile ${shapeStr(outShape)}`);
  for (let i = 0; i < idx.length; i++) if (idx[i] < 0 || idx[i] >= srcLast) throw new Error(`gatherLast: index ${idx[i]} outside [0, ${srcLast})`);
  const out = empty(outShape);
  K().gatherLast(out.data, src.data, idx, outer, srcLast, idxLast, idxOuter);
  return record(out, [src], () => K().gatherLastBackward(gradOf(src), out.grad!, idx, outer, srcLast, idxLast, idxOuter));
}

// ---------------------------------------------------------------------------------------------
// shape ops

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const full = shape.map((d) => (d === -1 ? x.size / known : d));
  if (prod(full) !== x.size) throw new Error(`reshape: ${shapeStr(x.shape)} cannot become ${shapeStr(shape)}`);
  return view(x, full);
}

/** An explicit copy with axes permuted (out axis i = x axis perm[i]). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const nd = x.ndim;
  if (perm.length !== nd || [...perm].sort().some((p, i) => p !== i)) throw new Error(`permute: ${perm} is not a permutation of ${nd} axes`);
  const outShape = perm.map((p) => x.shape[p]);
  const xStr = broadcastStrides(x.shape, x.shape);
  const readStr = Int32Array.from(perm.map((p) => xStr[p]));
  const outStr = broadcastStrides(outShape, outShape);
  const sh = Int32Array.from(outShape);
  const out = empty(outShape);
  K().fill(out.data, 0, out.size, 0);
  K().accumulate(out.data, x.data, null, 1, sh, outStr, readStr, outStr);
  return record(out, [x], () => K().accumulate(gradOf(x), out.grad!, null, 1, sh, readStr, outStr, outStr));
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const perm = [...Array(x.ndim).keys()];
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

/** x[..., start:end, ...] along `axis`, copied. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  if (axis < 0) axis += x.ndim;
  const n = x.shape[axis];
  if (start < 0 || end > n || start >= end) throw new Error(`slice: [${start}, ${end}) outside axis ${axis} of size ${n}`);
  const outer = prod(x.shape.slice(0, axis)), inner = prod(x.shape.slice(axis + 1));
  const outShape = [...x.shape];
  outShape[axis] = end - start;
  const out = empty(outShape), w = (end - start) * inner;
  // outer rows of w values, n * inner apart in x
  K().copy2d(outer, w, x.data, start * inner, n * inner, out.data, 0, w, false);
  return record(out, [x], () => K().copy2d(outer, w, out.grad!, 0, w, gradOf(x), start * inner, n * inner, true));
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: nothing to concatenate');
  const first = xs[0];
  if (axis < 0) axis += first.ndim;
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== axis && d !== first.shape[i])) {
      throw new Error(`concat: ${shapeStr(t.shape)} does not fit ${shapeStr(first.shape)} along axis ${axis}`);
    }
  }
  const outer = prod(first.shape.slice(0, axis)), inner = prod(first.shape.slice(axis + 1));
  const total = xs.reduce((s, t) => s + t.shape[axis], 0);
  const outShape = [...first.shape];
  outShape[axis] = total;
  const out = empty(outShape), row = total * inner;
  let at = 0;
  const starts = xs.map((t) => { const s = at; at += t.shape[axis] * inner; return s; });
  // input i fills columns [starts[i], starts[i] + w) of each of the outer rows of out
  xs.forEach((t, i) => { const w = t.shape[axis] * inner; K().copy2d(outer, w, t.data, 0, w, out.data, starts[i], row, false); });
  return record(out, xs, () => {
    xs.forEach((t, i) => {
      if (!t.requiresGrad) return;
      const w = t.shape[axis] * inner;
      K().copy2d(outer, w, out.grad!, starts[i], row, gradOf(t), 0, w, true);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// position embeddings, dropout

/** Rotary embedding on x [B, T, heads*d] with cos/sin [T, d] (transformers' rotate_half layout). */
export function rope(x: Tensor, cos: Buf, sin: Buf, heads: number): Tensor {
  const [B, T, HD] = x.shape, d = HD / heads;
  if (cos.length < T * d || sin.length < T * d) throw new Error(`rope: cos/sin tables cover fewer than ${T} positions`);
  const out = empty(x.shape);
  K().rope(out.data, x.data, cos, sin, B, T, heads, d, 1, false);
  return record(out, [x], () => K().rope(gradOf(x), out.grad!, cos, sin, B, T, heads, d, -1, true));
}

/** Inverted dropout with a seeded generator; identity when p == 0. */
export function dropout(x: Tensor, p: number, rng: Rng): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout probability must be below 1, got ${p}`);
  const mask = scratch(x.size), keep = 1 / (1 - p);
  const [state, spare] = rng.getState();
  rng.setState([K().dropoutMask(mask, x.size, p, keep, state), spare]);
  const out = empty(x.shape), sh = Int32Array.of(x.size), one = Int32Array.of(1);
  K().binary(BinaryOp.Mul, out.data, x.data, mask, sh, one, one);
  return record(out, [x], () => K().accumulate(gradOf(x), out.grad!, mask, 1, sh, one, one, one));
}

// ---------------------------------------------------------------------------------------------
// reductions and losses

export function sum(x: Tensor): Tensor {
  const out = scalar(K().reduce(ReduceOp.Sum, x.data, 0, x.size, 0));
  const sh = Int32Array.of(x.size), one = Int32Array.of(1), zero = Int32Array.of(0);
  // dx[i] += dout[0]: the output gradient read with stride 0
  return record(out, [x], () => K().accumulate(gradOf(x), out.grad!, null, 1, sh, one, zero, zero));
}

/** sqrt(sum(x^2)) (Frobenius norm), e.g. AdaLoRA's orthogonality penalty. */
export function frobenius(x: Tensor): Tensor {
  const norm = Math.sqrt(K().reduce(ReduceOp.SumSquares, x.data, 0, x.size, 0));
  const out = scalar(norm);
  return record(out, [x], () => {
    if (norm === 0) return;
    K().axpy(x.size, out.grad![0] / norm, x.data, 0, gradOf(x), 0);
  });
}

export function mean(x: Tensor): Tensor {
  return scale(sum(x), 1 / x.size);
}

/**
 * Mean cross-entropy of logits [N, C] against integer labels; labels equal to ignoreIndex are skipped.
 * The softmax runs in the (vectorised) softmax kernel: vocabulary-sized rows are common (MLM).
 */
export function crossEntropy(logits: Tensor, labels: Int32Array, ignoreIndex = -100): Tensor {
  const C = logits.shape[logits.ndim - 1], N = logits.size / C;
  if (labels.length !== N) throw new Error(`crossEntropy: ${labels.length} labels for ${N} rows of logits`);
  let count = 0;
  for (let i = 0; i < N; i++) {
    const y = labels[i];
    if (y === ignoreIndex) continue;
    if (y < 0 || y >= C) throw new Error(`crossEntropy: label ${y} at row ${i} is outside [0, ${C})`);
    count++;
  }
  const probs = scratch(logits.size);
  K().softmax(probs, logits.data, N, C, 1, null, 1, 0);
  const total = K().crossEntropy(probs, logits.data, labels, N, C, ignoreIndex);
  const out = scalar(count > 0 ? total / count : 0);
  return record(out, [logits], () => {
    if (count === 0) return;
    K().crossEntropyBackward(gradOf(logits), probs, labels, N, C, out.grad![0] / count, ignoreIndex);
  });
}

/** Mean squared error between pred and target values (same number of elements). */
export function mseLoss(pred: Tensor, target: ArrayLike<number>): Tensor {
  if (target.length !== pred.size) throw new Error(`mseLoss: ${target.length} targets for ${pred.size} predictions`);
  const t = Float64Array.from(target); // targets stay in double, as the loss always read them
  const out = scalar(K().mseLoss(pred.data, t, pred.size) / pred.size);
  return record(out, [pred], () => K().mseBackward(gradOf(pred), pred.data, t, pred.size, (2 * out.grad![0]) / pred.size));
}
