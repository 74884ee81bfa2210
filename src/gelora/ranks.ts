/**
 * Ranks a user gives (train's --ranks shortcut) and the limits every allocation respects: a LoRA
 * pair A [r, in], B [out, r] adds nothing beyond r = min(in, out) (the update B A has at most that
 * rank), so no block gets more, and a budget the largest such adapter cannot reach is refused
 * before any work (hidden states, training) starts.
 */
import type { Model } from '../models/model.js';
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
