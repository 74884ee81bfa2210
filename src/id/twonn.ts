/**
 * TwoNN intrinsic-dimension estimators (Facco et al. 2017) with DADApy's conventions, as plain
 * functions of the points:
 *  - fit:   least squares through the origin of -log(1 - i/N) against the sorted log(mu_i),
 *           i = 1..floor(N (1 - discard)) (DADApy compute_id_2NN "base", mu_fraction = 1 - discard)
 *  - ml:    (N - 1) / sum log(mu)                       (DADApy "ml")
 *  - bayes: posterior mean (alpha + N) / (beta + sum log mu) of a Gamma(alpha, beta) prior
 *           (DADApy compute_id_2NN_wprior), error = posterior standard deviation
 * mu = r2 / r1 for every point. Exact duplicates are removed first (and counted); ties (mu = 1)
 * are kept, as DADApy keeps them.
 */
import { Rng } from '../engine/random.js';
import { checkPoints, dedupe, subset, twoNearest, type KnnOptions, type Points } from './knn.js';

export type IdMethod = 'fit' | 'ml' | 'bayes';

export interface IdOptions extends KnnOptions {
  method?: IdMethod;
  /** fraction of the largest mu discarded by the fit (default 0.1) */
  discard?: number;
  /** Gamma prior of the Bayesian estimate (default 2, 5) */
  alpha?: number;
  beta?: number;
}

export interface IdEstimate {
  id: number;
  /** standard error: ml d/sqrt(N-2), bayes posterior std; null for the fit (use scaling or bootstrap) */
  error: number | null;
  /** mean distance to the first two neighbours (DADApy's intrinsic_dim_scale) */
  scale: number;
  method: IdMethod;
  /** points given */
  n: number;
  /** points whose mu entered the estimate */
  nUsed: number;
  /** exact duplicates removed before the neighbour search */
  duplicates: number;
  /** largest mu left out of the fit */
  discarded: number;
  /** points with r1 == r2 (mu = 1, kept) */
  ties: number;
}

const DEGENERATE = 'every point has its two nearest neighbours at the same distance (mu = 1), so the intrinsic dimension is unbounded; the data look like a lattice or are too few';

/** The estimate from the ratios mu = r2/r1 alone. */
export function idFromMus(mus: Float64Array, o: IdOptions = {}): { id: number; error: number | null; nUsed: number; discarded: number } {
  checkMus(mus);
  return idFromLogs(Float64Array.from(mus, Math.log), false, o);
}

function checkMus(mus: Float64Array): void {
  if (mus.length < 2) throw new Error(`TwoNN needs at least 2 ratios, got ${mus.length}`);
  for (const m of mus) if (!(m >= 1) || !Number.isFinite(m)) throw new Error(`invalid neighbour-distance ratio ${m} (must be finite and >= 1)`);
}

/** idFromMus from log(mu) (sorted ascending in place when not `sorted` and the method is the fit). */
function idFromLogs(logs: Float64Array, sorted: boolean, o: IdOptions): { id: number; error: number | null; nUsed: number; discarded: number } {
  const method = o.method ?? 'fit', N = logs.length;
  if (method === 'fit') {
    const discard = o.discard ?? 0.1;
    if (!(discard >= 0 && discard < 1)) throw new Error(`discard must be in [0, 1), got ${discard}`);
    if (!sorted) logs.sort();
    const nEff = Math.floor(N * (1 - discard));
    if (nEff < 1) throw new Error(`discard ${discard} leaves no ratio of ${N} to fit`);
    // the fit's target -log(1 - i/N) is infinite at i = N, so it must leave out at least the largest ratio
    if (nEff === N) throw new Error(`discard ${discard} keeps all ${N} ratios, and the fit's last target -log(1 - N/N) is infinite: discard at least 1/N (default 0.1), or use method ml, which uses every ratio`);
    let sxy = 0, sxx = 0;
    for (let i = 0; i < nEff; i++) {
      const y = -Math.log(1 - (i + 1) / N);
      sxy += logs[i] * y;
      sxx += logs[i] * logs[i];
    }
    if (sxx === 0) throw new Error(DEGENERATE);
    return { id: sxy / sxx, error: null, nUsed: nEff, discarded: N - nEff };
  }
  let S = 0;
  for (const l of logs) S += l;
  if (method === 'ml') {
    if (S === 0) throw new Error(DEGENERATE);
    const id = (N - 1) / S;
    return { id, error: N > 2 ? id / Math.sqrt(N - 2) : null, nUsed: N, discarded: 0 };
  }
  if (method === 'bayes') {
    const aPost = (o.alpha ?? 2) + N, bPost = (o.beta ?? 5) + S;
    return { id: aPost / bPost, error: Math.sqrt(aPost) / bPost, nUsed: N, discarded: 0 };
  }
  throw new Error(`unknown method "${method as string}" (fit, ml or bayes)`);
}

/** Duplicates removed, then exact 2-NN, then mu; everything estimateId needs. */
export function neighbourRatios(p: Points, o: KnnOptions = {}): { mus: Float64Array; scale: number; duplicates: number; ties: number; n: number } {
  checkPoints(p);
  const { points, duplicates } = dedupe(p);
  return distinctRatios(points, duplicates, p.n, o);
}

/** neighbourRatios of points already checked and free of duplicates (`duplicates` removed from `n` given). */
export function distinctRatios(points: Points, duplicates: number, n: number, o: KnnOptions = {}): { mus: Float64Array; scale: number; duplicates: number; ties: number; n: number } {
  if (points.n < 3) throw new Error(`TwoNN needs at least 3 distinct points; got ${points.n} (${duplicates} duplicates removed)`);
  const nn = twoNearest(points, o);
  const mus = new Float64Array(points.n);
  let scale = 0, ties = 0;
  for (let i = 0; i < points.n; i++) {
    mus[i] = nn.r2[i] / nn.r1[i];
    if (nn.r2[i] === nn.r1[i]) ties++;
    scale += nn.r1[i] + nn.r2[i];
  }
  return { mus, scale: scale / (2 * points.n), duplicates, ties, n };
}

export function estimateId(p: Points, o: IdOptions = {}): IdEstimate {
  const r = neighbourRatios(p, o);
  const e = idFromMus(r.mus, o);
  return { ...e, scale: r.scale, method: o.method ?? 'fit', n: r.n, duplicates: r.duplicates, ties: r.ties };
}

export interface ScalingPoint { size: number; id: number; error: number; scale: number; repeats: number }

/**
 * The estimate at coarser scales by decimation (DADApy return_id_scaling_2NN): sizes round(N / 2^i)
 * for i = 0 .. floor(log2 N) - 2 while larger than nMin; at each size, round(N / size) random subsets
 * without replacement, mean and standard error of their estimates, mean neighbour distance as scale.
 */
export function idScaling(p: Points, o: IdOptions & { nMin?: number; seed?: number } = {}): ScalingPoint[] {
  checkPoints(p);
  const { points } = dedupe(p);
  const N = points.n, nMin = o.nMin ?? 10, rng = new Rng(o.seed ?? 0);
  const maxDec = Math.floor(Math.log2(N)) - 1;
  const out: ScalingPoint[] = [];
  for (let i = 0; i < maxDec; i++) {
    const size = Math.round(N / 2 ** i);
    if (size <= nMin) break;
    const repeats = size === N ? 1 : Math.round(N / size);
    const ids: number[] = [], scales: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const pts = size === N ? points : subset(points, sampleWithoutReplacement(N, size, rng));
      const est = estimateId(pts, o);
      ids.push(est.id);
      scales.push(est.scale);
    }
    const mean = ids.reduce((a, b) => a + b, 0) / repeats;
    const std = Math.sqrt(ids.reduce((a, b) => a + (b - mean) ** 2, 0) / repeats);
    out.push({ size, id: mean, error: std / Math.sqrt(repeats), scale: scales.reduce((a, b) => a + b, 0) / repeats, repeats });
  }
  return out;
}

/**
 * Bootstrap over the points' ratios: percentile interval and standard deviation of the estimate.
 * Each resample is N draws with replacement (rng.int(N)). The fit needs a resample sorted: it is
 * assembled from the ratios sorted once and how often each was drawn (a counting sort, the same
 * values in the same order as sorting the draws), so B resamples cost O(B N), not O(B N log N).
 */
export function bootstrapId(mus: Float64Array, o: IdOptions & { samples?: number; level?: number; seed?: number } = {}): { low: number; high: number; std: number; samples: number } {
  const B = o.samples ?? 200, level = o.level ?? 0.95, rng = new Rng(o.seed ?? 0), N = mus.length;
  checkMus(mus);
  const logs = Float64Array.from(mus, Math.log), fit = (o.method ?? 'fit') === 'fit';
  const order = fit ? Int32Array.from({ length: N }, (_, i) => i).sort((a, b) => logs[a] - logs[b]) : null;
  const ests: number[] = [];
  const draw = new Float64Array(N), count = new Int32Array(N);
  for (let b = 0; b < B; b++) {
    if (order) {
      count.fill(0);
      for (let i = 0; i < N; i++) count[rng.int(N)]++;
      for (let q = 0, at = 0; q < N; q++) for (let c = count[order[q]]; c > 0; c--) draw[at++] = logs[order[q]];
    } else for (let i = 0; i < N; i++) draw[i] = logs[rng.int(N)];
    try { ests.push(idFromLogs(draw, true, o).id); } catch { /* a degenerate resample (all ties) carries no estimate */ }
  }
  if (ests.length === 0) throw new Error(DEGENERATE);
  ests.sort((a, b) => a - b);
  const q = (f: number): number => ests[Math.min(ests.length - 1, Math.max(0, Math.round(f * (ests.length - 1))))];
  const mean = ests.reduce((a, b) => a + b, 0) / ests.length;
  const std = Math.sqrt(ests.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, ests.length - 1));
  return { low: q((1 - level) / 2), high: q(1 - (1 - level) / 2), std, samples: ests.length };
}

export function sampleWithoutReplacement(n: number, k: number, rng: Rng): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
  return idx.slice(0, k).sort();
}
