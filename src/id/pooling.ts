/**
 * From hidden states [B, T, H] to points for intrinsic-dimension estimation, the same rows for
 * every layer so that the per-layer profile compares like with like:
 *  - mean:   average over non-pad tokens (default)
 *  - cls:    the first token (BERT-style encoders)
 *  - last:   the last non-pad token (decoders: GPT-2, LLaMA)
 *  - tokens: every non-pad token, each kept with probability keepProb (a cap on the total)
 * Special tokens ([CLS], [SEP], <s>, ...) can be excluded from mean and tokens.
 */
import { Rng } from '../engine/random.js';
import { checkPoints, dedupe, type Points } from './knn.js';
import { bootstrapId, distinctRatios, idFromMus, neighbourRatios, type IdOptions } from './twonn.js';

export type Pooling = 'mean' | 'cls' | 'last' | 'tokens';
export const POOLINGS: Pooling[] = ['mean', 'cls', 'last', 'tokens'];

export interface PoolOptions {
  mode: Pooling;
  /** token ids left out of mean and tokens pooling */
  excludeIds?: ReadonlySet<number>;
  /** tokens mode: probability of keeping each token */
  keepProb?: number;
  rng?: Rng;
}

/** Which token positions (flat b*T + t) make each output point: one group per point. */
export function poolPlan(attentionMask: ArrayLike<number>, inputIds: ArrayLike<number>, B: number, T: number, o: PoolOptions): number[][] {
  const groups: number[][] = [];
  const rng = o.rng ?? new Rng(0);
  for (let b = 0; b < B; b++) {
    const valid: number[] = [];
    for (let t = 0; t < T; t++) if (attentionMask[b * T + t]) valid.push(b * T + t);
    if (valid.length === 0) throw new Error(`sequence ${b} of the batch has no tokens (all padding)`);
    const content = o.excludeIds ? valid.filter((i) => !o.excludeIds!.has(inputIds[i])) : valid;
    switch (o.mode) {
      case 'cls': groups.push([b * T]); break;
      case 'last': groups.push([valid[valid.length - 1]]); break;
      case 'mean': groups.push(content.length ? content : valid); break;
      case 'tokens': for (const i of content) if (rng.next() < (o.keepProb ?? 1)) groups.push([i]); break;
      default: throw new Error(`unknown pooling "${o.mode as string}" (${POOLINGS.join(', ')})`);
    }
  }
  return groups;
}

/** Rows of points from hidden [B*T, H] following a plan (mean over each group). */
export function poolRows(hidden: Float32Array | Float64Array, H: number, plan: number[][]): Float32Array {
  const out = new Float32Array(plan.length * H);
  plan.forEach((g, r) => {
    const acc = new Float64Array(H);
    for (const i of g) for (let j = 0; j < H; j++) acc[j] += hidden[i * H + j];
    for (let j = 0; j < H; j++) out[r * H + j] = acc[j] / g.length;
  });
  return out;
}

/** Collects pooled rows of every layer across batches. */
export class LayerPoints {
  private readonly chunks: Float32Array[][] = [];
  private rows = 0;

  constructor(readonly layers: number, readonly H: number) {
    for (let l = 0; l < layers; l++) this.chunks.push([]);
  }

  add(layer: number, hidden: Float32Array, plan: number[][]): void {
    if (layer === 0) this.rows += plan.length;
    this.chunks[layer].push(poolRows(hidden, this.H, plan));
  }

  points(layer: number): Points {
    const data = new Float32Array(this.rows * this.H);
    let at = 0;
    for (const c of this.chunks[layer]) { data.set(c, at); at += c.length; }
    if (at !== data.length) throw new Error(`layer ${layer} has ${at / this.H} points, layer 0 has ${this.rows}`);
    return { data, n: this.rows, dim: this.H };
  }
}

export interface LayerEstimate {
  layer: number;
  id: number;
  /** bootstrap standard deviation (or the estimator's own error when no bootstrap ran) */
  error: number;
  low: number;
  high: number;
  n: number;
  duplicates: number;
  scale: number;
  /**
   * Present (true) when the layer's states collapse to fewer than 3 distinct points: id, error, low,
   * high and scale are then 0 (see idProfile), and `note` says why.
   */
  collapsed?: true;
  note?: string;
}

/**
 * d_0 .. d_L with error bars: the estimate on all points, a bootstrap over their ratios for the interval.
 *
 * A layer whose states take fewer than 3 distinct values (all the same [CLS] state at layer 0 under
 * --pooling cls: the embedding of the first token does not depend on the text, by construction) has
 * no TwoNN estimate, but it has a dimension: a finite set of points is 0-dimensional. Such a layer
 * gets d = 0 exactly (error 0, interval [0, 0]) and is marked `collapsed`, rather than failing the
 * whole analysis or being skipped. Under the GeLoRA rule r_i = max(ceil(d_i - d_{i-1}), 0) + offset
 * that is what a point should give: the block after it gets rank ceil(d_i) + offset, everything its
 * output spans being new, and a collapsed layer after a rich one gets the offset alone. Skipping the
 * layer instead would leave r_1 without a d_0, or silently pair d_1 with d_{-1}.
 * Too few points in all (n < 3) is still an error: that is a sample too small, not a collapsed layer.
 */
export function idProfile(layers: Points[], o: IdOptions & { bootstrap?: number; seed?: number; onLayer?: (l: number) => void } = {}): LayerEstimate[] {
  return idProfileOf(layers.length, (l) => layers[l], o);
}

/**
 * idProfile over layers produced one at a time by `layer(l)` (read from a file, say), so that only
 * one layer's points need be in memory. `timings` (from IdOptions) also gets `checks` (finite values,
 * duplicates) and `bootstrap` seconds.
 */
export function idProfileOf(count: number, layer: (l: number) => Points, o: IdOptions & { bootstrap?: number; seed?: number; onLayer?: (l: number) => void } = {}): LayerEstimate[] {
  const out: LayerEstimate[] = [];
  const add = (key: string, t0: number): void => { if (o.timings) o.timings[key] = (o.timings[key] ?? 0) + (performance.now() - t0) / 1000; };
  for (let l = 0; l < count; l++) {
    const p = layer(l);
    let t0 = performance.now();
    checkPoints(p, `layer ${l}`);
    const d = p.n >= 3 ? dedupe(p) : null;
    add('checks', t0);
    const distinct = d ? d.points.n : p.n;
    if (p.n >= 3 && distinct < 3) {
      o.onLayer?.(l);
      out.push({
        layer: l, id: 0, error: 0, low: 0, high: 0, n: p.n, duplicates: p.n - distinct, scale: 0, collapsed: true,
        note: `the ${p.n} states of layer ${l} take only ${distinct} distinct value${distinct === 1 ? '' : 's'}: a finite set of points, dimension 0 (TwoNN needs 3 distinct points)`,
      });
      continue;
    }
    const r = d ? distinctRatios(d.points, d.duplicates, p.n, o) : neighbourRatios(p, o);
    const est = idFromMus(r.mus, o);
    const B = o.bootstrap ?? 100;
    t0 = performance.now();
    const ci = B > 0 ? bootstrapId(r.mus, { ...o, samples: B, seed: (o.seed ?? 0) + l }) : null;
    add('bootstrap', t0);
    o.onLayer?.(l);
    out.push({
      layer: l, id: est.id, error: ci ? ci.std : est.error ?? 0, low: ci ? ci.low : est.id, high: ci ? ci.high : est.id,
      n: p.n, duplicates: r.duplicates, scale: r.scale,
    });
  }
  return out;
}
