/** Synthetic point clouds (tests, benchmarks, sanity checks) of known intrinsic dimension, isometrically embedded in D dimensions. */
import type { Points } from './knn.js';
import { Rng } from '../engine/random.js';

/** A random D x d matrix with orthonormal columns (Gram-Schmidt). */
function orthonormal(D: number, d: number, rng: Rng): Float64Array {
  const Q = new Float64Array(D * d);
  for (let c = 0; c < d; c++) {
    const v = new Float64Array(D);
    for (let i = 0; i < D; i++) v[i] = rng.normal();
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let i = 0; i < D; i++) dot += v[i] * Q[i * d + p];
      for (let i = 0; i < D; i++) v[i] -= dot * Q[i * d + p];
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (let i = 0; i < D; i++) Q[i * d + c] = v[i] / norm;
  }
  return Q;
}

function embed(Z: Float64Array, n: number, d: number, D: number, rng: Rng): Points {
  const Q = orthonormal(D, d, rng), X = new Float64Array(n * D);
  for (let i = 0; i < n; i++) for (let r = 0; r < D; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += Q[r * d + c] * Z[i * d + c];
    X[i * D + r] = s;
  }
  return { data: X, n, dim: D };
}

export function gaussian(n: number, d: number, D: number, seed = 1): Points {
  const rng = new Rng(seed), Z = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) Z[i] = rng.normal();
  return embed(Z, n, d, D, rng);
}

/** Uniform on the unit sphere S^d (in R^{d+1}), embedded in D. */
export function sphere(n: number, d: number, D: number, seed = 2): Points {
  const rng = new Rng(seed), Z = new Float64Array(n * (d + 1));
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c <= d; c++) { const x = rng.normal(); Z[i * (d + 1) + c] = x; s += x * x; }
    for (let c = 0; c <= d; c++) Z[i * (d + 1) + c] /= Math.sqrt(s);
  }
  return embed(Z, n, d + 1, D, rng);
}

/** scikit-learn's make_swiss_roll (2-d sheet rolled in 3-d), embedded in D. */
export function swissRoll(n: number, D: number, seed = 3): Points {
  const rng = new Rng(seed), Z = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const t = 1.5 * Math.PI * (1 + 2 * rng.next());
    Z[i * 3] = t * Math.cos(t);
    Z[i * 3 + 1] = 21 * rng.next();
    Z[i * 3 + 2] = t * Math.sin(t);
  }
  return embed(Z, n, 3, D, rng);
}
