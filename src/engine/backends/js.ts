/**
 * The pure TypeScript backend: the reference every native kernel is tested against, and the
 * fallback when the addon cannot load. Written for clarity first; loops are ordered so that the
 * innermost one runs over contiguous memory. Works on Float32Array and Float64Array alike.
 */
import { BinaryOp, ReduceOp, UnaryOp, type Buf, type Kernels } from '../kernels.js';
import { Rng } from '../random.js';
import { floatToHalf } from '../../io/safetensors.js';
import { bf16Bits } from './dnnl.js';

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327;
const SQRT_2_OVER_PI = 0.7978845608028654;
const F32_MAX = 3.4028234663852886e38;

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit): float32-exact in practice. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

function gemm(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
  A: Buf, aOff: number, lda: number, B: Buf, bOff: number, ldb: number,
  beta: number, C: Buf, cOff: number, ldc: number): void {
  for (let i = 0; i < M; i++) {
    const c = cOff + i * ldc;
    if (beta === 0) for (let j = 0; j < N; j++) C[c + j] = 0;
    else if (beta !== 1) for (let j = 0; j < N; j++) C[c + j] *= beta;
  }
  if (!tB) {
    // C[i, :] += alpha * A[i, k] * B[k, :]  (B rows contiguous)
    for (let i = 0; i < M; i++) {
      const c = cOff + i * ldc;
      for (let k = 0; k < K; k++) {
        const a = alpha * (tA ? A[aOff + k * lda + i] : A[aOff + i * lda + k]);
        if (a === 0) continue;
        const b = bOff + k * ldb;
        for (let j = 0; j < N; j++) C[c + j] += a * B[b + j];
      }
    }
  } else {
    // C[i, j] += alpha * dot(A[i, :], B[j, :])  (B^T: rows of B are contiguous)
    for (let i = 0; i < M; i++) {
      const c = cOff + i * ldc;
      for (let j = 0; j < N; j++) {
        const b = bOff + j * ldb;
        let s = 0;
        if (tA) for (let k = 0; k < K; k++) s += A[aOff + k * lda + i] * B[b + k];
        else { const a = aOff + i * lda; for (let k = 0; k < K; k++) s += A[a + k] * B[b + k]; }
        C[c + j] += alpha * s;
      }
    }
  }
}

/** Calls fn(offset of each operand) for every element, iterating `shape` in row-major order. */
function forEachStrided(shape: Int32Array, strides: Int32Array[], fn: (offsets: number[], linear: number) => void): void {
  const nd = shape.length;
  let total = 1;
  for (let d = 0; d < nd; d++) total *= shape[d];
  const idx = new Array<number>(nd).fill(0);
  const off = strides.map(() => 0);
  for (let lin = 0; lin < total; lin++) {
    fn(off, lin);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < strides.length; s++) off[s] += strides[s][d];
      if (idx[d] < shape[d]) break;
      for (let s = 0; s < strides.length; s++) off[s] -= strides[s][d] * shape[d];
      idx[d] = 0;
    }
  }
}

function unaryForward(op: UnaryOp, x: number): number {
  switch (op) {
    case UnaryOp.Gelu: return 0.5 * x * (1 + erf(x * INV_SQRT2));
    case UnaryOp.GeluTanh: return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case UnaryOp.Relu: return x > 0 ? x : 0;
    case UnaryOp.Silu: return x / (1 + Math.exp(-x));
    case UnaryOp.Tanh: return Math.tanh(x);
  }
}

function unaryDerivative(op: UnaryOp, x: number): number {
  switch (op) {
    case UnaryOp.Gelu: return 0.5 * (1 + erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case UnaryOp.GeluTanh: {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    }
    case UnaryOp.Relu: return x > 0 ? 1 : 0;
    case UnaryOp.Silu: { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); }
    case UnaryOp.Tanh: { const t = Math.tanh(x); return 1 - t * t; }
  }
}

/** An IEEE half (binary16) bit pattern as a number, exactly. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** A bfloat16 bit pattern as a number, exactly (the top half of a float32). */
const bf16View = new Float32Array(1), bf16Word = new Uint32Array(bf16View.buffer);
export function bf16ToNumber(h: number): number {
  bf16Word[0] = h << 16;
  return bf16View[0];
}

function widen(dst: Buf, dOff: number, src: Uint16Array, sOff: number, n: number, bf16: boolean): void {
  if (bf16) for (let i = 0; i < n; i++) dst[dOff + i] = bf16ToNumber(src[sOff + i]);
  else for (let i = 0; i < n; i++) dst[dOff + i] = halfToNumber(src[sOff + i]);
}

function logSumExp(x: Buf, off: number, n: number): number {
  let mx = -Infinity;
  for (let j = 0; j < n; j++) mx = Math.max(mx, x[off + j]);
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(x[off + j] - mx);
  return mx + Math.log(s);
}

export const jsKernels: Kernels = {
  name: 'js',
  gemm,

  gemmBatched(tA, tB, M, N, K, alpha, A, aOff, lda, aS1, aS2, B, bOff, ldb, bS1, bS2, beta, C, cOff, ldc, cS1, cS2, n1, n2) {
    for (let i = 0; i < n1; i++)
      for (let j = 0; j < n2; j++)
        gemm(tA, tB, M, N, K, alpha, A, aOff + i * aS1 + j * aS2, lda, B, bOff + i * bS1 + j * bS2, ldb,
          beta, C, cOff + i * cS1 + j * cS2, ldc);
  },

  loraPass(src, rows, cols, dst, joinDots, M, r, alphaDot, dots, w, alphaOuter, outer) {
    const ld = cols + (joinDots ? r : 0);
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      if (dst) for (let c = 0; c < cols; c++) dst[i * ld + c] = bf16Bits(src[o + c]);
      if (dots && M) {
        for (let j = 0; j < r; j++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += src[o + c] * M[j * cols + c];
          dots[i * r + j] = alphaDot * s;
          if (joinDots && dst) dst[i * ld + cols + j] = bf16Bits(dots[i * r + j]);
        }
      }
    }
    if (outer && w) {
      for (let j = 0; j < r; j++) {
        for (let c = 0; c < cols; c++) {
          let s = 0;
          for (let i = 0; i < rows; i++) s += w[i * r + j] * src[i * cols + c];
          outer[j * cols + c] += alphaOuter * s;
        }
      }
    }
  },

  binary(op, out, a, b, shape, aStrides, bStrides) {
    forEachStrided(shape, [aStrides, bStrides], ([ia, ib], o) => {
      out[o] = op === BinaryOp.Add ? a[ia] + b[ib] : op === BinaryOp.Sub ? a[ia] - b[ib] : a[ia] * b[ib];
    });
  },

  accumulate(dst, src, mul, alpha, shape, dStrides, sStrides, mStrides) {
    forEachStrided(shape, [dStrides, sStrides, mStrides], ([id, is, im]) => {
      dst[id] += alpha * src[is] * (mul ? mul[im] : 1);
    });
  },

  unary(op, out, inp, n) {
    for (let i = 0; i < n; i++) out[i] = unaryForward(op, inp[i]);
  },

  unaryBackward(op, dinp, inp, dout, n, accumulate) {
    for (let i = 0; i < n; i++) dinp[i] = (accumulate ? dinp[i] : 0) + dout[i] * unaryDerivative(op, inp[i]);
  },

  softmax(out, inp, rows, cols, scale, mask, maskGroup, causalQ) {
    for (let r = 0; r < rows; r++) {
      const x = r * cols, m = mask ? Math.floor(r / maskGroup) * cols : 0;
      const limit = causalQ > 0 ? (r % causalQ) + (cols - causalQ) + 1 : cols;
      let mx = -F32_MAX;
      for (let j = 0; j < cols; j++) {
        const v = j < limit ? scale * inp[x + j] + (mask ? mask[m + j] : 0) : -F32_MAX;
        out[x + j] = v;
        if (v > mx) mx = v;
      }
      let s = 0;
      for (let j = 0; j < cols; j++) { const e = Math.exp(out[x + j] - mx); out[x + j] = e; s += e; }
      for (let j = 0; j < cols; j++) out[x + j] /= s;
    }
  },

  softmaxBackward(dinp, out, dout, rows, cols, scale, accumulate) {
    for (let r = 0; r < rows; r++) {
      const x = r * cols;
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += out[x + j] * dout[x + j];
      for (let j = 0; j < cols; j++) dinp[x + j] = (accumulate ? dinp[x + j] : 0) + scale * out[x + j] * (dout[x + j] - dot);
    }
  },

  layernorm(out, sum, mean, rstd, inp, residual, w, b, N, C, eps) {
    for (let i = 0; i < N; i++) {
      const o = i * C;
      for (let j = 0; j < C; j++) sum[o + j] = inp[o + j] + (residual ? residual[o + j] : 0);
      let m = 0;
      for (let j = 0; j < C; j++) m += sum[o + j];
      m /= C;
      let v = 0;
      for (let j = 0; j < C; j++) { const d = sum[o + j] - m; v += d * d; }
      const rs = 1 / Math.sqrt(v / C + eps);
      for (let j = 0; j < C; j++) out[o + j] = (sum[o + j] - m) * rs * (w ? w[j] : 1) + (b ? b[j] : 0);
      mean[i] = m;
      rstd[i] = rs;
    }
  },

  layernormBackward(dinp, dw, db, dout, x, w, mean, rstd, N, C, accumulate) {
    for (let i = 0; i < N; i++) {
      const o = i * C, m = mean[i], rs = rstd[i];
      let dm = 0, dnm = 0;
      for (let j = 0; j < C; j++) {
        const dn = dout[o + j] * (w ? w[j] : 1);
        dm += dn;
        dnm += dn * (x[o + j] - m) * rs;
      }
      dm /= C;
      dnm /= C;
      for (let j = 0; j < C; j++) {
        const n = (x[o + j] - m) * rs;
        if (db) db[j] += dout[o + j];
        if (dw) dw[j] += n * dout[o + j];
        if (dinp) dinp[o + j] = (accumulate ? dinp[o + j] : 0) + (dout[o + j] * (w ? w[j] : 1) - dm - n * dnm) * rs;
      }
    }
  },

  rmsnorm(out, rstd, inp, w, N, C, eps) {
    for (let i = 0; i < N; i++) {
      const o = i * C;
      let ss = 0;
      for (let j = 0; j < C; j++) ss += inp[o + j] * inp[o + j];
      const rs = 1 / Math.sqrt(ss / C + eps);
      for (let j = 0; j < C; j++) out[o + j] = inp[o + j] * rs * w[j];
      rstd[i] = rs;
    }
  },

  rmsnormBackward(dinp, dw, dout, inp, w, rstd, N, C) {
    for (let i = 0; i < N; i++) {
      const o = i * C, rs = rstd[i];
      let dot = 0;
      for (let j = 0; j < C; j++) dot += dout[o + j] * w[j] * inp[o + j];
      dot /= C;
      for (let j = 0; j < C; j++) {
        if (dw) dw[j] += dout[o + j] * inp[o + j] * rs;
        if (dinp) dinp[o + j] += rs * dout[o + j] * w[j] - inp[o + j] * rs * rs * rs * dot;
      }
    }
  },

  embedding(out, table, ids, n, C) {
    for (let i = 0; i < n; i++) out.set(table.subarray(ids[i] * C, ids[i] * C + C), i * C);
  },

  embeddingBackward(dtable, dout, ids, n, C) {
    for (let i = 0; i < n; i++) {
      const t = ids[i] * C;
      for (let j = 0; j < C; j++) dtable[t + j] += dout[i * C + j];
    }
  },

  gatherLast(out, src, idx, outer, srcLast, idxLast, idxOuter) {
    for (let o = 0; o < outer; o++) {
      const ix = (o % idxOuter) * idxLast;
      for (let j = 0; j < idxLast; j++) out[o * idxLast + j] = src[o * srcLast + idx[ix + j]];
    }
  },

  gatherLastBackward(dsrc, dout, idx, outer, srcLast, idxLast, idxOuter) {
    for (let o = 0; o < outer; o++) {
      const ix = (o % idxOuter) * idxLast;
      for (let j = 0; j < idxLast; j++) dsrc[o * srcLast + idx[ix + j]] += dout[o * idxLast + j];
    }
  },

  rope(out, inp, cos, sin, B, T, H, d, sign, accumulate) {
    const half = d / 2;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++) {
          const base = ((b * T + t) * H + h) * d, c = t * d;
          for (let j = 0; j < half; j++) {
            const x1 = inp[base + j], x2 = inp[base + j + half];
            const y1 = x1 * cos[c + j] - sign * x2 * sin[c + j];
            const y2 = x2 * cos[c + j + half] + sign * x1 * sin[c + j + half];
            if (accumulate) { out[base + j] += y1; out[base + j + half] += y2; }
            else { out[base + j] = y1; out[base + j + half] = y2; }
          }
        }
  },

  centrePoints(c32, sq, X32, X64, n, dim) {
    const data = X32 ?? X64;
    if (!data || (X32 && X64)) throw new Error('centrePoints: give exactly one of X32 and X64');
    const pow2Near = (x: number): number => 2 ** Math.round(Math.log2(x));
    let maxAbs = 0;
    for (let i = 0; i < n * dim; i++) { const a = Math.abs(data[i]); if (a > maxAbs) maxAbs = a; }
    const s1 = maxAbs > 0 ? pow2Near(maxAbs) : 1;
    const mean = new Float64Array(dim);
    for (let i = 0; i < n; i++) for (let j = 0, o = i * dim; j < dim; j++) mean[j] += data[o + j] / s1;
    for (let j = 0; j < dim; j++) mean[j] /= n;
    let maxC = 0;
    for (let i = 0; i < n; i++) for (let j = 0, o = i * dim; j < dim; j++) { const a = Math.abs(data[o + j] / s1 - mean[j]); if (a > maxC) maxC = a; }
    const s2 = maxC > 0 ? pow2Near(maxC) : 1;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0, o = i * dim; j < dim; j++) {
        const v = (data[o + j] / s1 - mean[j]) / s2;
        c32[o + j] = v;
        s += v * v;
      }
      sq[i] = s;
    }
    return s1 * s2;
  },

  knnCandidates(outIdx, outD2, X, sq, n, dim, k, block) {
    outD2.fill(Infinity, 0, n * k);
    outIdx.fill(0x7fffffff, 0, n * k);
    const offer = (i: number, d: number, j: number): void => {
      const o = i * k;
      const before = (q: number): boolean => d < outD2[o + q] || (d === outD2[o + q] && j < outIdx[o + q]);
      if (!before(k - 1)) return;
      let q = k - 1; // insertion into the sorted list, ties to the lower index
      while (q > 0 && before(q - 1)) { outD2[o + q] = outD2[o + q - 1]; outIdx[o + q] = outIdx[o + q - 1]; q--; }
      outD2[o + q] = d;
      outIdx[o + q] = j;
    };
    const B = Math.max(1, Math.min(block, n));
    for (let s = 0; s < n; s += B) {
      const rows = Math.min(B, n - s), cols = n - s, G = new Float32Array(rows * cols);
      gemm(false, true, rows, cols, dim, 1, X, s * dim, dim, X, s * dim, dim, 0, G, 0, cols);
      for (let r = 0; r < rows; r++) {
        for (let c = r + 1; c < cols; c++) {
          const i = s + r, j = s + c, d = Math.fround(sq[i] + sq[j] - 2 * G[r * cols + c]);
          offer(i, d, j);
          offer(j, d, i);
        }
      }
    }
  },

  knnCandidatesBf16(outIdx, outD2, X, sq, n, dim, k, block) {
    // the points rounded to bf16 (nearest even), then the float32 sweep: products of bf16 values are
    // exact, and the sums at least as accurate as float32's, so the bf16 bound of src/id/knn.ts holds
    const Xb = new Float32Array(n * dim);
    for (let q = 0; q < n * dim; q++) Xb[q] = bf16ToNumber(bf16Bits(X[q]));
    jsKernels.knnCandidates(outIdx, outD2, Xb, sq, n, dim, k, block);
  },

  sqDistPairs(out, X32, X64, dim, a, b, m, scale) {
    const X = X32 ?? X64;
    if (!X || (X32 && X64)) throw new Error('sqDistPairs: give exactly one of X32 and X64');
    for (let q = 0; q < m; q++) {
      let s = 0;
      for (let t = 0; t < dim; t++) { const v = X[a[q] * dim + t] * scale - X[b[q] * dim + t] * scale; s += v * v; }
      out[q] = s;
    }
  },

  floatToHalf(dst, src, n) {
    for (let i = 0; i < n; i++) dst[i] = floatToHalf(src[i]);
  },

  dropoutMask(mask, n, p, keep, state) {
    const rng = new Rng(0);
    rng.setState([state, null]);
    for (let i = 0; i < n; i++) mask[i] = rng.next() < p ? 0 : keep;
    return rng.getState()[0];
  },

  adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2) {
    const step = lr / bc1, sbc2 = Math.sqrt(bc2), decay = 1 - lr * weightDecay;
    for (let i = 0; i < n; i++) {
      p[i] *= decay;
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      p[i] -= step * m[i] / (Math.sqrt(v[i]) / sbc2 + eps);
    }
  },

  fill(x, off, n, value) {
    x.fill(value, off, off + n);
  },

  copy2d(rows, cols, src, sOff, sLd, dst, dOff, dLd, accumulate) {
    for (let r = 0; r < rows; r++) {
      const s = sOff + r * sLd, d = dOff + r * dLd;
      if (accumulate) for (let j = 0; j < cols; j++) dst[d + j] += src[s + j];
      else dst.set(src.subarray(s, s + cols), d);
    }
  },

  reduce(op, x, off, n, init) {
    let s = init;
    switch (op) {
      case ReduceOp.Sum: for (let i = off; i < off + n; i++) s += x[i]; return s;
      case ReduceOp.SumSquares: for (let i = off; i < off + n; i++) s += x[i] * x[i]; return s;
      case ReduceOp.Max: for (let i = off; i < off + n; i++) if (x[i] > s) s = x[i]; return s;
      case ReduceOp.FirstNonFinite: for (let i = off; i < off + n; i++) if (!Number.isFinite(x[i])) return i - off; return -1;
    }
  },

  scal(x, off, n, alpha) {
    for (let i = off; i < off + n; i++) x[i] *= alpha;
  },

  axpy(n, alpha, x, xOff, y, yOff) {
    for (let i = 0; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
  },

  crossEntropy(probs, logits, labels, N, C, ignoreIndex) {
    let total = 0;
    for (let i = 0; i < N; i++) {
      const y = labels[i];
      if (y === ignoreIndex) continue;
      const p = probs[i * C + y];
      total += p > 1e-30 ? -Math.log(p) : logSumExp(logits, i * C, C) - logits[i * C + y];
    }
    return total;
  },

  crossEntropyBackward(dx, probs, labels, N, C, g, ignoreIndex) {
    for (let i = 0; i < N; i++) {
      const y = labels[i];
      if (y === ignoreIndex) continue;
      for (let j = 0; j < C; j++) dx[i * C + j] += g * probs[i * C + j];
      dx[i * C + y] -= g;
    }
  },

  mseLoss(pred, target, n) {
    let s = 0;
    for (let i = 0; i < n; i++) { const d = pred[i] - target[i]; s += d * d; }
    return s;
  },

  mseBackward(dx, pred, target, n, g) {
    for (let i = 0; i < n; i++) dx[i] += g * (pred[i] - target[i]);
  },

  adaloraImportance(p, g, ipt, unc, n, beta1, beta2) {
    for (let i = 0; i < n; i++) {
      const s = Math.abs(p[i] * g[i]);
      ipt[i] = beta1 * ipt[i] + (1 - beta1) * s;
      unc[i] = beta2 * unc[i] + (1 - beta2) * Math.abs(s - ipt[i]);
    }
  },

  soraGates(g, grad, m, v, n, stepSize, lr, weightDecay, lambda) {
    const b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (let i = 0; i < n; i++) {
      const gr = grad[i];
      m[i] = b1 * m[i] + (1 - b1) * gr;
      v[i] = b2 * v[i] + (1 - b2) * gr * gr;
      let upd = -stepSize * (m[i] / (Math.sqrt(v[i]) + eps));
      if (weightDecay > 0) upd += -lr * weightDecay * g[i];
      g[i] += upd;
    }
    if (lambda > 0) for (let i = 0; i < n; i++) {
      const x = g[i];
      g[i] = x > lambda ? x - lambda : x < -lambda ? x + lambda : 0;
    }
  },

  addLowRank(W, B, A, outF, inF, r, alpha) {
    for (let i = 0; i < outF; i++) for (let j = 0; j < inF; j++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += B[i * r + k] * A[k * inF + j];
      W[i * inF + j] += alpha * d;
    }
  },

  halfToFloat: widen,

  embeddingHalf(out, table, ids, n, C, bf16) {
    for (let i = 0; i < n; i++) widen(out, i * C, table, ids[i] * C, C, bf16);
  },
};
