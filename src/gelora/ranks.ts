/**
 * Ranks a user gives (train's --ranks shortcut) and the limits every allocation respects: a LoRA
 * pair A [r, in], B [out, r] adds nothing beyond r = min(in, out) (the update B A has at most that
 * rank), so no block gets more, and a budget the largest such adapter cannot reach is refused
 * before any work (hidden states, training) starts.
 */
import { Rng } from '../engine/random.js';
import { checkPoints, dedupe, type Points } from '../id/knn.js';
import { bootstrapId, idFromMus, neighbourRatios, type IdOptions } from '../id/twonn.js';
import type { Model } from '../models/model.js';
import { geloraRanks } from './allocate.js';
import { allocate, blockModules, type AllocateOptions, type Allocation, type BlockModule } from './analyze.js';

/** The adaptable modules for `targets`, or an error that says none matched (before any work). */
export function targetBlockModules(model: Model, targets: string[] | null | undefined): BlockModule[] {
  const modules = blockModules(model, targets ?? null);
  if (modules.length === 0) throw new Error(`--targets ${targets?.join(' ')} match no module inside the blocks of this ${model.type} model`);
  return modules;
}

/** The largest rank every adapted matrix can hold: min over modules of min(in, out); null when sizes are unknown. */
export function rankCapacity(modules: BlockModule[]): number | null {
  if (modules.length === 0 || modules.some((m) => m.inF === undefined || m.outF === undefined)) return null;
  return Math.min(...modules.map((m) => Math.min(m.inF!, m.outF!)));
}

/** The trainable parameters of the largest adapter the modules hold (every block at rankCapacity), plus `fixed`. */
export function largestBudget(modules: BlockModule[], fixed = 0): number | null {
  const cap = rankCapacity(modules);
  return cap === null ? null : cap * modules.reduce((s, m) => s + m.inF! + m.outF!, 0) + fixed;
}

/** Refuses a budget (or a uniform rank's budget) that no allocation on these modules can reach. */
export function checkBudgetFits(o: { budget?: number; budgetLikeRank?: number }, modules: BlockModule[], fixed = 0): void {
  const cap = rankCapacity(modules), most = largestBudget(modules, fixed);
  if (cap === null || most === null) return;
  if (o.budgetLikeRank !== undefined && o.budgetLikeRank > cap) {
    throw new Error(`--budget-like-rank ${o.budgetLikeRank}: the adapted matrices hold at most rank ${cap} (min(in, out)); the largest possible is ${cap}`);
  }
  if (o.budget !== undefined && o.budget > most) {
    throw new Error(`--budget ${o.budget}: the largest adapter these ${modules.length} modules hold (rank ${cap} everywhere) has ${most} trainable parameters; the largest possible budget is ${most}`);
  }
}

/** Refuses a rank that a matrix of its block cannot hold, naming the largest possible. */
export function checkRanksFit(ranks: number[], modules: BlockModule[], what = 'rank'): void {
  ranks.forEach((r, i) => {
    const inBlock = modules.filter((m) => m.block === i + 1 && m.inF !== undefined && m.outF !== undefined);
    if (inBlock.length === 0) return;
    const cap = Math.min(...inBlock.map((m) => Math.min(m.inF!, m.outF!)));
    if (r > cap) throw new Error(`${what} ${r} of block ${i + 1}: its matrices hold at most rank ${cap} (min(in, out) of ${inBlock.find((m) => Math.min(m.inF!, m.outF!) === cap)!.name}); the largest possible is ${cap}`);
  });
}

/**
 * The allocation that trains exactly these ranks (one per block), as if an analysis had produced
 * them: a flat profile through the given ranks, d_i - d_{i-1} = r_i - 1 with offset 1. Budget
 * options do not apply (the ranks are the user's).
 */
export function allocationFromRanks(ranks: number[], modules: BlockModule[], o: AllocateOptions = {}): Allocation {
  if (ranks.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`ranks must be non-negative integers, got ${ranks.join(', ')}`);
  checkRanksFit(ranks, modules);
  const profile = [{ id: 0 }];
  ranks.forEach((x) => profile.push({ id: profile[profile.length - 1].id + Math.max(x - 1, 0) }));
  return allocate(profile, modules, { ...o, offset: 1, budget: undefined, budgetLikeRank: undefined });
}

/**
 * The neighbour ratio mu = r2 / r1 of every row of one layer's points, for a bootstrap that draws the
 * same rows in every layer: NaN for a row removed as an exact duplicate of an earlier one (it has no
 * ratio of its own), and null for a layer whose points take fewer than 3 distinct values (idProfile's
 * collapsed layer, dimension 0).
 */
export function ratiosByRow(p: Points, o: IdOptions = {}): Float64Array | null {
  checkPoints(p);
  if (p.n < 3) throw new Error(`TwoNN needs at least 3 points, got ${p.n}`);
  const { points, kept } = dedupe(p);
  if (points.n < 3) return null;
  const { mus } = neighbourRatios(points, o);
  const out = new Float64Array(p.n).fill(NaN);
  kept.forEach((row, i) => { out[row] = mus[i]; });
  return out;
}

export interface RankBootstrapOptions extends IdOptions {
  /** resamples (default 100) */
  samples?: number;
  seed?: number;
  /** the rule's offset (default 1) */
  offset?: number;
  /** error-aware rule: each resample's intervals come from a bootstrap of its own (`inner` resamples) */
  errorAware?: boolean;
  /** resamples of each layer's interval inside every outer resample, error-aware only (default 100) */
  inner?: number;
  level?: number;
}

export interface RankBootstrap {
  /** ranks of blocks 1..L, one row per resample that gave an estimate in every layer */
  ranks: number[][];
  /** d_0..d_L of those resamples */
  ids: number[][];
  /** resamples dropped because some layer's resample was degenerate (every ratio a tie) */
  dropped: number;
}

/**
 * Bootstrap of the GeLoRA ranks: rows (input examples, or tokens under tokens pooling) drawn with
 * replacement, the same rows in every layer, each layer's d recomputed from the drawn rows' ratios,
 * then the rule r_i = max(ceil(d_i - d_{i-1}), 0) + offset. Drawing the same rows in every layer is
 * what a rank needs: it depends on a difference of two layers' estimates, and those share the inputs,
 * so resampling each layer on its own (as the per-layer intervals of idProfile do) would add noise the
 * difference does not have. As in idProfile's interval, the neighbours are not searched again (a drawn
 * row keeps the ratio it has in the whole sample), so the spread is that of the estimate given the
 * neighbour graph. `byRow` is ratiosByRow of every layer 0..L, rows aligned across layers.
 */
export function bootstrapRanks(byRow: (Float64Array | null)[], o: RankBootstrapOptions = {}): RankBootstrap {
  if (byRow.length < 2) throw new Error(`a rank bootstrap needs layers 0..L with L >= 1, got ${byRow.length} layer(s)`);
  const lengths = byRow.filter((r): r is Float64Array => r !== null).map((r) => r.length);
  if (lengths.length === 0) throw new Error('every layer is collapsed (fewer than 3 distinct points): no ratio to resample');
  const N = lengths[0];
  if (lengths.some((n) => n !== N)) throw new Error(`layers have different numbers of rows (${[...new Set(lengths)].join(', ')}); the rows must be the same inputs in every layer`);
  const B = o.samples ?? 100, rng = new Rng(o.seed ?? 0), rows = new Int32Array(N);
  const out: RankBootstrap = { ranks: [], ids: [], dropped: 0 };
  const draw = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N; i++) rows[i] = rng.int(N);
    const profile: { id: number; low: number; high: number }[] = [];
    try {
      byRow.forEach((mu, layer) => {
        if (mu === null) { profile.push({ id: 0, low: 0, high: 0 }); return; }
        let k = 0;
        for (let i = 0; i < N; i++) { const m = mu[rows[i]]; if (!Number.isNaN(m)) draw[k++] = m; }
        const mus = draw.subarray(0, k);
        const id = idFromMus(mus, o).id;
        const ci = o.errorAware ? bootstrapId(mus, { ...o, samples: o.inner ?? 100, seed: (o.seed ?? 0) * 7919 + b * 131 + layer }) : { low: id, high: id };
        profile.push({ id, low: ci.low, high: ci.high });
      });
    } catch (e) {
      if (!/unbounded|at least 2 ratios/.test((e as Error).message)) throw e;
      out.dropped++;
      continue;
    }
    out.ids.push(profile.map((p) => p.id));
    out.ranks.push(geloraRanks(profile, { offset: o.offset ?? 1, errorAware: o.errorAware }));
  }
  return out;
}

export interface RankStability {
  /** per block: the most frequent rank, the share of resamples giving it, and the count of every rank seen */
  blocks: { mode: number; share: number; counts: Record<number, number> }[];
  /** share of resamples in which every block got the same rank */
  uniformShare: number;
  /** the most frequent whole allocation and its share */
  patternMode: number[];
  patternShare: number;
  resamples: number;
}

/** How stable a set of allocations (rows of ranks, e.g. bootstrapRanks' ranks) is, block by block and as a whole. Ties in a mode go to the lower rank. */
export function rankStability(ranks: number[][]): RankStability {
  if (ranks.length === 0) throw new Error('no allocation to summarise');
  const L = ranks[0].length, n = ranks.length;
  if (ranks.some((r) => r.length !== L)) throw new Error('every allocation must have one rank per block');
  const blocks = Array.from({ length: L }, (_, i) => {
    const counts: Record<number, number> = {};
    for (const r of ranks) counts[r[i]] = (counts[r[i]] ?? 0) + 1;
    const mode = Number(Object.keys(counts).sort((a, b) => counts[Number(b)] - counts[Number(a)] || Number(a) - Number(b))[0]);
    return { mode, share: counts[mode] / n, counts };
  });
  const patterns = new Map<string, number>();
  for (const r of ranks) patterns.set(r.join(','), (patterns.get(r.join(',')) ?? 0) + 1);
  const [best, count] = [...patterns].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
  return {
    blocks, uniformShare: ranks.filter((r) => r.every((x) => x === r[0])).length / n,
    patternMode: best.split(',').map(Number), patternShare: count / n, resamples: n,
  };
}
