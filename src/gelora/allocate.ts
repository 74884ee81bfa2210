/**
 * GeLoRA rank allocation (Ed-dib, Datbayev & Aboussalah, EMNLP 2025 Findings, arXiv 2412.09250).
 *
 * Block i (1..L) maps hidden states h_{i-1} to h_i. Its adapted matrices need a rank of at least the
 * growth of intrinsic dimension it produces: r_i = max(ceil(d_i - d_{i-1}), 0) + offset, the same on
 * every adapted matrix of the block, with alpha_i = alphaRatio * r_i so that alpha/r stays constant.
 *
 * Error-aware mode (off by default) uses the largest increase the confidence intervals allow:
 * ceil(high_i - low_{i-1}). Budget mode scales the ranks proportionally until the trainable-parameter
 * count (as PEFT counts it) equals a target, rounding by largest remainder, every rank in [1, cap].
 */

export interface LayerId { id: number; low?: number; high?: number }

export interface RuleOptions {
  /** added to every block's lower bound (default 1, the paper's) */
  offset?: number;
  /** use the upper end of each block's interval of dimension growth */
  errorAware?: boolean;
}

/** Ranks of blocks 1..L from the profile d_0..d_L. */
export function geloraRanks(profile: LayerId[], o: RuleOptions = {}): number[] {
  if (profile.length < 2) throw new Error(`an intrinsic-dimension profile needs d_0 and at least one block, got ${profile.length} values`);
  const offset = o.offset ?? 1;
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`offset must be a non-negative integer, got ${offset}`);
  const ranks: number[] = [];
  for (let i = 1; i < profile.length; i++) {
    const cur = profile[i], prev = profile[i - 1];
    if (!Number.isFinite(prev.id)) throw new Error(`intrinsic dimension of layer ${i - 1} is ${prev.id}`);
    if (!Number.isFinite(cur.id)) throw new Error(`intrinsic dimension of layer ${i} is ${cur.id}`);
    const growth = o.errorAware ? (cur.high ?? cur.id) - (prev.low ?? prev.id) : cur.id - prev.id;
    // tolerate float noise: an increase of 2.0000000001 is 2
    ranks.push(Math.max(Math.ceil(growth - 1e-9), 0) + offset);
  }
  return ranks;
}

export interface BudgetResult {
  ranks: number[];
  /** the parameter count asked for */
  target: number;
  /** the parameter count the ranks give */
  reached: number;
  exact: boolean;
  /** why the target could not be met exactly, when it could not */
  note?: string;
}

/**
 * Scales base ranks so that sum_i cost_i * r_i + fixed equals target, every r_i in [1, cap].
 * cost_i is the parameters one unit of rank costs in block i (sum of in + out over its adapted
 * matrices); fixed is what does not depend on the ranks (modules trained in full).
 */
export function fitBudget(base: number[], cost: number[], target: number, fixed = 0, cap = Infinity): BudgetResult {
  if (base.length !== cost.length) throw new Error(`${base.length} ranks but ${cost.length} block costs`);
  if (!Number.isFinite(target) || target <= 0) throw new Error(`budget must be a positive number of parameters, got ${target}`);
  const L = base.length, units = target - fixed;
  const at = (s: number): number[] => base.map((r) => Math.min(Math.max(s * r, 1), cap));
  const params = (rs: number[]): number => rs.reduce((sum, r, i) => sum + r * cost[i], 0);
  const minP = params(base.map(() => 1)), maxP = Number.isFinite(cap) ? params(base.map(() => cap)) : Infinity;
  if (units < minP) {
    const ranks = base.map(() => 1);
    return { ranks, target, reached: params(ranks) + fixed, exact: false, note: `the smallest allocation (rank 1 everywhere) already needs ${minP + fixed} parameters, ${minP - units} more than the budget` };
  }
  if (units > maxP) {
    const ranks = base.map(() => cap);
    return { ranks, target, reached: maxP + fixed, exact: false, note: `the rank cap ${cap} allows at most ${maxP + fixed} parameters, ${units - maxP} fewer than the budget` };
  }
  // continuous scale by bisection
  let lo = 0, hi = 1;
  while (params(at(hi)) < units && hi < 1e12) hi *= 2;
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    if (params(at(mid)) < units) lo = mid; else hi = mid;
  }
  const x = at(hi);
  const ranks = x.map((v) => Math.max(1, Math.floor(v + 1e-9)));
  let left = units - params(ranks);
  // largest remainder first; repeat while a block still fits what is left
  const order = [...Array(L).keys()].sort((a, b) => (x[b] - Math.floor(x[b])) - (x[a] - Math.floor(x[a])) || a - b);
  let grew = true;
  while (left > 0 && grew) {
    grew = false;
    for (const i of order) {
      if (cost[i] <= left && ranks[i] < cap) { ranks[i]++; left -= cost[i]; grew = true; }
      if (left <= 0) break;
    }
  }
  // with unequal block costs, trade m units of one block for n units of another while that helps
  for (let guard = 0; left > 0 && guard < 10 * L * L; guard++) {
    let best: number[] | null = null, bestGain = 0;
    for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) {
      if (i === j) continue;
      for (let m = 1; m <= 3; m++) for (let n = 1; n <= 3; n++) {
        const gain = n * cost[j] - m * cost[i];
        if (ranks[i] - m >= 1 && ranks[j] + n <= cap && gain > bestGain && gain <= left) { best = [i, j, m, n]; bestGain = gain; }
      }
    }
    if (!best) break;
    ranks[best[0]] -= best[2]; ranks[best[1]] += best[3]; left -= bestGain;
  }
  const reached = params(ranks) + fixed;
  return reached === target
    ? { ranks, target, reached, exact: true }
    : { ranks, target, reached, exact: false, note: `ranks change the count in steps of ${[...new Set(cost)].join(' or ')} parameters; ${target - reached} short of the budget` };
}
