/**
 * Top-r singular triplets of a dense matrix W [m, n] (float64 arithmetic): subspace iteration with
 * re-orthonormalisation, then the exact SVD of the small projected problem through Jacobi
 * eigen-decomposition. Used by PiSSA initialisation, where only the leading r triplets matter.
 */
import type { Rng } from '../engine/random.js';

/** Modified Gram-Schmidt on the k columns of X [rows, k], in place. */
function orthonormalise(X: Float64Array, rows: number, k: number): void {
  for (let c = 0; c < k; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += X[i * k + c] * X[i * k + p];
      for (let i = 0; i < rows; i++) X[i * k + c] -= dot * X[i * k + p];
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += X[i * k + c] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < rows; i++) X[i * k + c] /= norm;
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

/** U [m, r], S [r] (descending), V [n, r] with W ~ U diag(S) V^T on the leading r directions. */
export function topSingular(W: ArrayLike<number>, m: number, n: number, r: number, rng: Rng, iterations = 12): { U: Float64Array; S: Float64Array; V: Float64Array } {
  if (r > Math.min(m, n)) throw new Error(`rank ${r} exceeds the matrix size ${m} x ${n}`);
  const k = Math.min(Math.min(m, n), r + 8);
  const Q = new Float64Array(n * k), Z = new Float64Array(m * k);
  for (let i = 0; i < Q.length; i++) Q[i] = rng.normal();
  orthonormalise(Q, n, k);
  const mulW = (): void => { // Z = W Q
    Z.fill(0);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { const w = W[i * n + j]; if (w !== 0) for (let c = 0; c < k; c++) Z[i * k + c] += w * Q[j * k + c]; }
  };
  for (let it = 0; it < iterations; it++) {
    mulW();
    orthonormalise(Z, m, k);
    Q.fill(0); // Q = W^T Z
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { const w = W[i * n + j]; if (w !== 0) for (let c = 0; c < k; c++) Q[j * k + c] += w * Z[i * k + c]; }
    orthonormalise(Q, n, k);
  }
  mulW(); // Z = W Q: its SVD gives the triplets
  const G = new Float64Array(k * k);
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) { let s = 0; for (let i = 0; i < m; i++) s += Z[i * k + a] * Z[i * k + b]; G[a * k + b] = s; }
  const { values, vectors } = symmetricEigen(G, k);
  const order = [...values.keys()].sort((a, b) => values[b] - values[a]).slice(0, r);
  const U = new Float64Array(m * r), S = new Float64Array(r), V = new Float64Array(n * r);
  order.forEach((e, c) => {
    S[c] = Math.sqrt(Math.max(values[e], 0));
    for (let j = 0; j < n; j++) { let s = 0; for (let a = 0; a < k; a++) s += Q[j * k + a] * vectors[a * k + e]; V[j * r + c] = s; }
    for (let i = 0; i < m; i++) { let s = 0; for (let a = 0; a < k; a++) s += Z[i * k + a] * vectors[a * k + e]; U[i * r + c] = S[c] > 0 ? s / S[c] : 0; }
  });
  return { U, S, V };
}
