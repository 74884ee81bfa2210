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
