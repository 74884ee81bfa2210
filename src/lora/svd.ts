/**
 * Top-r singular triplets of a dense matrix W [m, n] (float64 arithmetic): subspace iteration with
 * re-orthonormalisation, then the exact SVD of the small projected problem through Jacobi
 * eigen-decomposition. Used by PiSSA initialisation, where only the leading r triplets matter.
 */
import type { Rng } from '../engine/random.js';

/**
 * Orthonormalises the k columns of X [rows, k] in place: classical Gram-Schmidt run twice per column
 * (CGS2, as accurate as modified Gram-Schmidt), its loops along the rows, so a tall X (a 30k-word
 * vocabulary) streams through memory instead of being read a column at a time. A column that
 * vanishes stays zero.
 */
function orthonormalise(X: Float64Array, rows: number, k: number): void {
  const dots = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    for (let pass = 0; pass < 2 && c > 0; pass++) {
      dots.fill(0, 0, c);
      for (let i = 0, o = 0; i < rows; i++, o += k) { const x = X[o + c]; for (let p = 0; p < c; p++) dots[p] += x * X[o + p]; }
      for (let i = 0, o = 0; i < rows; i++, o += k) { let s = 0; for (let p = 0; p < c; p++) s += dots[p] * X[o + p]; X[o + c] -= s; }
    }
    let norm = 0;
    for (let i = 0, o = c; i < rows; i++, o += k) norm += X[o] * X[o];
    norm = Math.sqrt(norm) || 1;
    for (let i = 0, o = c; i < rows; i++, o += k) X[o] /= norm;
  }
}

/** Eigen-decomposition of a symmetric k x k matrix (cyclic Jacobi); returns values and vectors (columns). */
export function symmetricEigen(Ain: Float64Array, k: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(Ain), V = new Float64Array(k * k);
  for (let i = 0; i < k; i++) V[i * k + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += A[p * k + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) {
      const apq = A[p * k + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (A[q * k + q] - A[p * k + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let i = 0; i < k; i++) {
        const aip = A[i * k + p], aiq = A[i * k + q];
        A[i * k + p] = c * aip - s * aiq; A[i * k + q] = s * aip + c * aiq;
      }
      for (let i = 0; i < k; i++) {
        const api = A[p * k + i], aqi = A[q * k + i];
        A[p * k + i] = c * api - s * aqi; A[q * k + i] = s * api + c * aqi;
      }
      for (let i = 0; i < k; i++) {
        const vip = V[i * k + p], viq = V[i * k + q];
        V[i * k + p] = c * vip - s * viq; V[i * k + q] = s * vip + c * viq;
      }
    }
  }
  return { values: Float64Array.from({ length: k }, (_, i) => A[i * k + i]), vectors: V };
}

/**
 * A matrix W [m, n] seen only through its products with k-column blocks (row-major [n, k] / [m, k],
 * float64): a dense array, or a sparse one (train/ppmi.ts), share one subspace iteration.
 */
export interface LinearOperator {
  m: number; n: number;
  /** Z [m, k] = W Q for Q [n, k] (Z is overwritten) */
  times(Q: Float64Array, k: number, Z: Float64Array): void;
  /** Q [n, k] = W^T Z for Z [m, k] (Q is overwritten) */
  timesT(Z: Float64Array, k: number, Q: Float64Array): void;
}

/** A dense row-major W [m, n] as an operator (zeros skipped). */
export function denseOperator(W: ArrayLike<number>, m: number, n: number): LinearOperator {
  return {
    m, n,
    times: (Q, k, Z) => {
      Z.fill(0);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { const w = W[i * n + j]; if (w !== 0) for (let c = 0; c < k; c++) Z[i * k + c] += w * Q[j * k + c]; }
    },
    timesT: (Z, k, Q) => {
      Q.fill(0);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { const w = W[i * n + j]; if (w !== 0) for (let c = 0; c < k; c++) Q[j * k + c] += w * Z[i * k + c]; }
    },
  };
}

/** U [m, r], S [r] (descending), V [n, r] with W ~ U diag(S) V^T on the leading r directions. */
export function topSingular(W: ArrayLike<number>, m: number, n: number, r: number, rng: Rng, iterations = 12): { U: Float64Array; S: Float64Array; V: Float64Array } {
  return topSingularOf(denseOperator(W, m, n), r, rng, iterations);
}

/**
 * topSingular of an operator: subspace iteration on r + 8 columns, then the small problem exactly.
 * onProgress(done, total) follows the iterations (long ones: a 30k-row sparse matrix takes minutes).
 */
export function topSingularOf(W: LinearOperator, r: number, rng: Rng, iterations = 12, onProgress?: (done: number, total: number) => void): { U: Float64Array; S: Float64Array; V: Float64Array } {
  const { m, n } = W;
  if (r > Math.min(m, n)) throw new Error(`rank ${r} exceeds the matrix size ${m} x ${n}`);
  const k = Math.min(Math.min(m, n), r + 8);
  const Q = new Float64Array(n * k), Z = new Float64Array(m * k);
  for (let i = 0; i < Q.length; i++) Q[i] = rng.normal();
  orthonormalise(Q, n, k);
  for (let it = 0; it < iterations; it++) {
    W.times(Q, k, Z);
    orthonormalise(Z, m, k);
    W.timesT(Z, k, Q);
    orthonormalise(Q, n, k);
    onProgress?.(it + 1, iterations + 1);
  }
  W.times(Q, k, Z); // Z = W Q: its SVD gives the triplets
  // G = Z^T Z [k, k], row by row (upper triangle, then mirrored)
  const G = new Float64Array(k * k);
  for (let i = 0, o = 0; i < m; i++, o += k) for (let a = 0; a < k; a++) { const za = Z[o + a]; if (za !== 0) for (let b = a; b < k; b++) G[a * k + b] += za * Z[o + b]; }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) G[a * k + b] = G[b * k + a];
  const { values, vectors } = symmetricEigen(G, k);
  const order = [...values.keys()].sort((a, b) => values[b] - values[a]).slice(0, r);
  const S = Float64Array.from(order, (e) => Math.sqrt(Math.max(values[e], 0)));
  // E [k, r]: the chosen eigenvectors as columns; V = Q E, U = Z E / S
  const E = new Float64Array(k * r);
  order.forEach((e, c) => { for (let a = 0; a < k; a++) E[a * r + c] = vectors[a * k + e]; });
  const project = (X: Float64Array, rows: number, out: Float64Array, divide: boolean): void => {
    for (let i = 0, o = 0; i < rows; i++, o += k) {
      const row = out.subarray(i * r, i * r + r);
      for (let a = 0; a < k; a++) { const x = X[o + a]; if (x !== 0) for (let c = 0; c < r; c++) row[c] += x * E[a * r + c]; }
      if (divide) for (let c = 0; c < r; c++) row[c] = S[c] > 0 ? row[c] / S[c] : 0;
    }
  };
  const U = new Float64Array(m * r), V = new Float64Array(n * r);
  project(Q, n, V, false);
  project(Z, m, U, true);
  onProgress?.(iterations + 1, iterations + 1);
  return { U, S, V };
}
