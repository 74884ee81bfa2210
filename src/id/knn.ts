/**
 * Exact first and second nearest neighbours of every point.
 *
 * Candidates come from blocked matrix products (|x|^2 + |y|^2 - 2 x.y, an OpenBLAS sgemm per strip of
 * rows of the upper triangle, or oneDNN bf16 products where the CPU has bf16 matrix units, the top-k
 * selection fused after each strip), so memory is O(block x N), never O(N^2). The squared-norm trick
 * loses digits when points sit far from the origin, so the points are centred first (in float64),
 * and the few best candidates of every point are re-measured exactly in float64 before the two
 * nearest are chosen, with a worst-case error bound deciding whether the
 * candidates can be trusted (see twoNearest). The centred points are also rescaled to unit size (see
 * centre), so the result does not depend on the data's units.
 */
import { kernels } from '../engine/backend.js';
import { bf16Available } from '../engine/backends/dnnl.js';

/** N points of dimension `dim`, row-major. */
export interface Points { data: Float32Array | Float64Array; n: number; dim: number }

export interface TwoNeighbours {
  /** distance to the nearest and second-nearest other point */
  r1: Float64Array;
  r2: Float64Array;
  i1: Int32Array;
  i2: Int32Array;
}

/**
 * The precision of the candidate search's Gram products: fp32 (OpenBLAS sgemm), bf16 (the points
 * rounded to bf16 and multiplied on oneDNN's AMX / AVX512-BF16 units with float32 accumulation), or
 * auto: bf16 where the native addon multiplies bf16 on matrix units, else fp32. The neighbours are the
 * exact float64 ones whichever runs (the candidates are certified with the matching error bound), so
 * this changes the time only, never the result.
 */
export type GramPrecision = 'auto' | 'fp32' | 'bf16';

export interface KnnOptions {
  /** precision of the candidate search (default auto: see GramPrecision) */
  gram?: GramPrecision;
  /** rows per strip of the distance sweep (default: 64..512, at most about 32 MB of float32 a strip) */
  blockRows?: number;
  /** candidates kept per point by the search (default 4 in fp32, 32 in bf16, whose wider error bound needs a longer list to certify it) */
  candidates?: number;
  /** called with the number of points done */
  onProgress?: (done: number, total: number) => void;
  /** seconds spent (centre, candidates, exact, recheck) and points rechecked, added to these keys */
  timings?: Record<string, number>;
}

export function checkPoints(p: Points, what = 'points'): void {
  if (!Number.isInteger(p.n) || !Number.isInteger(p.dim) || p.n < 0 || p.dim < 1 || p.data.length !== p.n * p.dim) {
    throw new Error(`${what}: ${p.data.length} values do not form ${p.n} points of dimension ${p.dim}`);
  }
  // x * 0 is NaN exactly for NaN and +-Infinity: one multiply-add a value, and a search only on failure
  let probe = 0;
  for (let i = 0; i < p.data.length; i++) probe += p.data[i] * 0;
  if (probe === 0) return;
  for (let i = 0; i < p.data.length; i++) {
    if (!Number.isFinite(p.data[i])) {
      throw new Error(`${what}: value ${p.data[i]} at point ${Math.floor(i / p.dim)}, coordinate ${i % p.dim}; remove or fix non-finite values first`);
    }
  }
}

/**
 * Centred points in units where the largest coordinate is about 1, as float32, with their squared
 * norms (summed in float64 before rounding) and that unit (the centrePoints kernel). Distances then
 * do not depend on the units of the data: squared distances of points at 1e-25 underflow float32
 * (and 1e-22 lose most of their digits to subnormals), at 1e20 they overflow it and at 1e200 float64
 * too ("ratio NaN"). The unit is two powers of two, one near the largest value (so that the sum for
 * the mean cannot overflow: n values of 1e307), one near the spread once centred (so that points far
 * from the origin, 1e6 + unit noise, get O(1) coordinates too), so for data in the ordinary range
 * every product, candidate and distance is the unscaled one times a power of two, bit for bit: mu is
 * unchanged and the distances are scaled back exactly. The float64 centred points are never stored:
 * the exact distances are measured on the data itself (differences do not need the mean).
 */
function centre(p: Points): { c32: Float32Array; sq: Float32Array; unit: number } {
  const c32 = new Float32Array(p.n * p.dim), sq = new Float32Array(p.n);
  const unit = kernels().centrePoints(c32, sq, p.data instanceof Float32Array ? p.data : null, p.data instanceof Float64Array ? p.data : null, p.n, p.dim);
  if (!(unit > 0 && Number.isFinite(unit))) throw new Error(`nearest neighbours: centring ${p.n} points failed (out of memory?)`);
  return { c32, sq, unit };
}

/**
 * A bound on |d2~ - d2| for the float32 squared distance d2~ = sq_i + sq_j - 2 x_i.x_j of two centred
 * points against their exact one, as c (|x_i|^2 + |x_j|^2): rounding the coordinates and norms to
 * float32 (3u), the dot product (gamma_dim = dim u / (1 - dim u) times sum |x_i,t x_j,t| <= |x_i||x_j|,
 * in any summation order, FMA or not) and the two float32 additions (3u), with u = 2^-24; 5% slack
 * covers the float64 re-measure's own rounding. This is the worst case, so a candidate list that is
 * certified with it is the exact answer, whatever the data.
 */
export function gramErrorFactor(dim: number): number {
  const u = 2 ** -24;
  return 1.05 * (6 * u + (dim * u) / (1 - dim * u)) * 2;
}

/**
 * gramErrorFactor for the bf16 candidate search: the points are rounded once more, to bf16 (unit
 * roundoff 2^-8), before the products, which adds (2 u_b + u_b^2) sum |x_i,t x_j,t| to the dot
 * product's error; each product of bf16 values is exact in float32 and the float32 accumulation keeps
 * gamma_dim, now of the rounded values ((1 + u_b)^2 larger). About 32x the float32 factor: more
 * points go to the exact recheck, the price of products several times faster. AMX also flushes
 * subnormal inputs and products (below 2^-126) to zero: an absolute error, bf16FlushError.
 */
export function gramErrorFactorBf16(dim: number): number {
  const u = 2 ** -24, ub = 2 ** -8, gamma = (dim * u) / (1 - dim * u);
  return 1.05 * (6 * u + gamma * (1 + ub) ** 2 + 2 * ub + ub * ub) * 2;
}

/**
 * The absolute part of the bf16 search's error: every flushed input or product of the centred points
 * (coordinates at most sqrt 2 in magnitude, see centre) moves a dot product by under 2 * 2^-126, so
 * a distance by under 4 dim 2^-126 (x2 for slack). Nothing for ordinary data; it keeps the bound
 * true for points within 1e-18 of the centroid too.
 */
export const bf16FlushError = (dim: number): number => 8 * dim * 2 ** -126;

/** Whether a candidate search of `gram` precision runs its products in bf16 here. */
export function gramInBf16(gram: GramPrecision = 'auto'): boolean {
  if (gram === 'fp32') return false;
  if (gram === 'bf16') return true;
  return kernels().name === 'native' && bf16Available().available;
}

/** Offers point j at float64 squared distance d to a running top two (ties to the lower index). */
function bestTwo(d: number, j: number, b: { d1: number; j1: number; d2: number; j2: number }): void {
  if (d < b.d1 || (d === b.d1 && j < b.j1)) { b.d2 = b.d1; b.j2 = b.j1; b.d1 = d; b.j1 = j; }
  else if (d < b.d2 || (d === b.d2 && j < b.j2)) { b.d2 = d; b.j2 = j; }
}

/**
 * Exact first and second nearest neighbours (float64 distances; ties to the lower index).
 *
 *  1. candidates: every point's k nearest by float32 Gram distances (or bf16 products on the CPU's
 *     matrix units: o.gram), from one fused native sweep over the upper triangle of X X^T
 *     (knnCandidates: each pair computed once, memory O(block x N));
 *  2. the candidates that can be among the two nearest re-measured exactly in float64 on the data
 *     (sqDistPairs);
 *  3. a certificate per point: no other point can be nearer than the second exact distance b2 when the
 *     k-th candidate's approximate distance minus the search's worst-case error (gramErrorFactor,
 *     gramErrorFactorBf16) exceeds b2. Points without it (near-ties around the k-th candidate) get
 *     their Gram row recomputed in float32 and every point whose lower bound is within b2 re-measured
 *     exactly, so the answer is exact always, and the same whichever precision searched.
 */
export function twoNearest(p: Points, o: KnnOptions = {}): TwoNeighbours {
  const { n, dim } = p;
  if (n < 3) throw new Error(`two nearest neighbours need at least 3 distinct points, got ${n}`);
  const block = Math.max(1, Math.min(n, o.blockRows ?? Math.max(64, Math.min(512, Math.floor((1 << 23) / n)))));
  const K = kernels();
  const t0 = performance.now();
  const { c32, sq, unit } = centre(p);
  const t1 = performance.now();
  const X32 = p.data instanceof Float32Array ? p.data : null, X64 = p.data instanceof Float64Array ? p.data : null, inv = 1 / unit;
  let sqMax = 0;
  for (let i = 0; i < n; i++) sqMax = Math.max(sqMax, sq[i]);
  const c = gramErrorFactor(dim); // the recheck below recomputes rows in float32
  const r1 = new Float64Array(n), r2 = new Float64Array(n), i1 = new Int32Array(n), i2 = new Int32Array(n);
  const b = { d1: Infinity, j1: -1, d2: Infinity, j2: -1 };
  const d2 = new Float64Array(n);
  const done = (i: number): void => { r1[i] = Math.sqrt(b.d1) * unit; r2[i] = Math.sqrt(b.d2) * unit; i1[i] = b.j1; i2[i] = b.j2; d2[i] = b.d2; };

  /** Steps 1-3 with the search's products in bf16 or float32: every point's best two of its candidates, and the points left uncertified. */
  let candidatesMs = 0, exactMs = 0;
  const search = (bf16: boolean): number[] => {
    const k = Math.max(2, Math.min(o.candidates ?? (bf16 ? 32 : 4), n - 1));
    const candIdx = new Int32Array(n * k), candD2 = new Float32Array(n * k);
    const s0 = performance.now();
    (bf16 ? K.knnCandidatesBf16 : K.knnCandidates).call(K, candIdx, candD2, c32, sq, n, dim, k, block);
    const s1 = performance.now();
    candidatesMs += s1 - s0;
    if (candIdx.some((j) => j < 0 || j >= n)) throw new Error(`nearest neighbours: the candidate search of ${n} points failed (out of memory?)`);
    // the certificate bounds the candidate search's error
    const cCand = bf16 ? gramErrorFactorBf16(dim) : c, aCand = bf16 ? bf16FlushError(dim) : 0;
    // exact distances in two passes: each row's two best candidates, then only the candidates whose
    // lower bound (approximate distance minus its error bound) reaches the second of those: any other
    // is farther than b2 for sure, so it cannot be one of the two nearest (b2 only shrinks after)
    const exact = new Float64Array(n * k).fill(Infinity);
    const measure = (qs: number[]): void => {
      const a = Int32Array.from(qs, (q) => Math.floor(q / k)), js = Int32Array.from(qs, (q) => candIdx[q]), d = new Float64Array(qs.length);
      K.sqDistPairs(d, X32, X64, dim, a, js, qs.length, inv);
      qs.forEach((q, t) => { exact[q] = d[t]; });
    };
    const first: number[] = [];
    for (let i = 0; i < n; i++) first.push(i * k, i * k + 1);
    measure(first);
    const more: number[] = [];
    for (let i = 0; i < n; i++) {
      const b2 = Math.max(exact[i * k], exact[i * k + 1]);
      for (let q = i * k + 2; q < i * k + k; q++) if (candD2[q] - cCand * (sq[i] + sq[candIdx[q]]) - aCand <= b2) more.push(q);
    }
    measure(more);
    const open: number[] = [];
    for (let i = 0; i < n; i++) {
      b.d1 = b.d2 = Infinity; b.j1 = b.j2 = -1;
      for (let q = i * k; q < i * k + k; q++) if (exact[q] !== Infinity) bestTwo(exact[q], candIdx[q], b);
      done(i);
      // every other point is a candidate, or none outside the list can come within b2
      if (!(k === n - 1 || candD2[i * k + k - 1] - cCand * (sq[i] + sqMax) - aCand > b.d2)) open.push(i);
    }
    exactMs += performance.now() - s1;
    return open;
  };
  const bf16 = gramInBf16(o.gram);
  let open = search(bf16);
  // most points uncertified (low-dimensional data: nearest distances far below the bf16 bound, which
  // scales with the norms): the float32 sweep costs less than recomputing over half the rows
  if (bf16 && 2 * open.length > n) {
    open = search(false);
    if (o.timings) o.timings.bf16_fallbacks = (o.timings.bf16_fallbacks ?? 0) + 1;
  }
  const t3 = performance.now();
  // uncertified points: their whole Gram row again, then every point whose lower bound reaches b2
  const rowsPer = Math.max(1, Math.min(open.length, Math.floor((1 << 22) / n)));
  const G = new Float32Array(rowsPer * n), Xo = new Float32Array(rowsPer * dim);
  for (let s = 0; s < open.length; s += rowsPer) {
    const rows = open.slice(s, s + rowsPer);
    rows.forEach((i, r) => Xo.set(c32.subarray(i * dim, i * dim + dim), r * dim));
    K.gemm(false, true, rows.length, n, dim, 1, Xo, 0, dim, c32, 0, dim, 0, G, 0, n);
    rows.forEach((i, r) => {
      const bound = d2[i], a: number[] = [], js: number[] = [];
      for (let j = 0; j < n; j++) {
        if (j !== i && sq[i] + sq[j] - 2 * G[r * n + j] - c * (sq[i] + sq[j]) <= bound) { a.push(i); js.push(j); }
      }
      const d = new Float64Array(js.length);
      K.sqDistPairs(d, X32, X64, dim, Int32Array.from(a), Int32Array.from(js), js.length, inv);
      b.d1 = b.d2 = Infinity; b.j1 = b.j2 = -1;
      js.forEach((j, q) => bestTwo(d[q], j, b));
      done(i);
    });
  }
  o.onProgress?.(n, n);
  if (o.timings) {
    const t4 = performance.now(), add = (key: string, ms: number): void => { o.timings![key] = (o.timings![key] ?? 0) + ms / 1000; };
    add('centre', t1 - t0); add('candidates', candidatesMs); add('exact', exactMs); add('recheck', t4 - t3);
    o.timings.rechecked = (o.timings.rechecked ?? 0) + open.length;
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
