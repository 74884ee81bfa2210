/**
 * Exact first and second nearest neighbours of every point.
 *
 * Distances come from blocked matrix products (|x|^2 + |y|^2 - 2 x.y, an OpenBLAS sgemm per block of
 * rows), so memory is O(block x N), never O(N^2). The squared-norm trick loses digits when points sit
 * far from the origin, so the points are centred first (in float64), and the few best candidates
 * of every point are re-measured exactly in float64 before the two nearest are chosen. The centred
 * points are also rescaled to unit size (see centre), so the result does not depend on the data's units.
 */
import { kernels } from '../engine/backend.js';

/** N points of dimension `dim`, row-major. */
export interface Points { data: Float32Array | Float64Array; n: number; dim: number }

export interface TwoNeighbours {
  /** distance to the nearest and second-nearest other point */
  r1: Float64Array;
  r2: Float64Array;
  i1: Int32Array;
  i2: Int32Array;
}

export interface KnnOptions {
  /** rows per distance block (default: about 32 MB of float32 per block) */
  blockRows?: number;
  /** candidates re-measured exactly per point (default 4) */
  candidates?: number;
  /** called after each block with the number of points done */
  onProgress?: (done: number, total: number) => void;
}

export function checkPoints(p: Points, what = 'points'): void {
  if (!Number.isInteger(p.n) || !Number.isInteger(p.dim) || p.n < 0 || p.dim < 1 || p.data.length !== p.n * p.dim) {
    throw new Error(`${what}: ${p.data.length} values do not form ${p.n} points of dimension ${p.dim}`);
  }
  for (let i = 0; i < p.data.length; i++) {
    if (!Number.isFinite(p.data[i])) {
      throw new Error(`${what}: value ${p.data[i]} at point ${Math.floor(i / p.dim)}, coordinate ${i % p.dim}; remove or fix non-finite values first`);
    }
  }
}

/** The power of two nearest to x > 0: dividing by it is exact in binary floating point. */
const pow2Near = (x: number): number => 2 ** Math.round(Math.log2(x));

/**
 * Centred points in units where the largest coordinate is about 1, as float64 and float32, and that
 * unit. Distances then do not depend on the units of the data: squared distances of points at 1e-25
 * underflow float32 (and 1e-22 lose most of their digits to subnormals), at 1e20 they overflow it
 * and at 1e200 float64 too ("ratio NaN"). Both divisions are by powers of two, so for data in the
 * ordinary range every product, candidate and distance is the unscaled one times a power of two,
 * bit for bit: mu is unchanged and the distances are scaled back exactly.
 */
function centre(p: Points): { c64: Float64Array; c32: Float32Array; unit: number } {
  const { n, dim, data } = p;
  let maxAbs = 0;
  for (let i = 0; i < data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(data[i]));
  // first near the largest value, so that the sum for the mean cannot overflow (n values of 1e307)
  const s1 = maxAbs > 0 ? pow2Near(maxAbs) : 1;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += data[i * dim + j] / s1;
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const c64 = new Float64Array(n * dim);
  let maxC = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) {
    const v = data[i * dim + j] / s1 - mean[j];
    c64[i * dim + j] = v;
    maxC = Math.max(maxC, Math.abs(v));
  }
  // then near the spread, so that points far from the origin (1e6 + unit noise) get O(1) coordinates too
  const s2 = maxC > 0 ? pow2Near(maxC) : 1;
  if (s2 !== 1) for (let i = 0; i < c64.length; i++) c64[i] /= s2;
  return { c64, c32: Float32Array.from(c64), unit: s1 * s2 };
}

export function twoNearest(p: Points, o: KnnOptions = {}): TwoNeighbours {
  const { n, dim } = p;
  if (n < 3) throw new Error(`two nearest neighbours need at least 3 distinct points, got ${n}`);
  const k = Math.min(o.candidates ?? 4, n - 1);
  const block = Math.max(1, Math.min(n, o.blockRows ?? Math.floor((1 << 23) / n)));
  const { c64, c32, unit } = centre(p);
  const sq = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += c64[i * dim + j] * c64[i * dim + j];
    sq[i] = s;
  }
  const K = kernels();
  const G = new Float32Array(block * n), candD2 = new Float32Array(block * k), candIdx = new Int32Array(block * k);
  const r1 = new Float64Array(n), r2 = new Float64Array(n), i1 = new Int32Array(n), i2 = new Int32Array(n);
  for (let s = 0; s < n; s += block) {
    const rows = Math.min(block, n - s);
    K.gemm(false, true, rows, n, dim, 1, c32, s * dim, dim, c32, 0, dim, 0, G, 0, n);
    K.knnSelect(candIdx, candD2, G, sq.subarray(s, s + rows), sq, rows, n, s, k);
    for (let r = 0; r < rows; r++) {
      const i = s + r;
      let b1 = Infinity, b2 = Infinity, j1 = -1, j2 = -1;
      for (let q = 0; q < k; q++) {
        const j = candIdx[r * k + q];
        let d = 0;
        for (let t = 0; t < dim; t++) { const x = c64[i * dim + t] - c64[j * dim + t]; d += x * x; }
        if (d < b1 || (d === b1 && j < j1)) { b2 = b1; j2 = j1; b1 = d; j1 = j; }
        else if (d < b2 || (d === b2 && j < j2)) { b2 = d; j2 = j; }
      }
      r1[i] = Math.sqrt(b1) * unit; r2[i] = Math.sqrt(b2) * unit; i1[i] = j1; i2[i] = j2;
    }
    o.onProgress?.(s + rows, n);
  }
  return { r1, r2, i1, i2 };
}

/** 64-bit-ish hash of a row's values (two 32-bit FNV-1a lanes over the float bits). */
function rowHash(data: Float32Array | Float64Array, off: number, dim: number, bits: Uint32Array): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193 ^ dim;
  const per = data instanceof Float64Array ? 2 : 1;
  for (let j = 0; j < dim * per; j++) {
    const w = bits[off * per + j];
    h1 = Math.imul(h1 ^ w, 0x01000193);
    h2 = Math.imul(h2 ^ (w >>> 7) ^ (w << 11), 0x5bd1e995);
  }
  return `${h1 >>> 0}:${h2 >>> 0}`;
}

/** Removes exactly repeated points (a zero nearest distance makes mu undefined); keeps first occurrences. */
export function dedupe(p: Points): { points: Points; duplicates: number; kept: Int32Array } {
  const { n, dim, data } = p;
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length * (data instanceof Float64Array ? 2 : 1));
  const seen = new Map<string, number[]>();
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    const h = rowHash(data, i * dim, dim, bits);
    const same = seen.get(h);
    let dup = false;
    if (same) {
      dup = same.some((k) => {
        for (let j = 0; j < dim; j++) if (data[k * dim + j] !== data[i * dim + j]) return false;
        return true;
      });
      if (!dup) same.push(i);
    } else seen.set(h, [i]);
    if (!dup) kept.push(i);
  }
  if (kept.length === n) return { points: p, duplicates: 0, kept: Int32Array.from(kept) };
  const out = new (data instanceof Float64Array ? Float64Array : Float32Array)(kept.length * dim);
  kept.forEach((src, i) => out.set(data.subarray(src * dim, src * dim + dim), i * dim));
  return { points: { data: out, n: kept.length, dim }, duplicates: n - kept.length, kept: Int32Array.from(kept) };
}

/** The points at the given row indices. */
export function subset(p: Points, rows: ArrayLike<number>): Points {
  const out = new (p.data instanceof Float64Array ? Float64Array : Float32Array)(rows.length * p.dim);
  for (let i = 0; i < rows.length; i++) out.set(p.data.subarray(rows[i] * p.dim, rows[i] * p.dim + p.dim), i * p.dim);
  return { data: out, n: rows.length, dim: p.dim };
}
