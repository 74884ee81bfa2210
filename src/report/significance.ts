/**
 * Is GeLoRA better than LoRA, or is the difference noise? Two paired comparisons:
 *  - over seeds: the two methods ran with the same seeds (same data order, same initial head), so the
 *    per-seed differences are the sample; a t interval on their mean (n - 1 degrees of freedom);
 *  - over dev examples: a paired bootstrap (Koehn 2004; Berg-Kirkpatrick et al. 2012) resamples dev
 *    examples with replacement and recomputes the metric difference of the two prediction sets.
 * A difference whose 95% interval contains 0 is called a tie.
 */
import { Rng } from '../engine/random.js';

export interface Interval { mean: number; lo: number; hi: number; n: number; verdict: 'better' | 'worse' | 'tie' }

const verdict = (lo: number, hi: number): Interval['verdict'] => (lo > 0 ? 'better' : hi < 0 ? 'worse' : 'tie');

/** Two-sided Student t quantile at 0.975 for df degrees of freedom (table for small df, normal beyond). */
export function t975(df: number): number {
  const table = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
  if (!(df >= 1)) throw new Error('a t interval needs at least 2 paired runs');
  return df < table.length ? table[Math.floor(df)] : 1.96;
}

/** a - b per seed (scores[i] of both from the same seed): mean and 95% t interval. */
export function pairedSeeds(a: number[], b: number[]): Interval {
  if (a.length !== b.length) throw new Error(`paired comparison needs the same seeds on both sides (${a.length} vs ${b.length} runs)`);
  const d = a.map((x, i) => x - b[i]), n = d.length;
  const mean = d.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  const h = t975(n - 1) * sd / Math.sqrt(n);
  return { mean, lo: mean - h, hi: mean + h, n, verdict: verdict(mean - h, mean + h) };
}

/**
 * Paired bootstrap over dev examples: metric(predA) - metric(predB) on `samples` resamples of the dev
 * set; the interval is the 2.5 and 97.5 percentiles, the mean is the difference on the full set.
 */
export function pairedBootstrap(predA: ArrayLike<number>, predB: ArrayLike<number>, gold: ArrayLike<number>,
  metric: (pred: ArrayLike<number>, gold: ArrayLike<number>) => number, samples = 1000, seed = 0): Interval {
  const n = gold.length;
  if (predA.length !== n || predB.length !== n) throw new Error(`paired bootstrap: ${predA.length} and ${predB.length} predictions for ${n} dev examples`);
  const rng = new Rng(seed), diffs: number[] = [];
  const pa = new Float64Array(n), pb = new Float64Array(n), g = new Float64Array(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) { const j = rng.int(n); pa[i] = predA[j]; pb[i] = predB[j]; g[i] = gold[j]; }
    diffs.push(metric(pa, g) - metric(pb, g));
  }
  diffs.sort((x, y) => x - y);
  const lo = diffs[Math.floor(0.025 * (samples - 1))], hi = diffs[Math.ceil(0.975 * (samples - 1))];
  return { mean: metric(predA, gold) - metric(predB, gold), lo, hi, n, verdict: verdict(lo, hi) };
}

/**
 * The paired bootstrap of several seeds at once: run s of A is paired with run s of B (same seed, same
 * dev set gold[s]), and each resample scores the mean over seeds of metric(A_s) - metric(B_s). Where
 * every seed scored the same dev set (the same gold labels), one resample of the dev examples serves
 * every seed; otherwise (a dev set sampled per seed) each seed's dev set is resampled on its own. The
 * interval is the variation due to the dev sample alone, for the seed-averaged difference.
 */
export function pairedBootstrapRuns(predsA: ArrayLike<number>[], predsB: ArrayLike<number>[], gold: ArrayLike<number>[],
  metric: (pred: ArrayLike<number>, gold: ArrayLike<number>) => number, samples = 1000, seed = 0): Interval {
  const S = predsA.length;
  if (S === 0 || predsB.length !== S || gold.length !== S) throw new Error(`paired bootstrap: ${predsA.length} and ${predsB.length} runs, ${gold.length} dev sets; pair the same seeds`);
  for (let s = 0; s < S; s++) {
    const n = gold[s].length;
    if (predsA[s].length !== n || predsB[s].length !== n) throw new Error(`paired bootstrap: ${predsA[s].length} and ${predsB[s].length} predictions for ${n} dev examples`);
  }
  const same = gold.every((g) => g.length === gold[0].length && Array.from(g).every((v, i) => v === gold[0][i]));
  const diffOf = (idx: Int32Array[] | null): number => {
    let d = 0;
    for (let s = 0; s < S; s++) {
      const take = (p: ArrayLike<number>): ArrayLike<number> => (idx ? Float64Array.from(idx[s], (j) => p[j]) : p);
      const g = take(gold[s]);
      d += metric(take(predsA[s]), g) - metric(take(predsB[s]), g);
    }
    return d / S;
  };
  const rng = new Rng(seed), diffs: number[] = [];
  for (let k = 0; k < samples; k++) {
    const idx: Int32Array[] = [];
    for (let s = 0; s < S; s++) {
      if (same && s > 0) { idx.push(idx[0]); continue; }
      const n = gold[s].length, ix = new Int32Array(n);
      for (let i = 0; i < n; i++) ix[i] = rng.int(n);
      idx.push(ix);
    }
    diffs.push(diffOf(idx));
  }
  diffs.sort((x, y) => x - y);
  const lo = diffs[Math.floor(0.025 * (samples - 1))], hi = diffs[Math.ceil(0.975 * (samples - 1))];
  return { mean: diffOf(null), lo, hi, n: gold.reduce((a, g) => a + g.length, 0) / S, verdict: verdict(lo, hi) };
}

/** One run as the comparisons need it: its method, seed, selection metric and (when saved) dev predictions. */
export interface PairedRun { method: string; seed: number; metric_value: number; ranks?: number[] | null; prediction?: ArrayLike<number>; label?: ArrayLike<number> }

/** A − B over the seeds both ran: paired over seeds (t, 2+ seeds) and paired bootstrap over dev examples (where predictions exist). */
export interface MethodComparison {
  a: string; b: string; seeds: number[];
  overSeeds: Interval | null; overExamples: Interval | null;
  /** both methods trained the same ranks: the runs are the same adapter, a tie by construction */
  identicalRanks: boolean;
}

/**
 * `a` against `b` (e.g. gelora − lora), pairing runs by seed. overSeeds needs two or more seeds;
 * overExamples needs the predictions and dev labels of every paired run (a pair must share its labels).
 */
export function compareMethods(runs: PairedRun[], a: string, b: string,
  metric: ((pred: ArrayLike<number>, gold: ArrayLike<number>) => number) | null, samples = 1000): MethodComparison | null {
  const of = (m: string): Map<number, PairedRun> => new Map(runs.filter((r) => r.method === m).map((r) => [r.seed, r]));
  const A = of(a), B = of(b), seeds = [...A.keys()].filter((s) => B.has(s)).sort((x, y) => x - y);
  if (seeds.length === 0) return null;
  const pa = seeds.map((s) => A.get(s)!), pb = seeds.map((s) => B.get(s)!);
  const overSeeds = seeds.length >= 2 ? pairedSeeds(pa.map((r) => r.metric_value), pb.map((r) => r.metric_value)) : null;
  const withPred = metric !== null && [...pa, ...pb].every((r) => r.prediction && r.label);
  if (withPred) {
    pa.forEach((r, i) => {
      const la = r.label!, lb = pb[i].label!;
      if (la.length !== lb.length || Array.from(la).some((v, k) => v !== lb[k])) throw new Error(`${a} and ${b} seed ${r.seed} scored different dev sets (their dev labels differ); they cannot be paired`);
    });
  }
  const overExamples = withPred ? pairedBootstrapRuns(pa.map((r) => r.prediction!), pb.map((r) => r.prediction!), pa.map((r) => r.label!), metric, samples) : null;
  const identicalRanks = pa.every((r, i) => r.ranks != null && JSON.stringify(r.ranks) === JSON.stringify(pb[i].ranks));
  return { a, b, seeds, overSeeds, overExamples, identicalRanks };
}

const f4 = (v: number): string => v.toFixed(4);
const cell = (iv: Interval | null, c: MethodComparison): string[] =>
  iv ? [f4(iv.mean), `[${f4(iv.lo)}, ${f4(iv.hi)}]`, c.identicalRanks && iv.lo === 0 && iv.hi === 0 ? 'tie (same ranks)' : iv.verdict] : ['–', '–', '–'];

/** The comparisons as a markdown table: both paired tests side by side, ties called ties; `label` names a first column (each row's `label`). */
export function comparisonsMarkdown(cs: (MethodComparison & { label?: string })[], label = ''): string {
  const lines = [`| ${label ? `${label} | ` : ''}comparison | seeds | over seeds: mean | 95% t interval | verdict | over dev examples: mean | 95% bootstrap interval | verdict |`,
    `|${label ? '---|' : ''}---|---|---|---|---|---|---|---|`];
  for (const c of cs) lines.push(`| ${label ? `${c.label ?? ''} | ` : ''}${c.a} − ${c.b} | ${c.seeds.length} | ${[...cell(c.overSeeds, c), ...cell(c.overExamples, c)].join(' | ')} |`);
  return lines.join('\n') + '\n';
}
