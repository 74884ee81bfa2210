/**
 * The GeLoRA analysis: run the frozen model over task inputs, pool every layer's hidden states into
 * points, estimate the intrinsic-dimension profile d_0..d_L with error bars, and turn it into
 * per-block LoRA ranks (optionally scaled to a parameter budget), written as a PEFT config.
 */
import { Rng } from '../engine/random.js';
import { noGrad, scope } from '../engine/tensor.js';
import type { Points } from '../id/knn.js';
import { idProfile, idProfileOf, LayerPoints, poolPlan, type LayerEstimate, type Pooling } from '../id/pooling.js';
import { kernels } from '../engine/backend.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { sampleWithoutReplacement, type IdMethod, type IdOptions } from '../id/twonn.js';
import { padBatch, type TextTokenizer } from '../io/tokenizer.js';
import type { AdaptedModule } from '../lora/adapter.js';
import { readText } from '../io/files.js';
import { allLinearTargets, defaultLoraConfig, isTarget, loraConfigForType, taskHeadParams, type LoraConfig } from '../lora/config.js';
import { createModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { COMMON_BLOCK_PATTERN, MODEL_TYPES, findFamily } from '../models/registry.js';
import { fitBudget, geloraRanks, type BudgetResult } from './allocate.js';

export interface CollectOptions {
  samples?: number;
  pooling?: Pooling;
  excludeSpecial?: boolean;
  /** tokens pooling: about this many tokens in total */
  maxTokens?: number;
  maxLength?: number;
  /** sequences per forward pass (default: autoBatchSize) */
  batchSize?: number;
  seed?: number;
  onBatch?: (done: number, total: number) => void;
}

/**
 * The analysis' default batch: 16 sequences, fewer where a batch's widest activation (the
 * feed-forward's [B, T, intermediate_size]) would pass 2^23 values (32 MB): a Llama-3.2-1B shape
 * (8,192 wide) at 128 tokens gets 8, which keeps its analysis under 3 GB with 2.5 GB of bf16 weights
 * (bench memory --config llama1b). Encoders up to BERT-base at 128 tokens keep 16.
 */
export function autoBatchSize(model: Model, tokens: number): number {
  const widest = Math.max(model.hiddenSize, Number(model.config.intermediate_size ?? 4 * model.hiddenSize));
  return Math.max(1, Math.min(16, Math.floor(2 ** 23 / (Math.max(tokens, 1) * widest))));
}

/** Pooled points of every layer (hidden_states.0..L) for a seeded sample of the examples. */
export function collectLayerPoints(model: Model, tok: TextTokenizer, examples: { text: string; pair?: string }[], o: CollectOptions = {}): { layers: Points[]; sequences: number } {
  const rng = new Rng(o.seed ?? 0);
  const n = Math.min(o.samples ?? 2000, examples.length);
  if (n < 3) throw new Error(`intrinsic dimension needs at least 3 examples, got ${examples.length}`);
  const picked = n < examples.length ? Array.from(sampleWithoutReplacement(examples.length, n, rng), (i) => examples[i]) : examples;
  const enc = picked.map((e) => tok.encode(e.text, e.pair ?? null, { maxLength: o.maxLength ?? 128 }));
  // length-sorted batches waste less on padding; the order of points does not matter to TwoNN
  const order = [...enc.keys()].sort((a, b) => enc[a].ids.length - enc[b].ids.length);
  const pooling = o.pooling ?? 'mean';
  const exclude = o.excludeSpecial ?? true ? tok.specialIds : undefined;
  let keepProb = 1;
  if (pooling === 'tokens') {
    const total = enc.reduce((s, e) => s + e.ids.filter((id) => !exclude?.has(id)).length, 0);
    keepProb = Math.min(1, (o.maxTokens ?? 10000) / Math.max(total, 1));
  }
  const bs = o.batchSize ?? autoBatchSize(model, Math.max(...enc.map((e) => e.ids.length))), collector = new LayerPoints(model.numLayers + 1, model.hiddenSize);
  const batches = Math.ceil(order.length / bs);
  for (let b = 0; b < batches; b++) {
    const idx = order.slice(b * bs, (b + 1) * bs);
    const x = padBatch(idx.map((i) => enc[i].ids), idx.map((i) => enc[i].typeIds), tok.padId);
    const plan = poolPlan(x.attentionMask, x.inputIds, x.batch, x.seq, { mode: pooling, excludeIds: exclude, keepProb, rng });
    noGrad(() => scope(() => {
      // a causal LM's vocab-sized logits are not needed; each layer is pooled as it comes and released
      // (I/O boundary: pooled into the point sets in place; toFloat32 would copy every layer)
      model.forward(x, { logits: false, onHidden: (l, h) => collector.add(l, h.data as Float32Array, plan) });
    }));
    o.onBatch?.(b + 1, batches);
  }
  return { layers: Array.from({ length: model.numLayers + 1 }, (_, l) => collector.points(l)), sequences: picked.length };
}

/**
 * The profile of a file of pooled hidden states hidden_states.0..L ([N, D] each, from any runtime),
 * read one layer at a time: a 7B model's 33 layers of 5,000 x 4,096 F16 states are 1.35 GB on disk
 * and 2.7 GB as float32, but only one layer's points are in memory at once. F16/BF16 tensors are
 * widened by the native kernel (exact), the rest by the safetensors decoder.
 */
export function hiddenStatesProfile(file: string, o: IdOptions & { bootstrap?: number; seed?: number; onLayer?: (l: number, total: number) => void } = {}): { profile: LayerEstimate[]; points: number; dim: number } {
  const f = new SafetensorsFile(file);
  try {
    const names = f.names().filter((n) => /^hidden_states\.\d+$/.test(n)).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    names.forEach((n, i) => { if (n !== `hidden_states.${i}`) throw new Error(`${file}: hidden_states.${i} is missing (it has ${names.join(', ')})`); });
    if (names.length < 2) throw new Error(`${file}: needs hidden_states.0 .. hidden_states.L (pooled [N, D] each)`);
    for (const n of names) {
      const { shape } = f.info(n);
      if (shape.length !== 2) throw new Error(`${file}:${n} has shape [${shape}]; points need a 2-D tensor [N, D] (pool token states first)`);
    }
    const t = o.timings;
    const layer = (l: number): { data: Float32Array; n: number; dim: number } => {
      const t0 = performance.now(), info = f.info(names[l]), [n, dim] = info.shape;
      let data: Float32Array;
      if (info.dtype === 'F16' || info.dtype === 'BF16') {
        const bytes = f.readBytes(names[l]);
        const half = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n * dim) : new Uint16Array(Uint8Array.from(bytes).buffer);
        data = new Float32Array(n * dim);
        kernels().halfToFloat(data, 0, half, 0, n * dim, info.dtype === 'BF16');
      } else data = f.read(names[l]).data;
      if (t) t.read = (t.read ?? 0) + (performance.now() - t0) / 1000;
      return { data, n, dim };
    };
    const [points, dim] = f.info(names[0]).shape;
    const profile = idProfileOf(names.length, layer, { ...o, onLayer: (l) => o.onLayer?.(l, names.length) });
    return { profile, points, dim };
  } finally {
    f.close();
  }
}

/** A Linear that GeLoRA adapts: its block (1..L) and, when known, its size. */
export interface BlockModule { name: string; block: number; inF?: number; outF?: number }

/** The adaptable modules of a model: every Linear inside a block (attention and feed-forward) by default. */
export function blockModules(model: Model, targets?: string[] | string | null): BlockModule[] {
  const wanted = targets === 'all-linear' ? allLinearTargets(model) : targets;
  return model.linears()
    .filter((l) => (wanted ? isTarget(l.name, wanted) : true))
    .map((l) => ({ name: l.name, block: model.blockOf(l.name) ?? 0, inF: l.inFeatures, outF: l.outFeatures }))
    .filter((m) => m.block > 0);
}

/** Block modules from "name [in out]" lines (e.g. dumped from PyTorch's named_modules()); lines outside a numbered block are skipped. */
export function readModuleList(file: string): BlockModule[] {
  const mods: BlockModule[] = [];
  readText(file).split(/\r?\n/).forEach((line, i) => {
    const parts = line.trim().split(/\s+/).filter(Boolean);
    if (parts.length === 0 || parts[0].startsWith('#')) return;
    const m = COMMON_BLOCK_PATTERN.exec(parts[0]);
    if (!m) return; // not inside a block (embeddings, heads)
    if (parts.length !== 1 && parts.length !== 3) throw new Error(`${file}:${i + 1}: expected "module_name" or "module_name in_features out_features"`);
    const [inF, outF] = parts.length === 3 ? [Number(parts[1]), Number(parts[2])] : [undefined, undefined];
    if (parts.length === 3 && !(Number.isInteger(inF) && Number.isInteger(outF))) throw new Error(`${file}:${i + 1}: sizes must be integers`);
    mods.push({ name: parts[0], block: Number(m[1]) + 1, inF, outF });
  });
  if (mods.length === 0) throw new Error(`${file}: no module inside a numbered layer (names like model.layers.0.self_attn.q_proj)`);
  return mods;
}

/**
 * The adaptable module names of a registered model type with L blocks, without a checkpoint: block 1
 * of the family's tiny config, renumbered along its block pattern (sizes unknown: they are the tiny ones).
 */
export function standardModules(type: string, layers: number): BlockModule[] {
  const family = findFamily(type);
  if (!family) throw new Error(`--model-type ${type} is not one of ${MODEL_TYPES.join(', ')}`);
  const block1 = blockModules(createModel(family.tinyConfig)).map((m) => m.name);
  const out: BlockModule[] = [];
  for (let i = 0; i < layers; i++) {
    for (const n of block1) {
      const m = family.blockPattern.exec(n)!;
      const at = m.index + m[0].lastIndexOf(m[1]);
      out.push({ name: `${n.slice(0, at)}${i}${n.slice(at + m[1].length)}`, block: i + 1 });
    }
  }
  return out;
}

/** The LoraConfig behind an analysis from hidden states of a model type (null: a module list of any runtime). */
export function hiddenStatesLoraConfig(type: string | null): LoraConfig {
  return loraConfigForType(type, { r: 1, lora_alpha: 2 });
}

export interface AllocateOptions {
  offset?: number;
  alphaRatio?: number;
  errorAware?: boolean;
  /** a target number of trainable parameters (LoRA + modules trained in full, as PEFT counts) */
  budget?: number;
  /** the budget of uniform LoRA at this rank on the same modules */
  budgetLikeRank?: number;
  maxRank?: number;
  /** parameters trained in full next to LoRA (modules_to_save) */
  fixedParams?: number;
}

export interface Allocation {
  ranks: number[];
  alphas: number[];
  modules: AdaptedModule[];
  /** rule ranks before any budget scaling */
  ruleRanks: number[];
  budget: (BudgetResult & { likeRank?: number }) | null;
  /** LoRA parameters r (in + out) summed, when module sizes are known */
  loraParams: number | null;
}

export function allocate(profile: LayerEstimate[] | { id: number; low?: number; high?: number }[], modules: BlockModule[], o: AllocateOptions = {}): Allocation {
  const L = profile.length - 1;
  const ruleRanks = geloraRanks(profile, { offset: o.offset ?? 1, errorAware: o.errorAware });
  for (const m of modules) if (m.block < 1 || m.block > L) throw new Error(`module ${m.name} is in block ${m.block}, but the profile covers blocks 1..${L}`);
  let ranks = ruleRanks.map((r) => Math.min(r, o.maxRank ?? Infinity));
  const sized = modules.every((m) => m.inF !== undefined && m.outF !== undefined);
  const cost = Array.from({ length: L }, (_, i) => modules.filter((m) => m.block === i + 1).reduce((s, m) => s + (m.inF ?? 0) + (m.outF ?? 0), 0));
  let budget: Allocation['budget'] = null;
  if (o.budget !== undefined || o.budgetLikeRank !== undefined) {
    if (!sized) throw new Error('budget mode needs the sizes of the adapted modules (give a model, a config, or a module list with sizes)');
    const fixed = o.fixedParams ?? 0;
    const target = o.budget ?? (o.budgetLikeRank! * cost.reduce((a, b) => a + b, 0) + fixed);
    budget = { ...fitBudget(ranks, cost, target, fixed, o.maxRank ?? Infinity), ...(o.budgetLikeRank !== undefined ? { likeRank: o.budgetLikeRank } : {}) };
    ranks = budget.ranks;
  }
  const ratio = o.alphaRatio ?? 2;
  const alphas = ranks.map((r) => ratio * r);
  const adapted = modules.filter((m) => ranks[m.block - 1] > 0).map((m) => ({ name: m.name, r: ranks[m.block - 1], alpha: alphas[m.block - 1] }));
  const loraParams = sized ? modules.reduce((s, m) => s + ranks[m.block - 1] * (m.inF! + m.outF!), 0) : null;
  return { ranks, alphas, modules: adapted, ruleRanks, budget, loraParams };
}

/** The LoraConfig that trains exactly this allocation. */
export function allocationConfig(model: Model, a: Allocation, over: Partial<LoraConfig> = {}): LoraConfig {
  const rank_pattern: Record<string, number> = {}, alpha_pattern: Record<string, number> = {};
  for (const m of a.modules) { rank_pattern[m.name] = m.r; alpha_pattern[m.name] = m.alpha; }
  return defaultLoraConfig(model, { target_modules: a.modules.map((m) => m.name), rank_pattern, alpha_pattern, r: a.modules[0]?.r ?? 1, lora_alpha: a.modules[0]?.alpha ?? 2, ...over });
}

/** Parameters of the modules a SEQ_CLS adapter trains in full (PEFT's modules_to_save). */
export function fixedTrainableParams(model: Model): number {
  return taskHeadParams(model).reduce((s, n) => s + model.params.get(n).size, 0);
}

export interface GeloraReport {
  gelora: string;
  model: { path: string | null; type: string; layers: number; hidden: number };
  data: Record<string, unknown>;
  id: { method: IdMethod; discard: number; bootstrap: number };
  profile: LayerEstimate[];
  rule: { offset: number; alpha_ratio: number; error_aware: boolean; max_rank: number | null };
  ranks: number[];
  alphas: number[];
  rule_ranks: number[];
  budget: Allocation['budget'];
  trainable_params: number | null;
  modules: Record<string, { block: number; r: number; alpha: number }>;
  /** wall time of the analysis (hidden states, profile, allocation) where it was measured */
  seconds?: number;
}

export function buildReport(args: {
  modelPath: string | null; modelType: string; hidden: number; profile: LayerEstimate[]; alloc: Allocation; modules: BlockModule[];
  data: Record<string, unknown>; method: IdMethod; discard: number; bootstrap: number; allocOpts: AllocateOptions; fixed: number | null;
}): GeloraReport {
  const { alloc } = args;
  const blockOf = new Map(args.modules.map((m) => [m.name, m.block]));
  return {
    gelora: '0.1.0',
    model: { path: args.modelPath, type: args.modelType, layers: args.profile.length - 1, hidden: args.hidden },
    data: args.data,
    id: { method: args.method, discard: args.discard, bootstrap: args.bootstrap },
    profile: args.profile,
    rule: { offset: args.allocOpts.offset ?? 1, alpha_ratio: args.allocOpts.alphaRatio ?? 2, error_aware: Boolean(args.allocOpts.errorAware), max_rank: args.allocOpts.maxRank ?? null },
    ranks: alloc.ranks, alphas: alloc.alphas, rule_ranks: alloc.ruleRanks, budget: alloc.budget,
    trainable_params: alloc.loraParams === null ? null : alloc.loraParams + (args.fixed ?? 0),
    modules: Object.fromEntries(alloc.modules.map((m) => [m.name, { block: blockOf.get(m.name)!, r: m.r, alpha: m.alpha }])),
  };
}


export interface TaskAnalysisOptions {
  modelPath: string;
  taskName: string;
  modules: BlockModule[];
  allocOpts: AllocateOptions;
  samples?: number;
  maxLength?: number;
  seed?: number;
  onBatch?: (done: number, total: number) => void;
}

/**
 * The analysis `gelora train` and `gelora compare` run before training: mean-pooled hidden states of a
 * seeded sample of the training inputs, the TwoNN fit profile with 100 bootstrap resamples, the
 * allocation. Its wall time is part of the report, since it is part of GeLoRA's cost.
 */
export function analyzeTask(model: Model, tok: TextTokenizer, examples: { text: string; pair?: string }[], o: TaskAnalysisOptions): { report: GeloraReport; alloc: Allocation } {
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const { layers, sequences } = collectLayerPoints(model, tok, examples, { samples: o.samples, maxLength: o.maxLength, seed, onBatch: o.onBatch });
  const profile = idProfile(layers, { bootstrap: 100, seed });
  const alloc = allocate(profile, o.modules, o.allocOpts);
  const seconds = (performance.now() - t0) / 1000;
  const report = buildReport({
    modelPath: o.modelPath, modelType: model.type, hidden: model.hiddenSize, profile, alloc, modules: o.modules,
    data: { task: o.taskName, sequences, points: layers[0].n }, method: 'fit', discard: 0.1, bootstrap: 100, allocOpts: o.allocOpts, fixed: o.allocOpts.fixedParams ?? null,
  });
  return { report: { ...report, seconds }, alloc };
}
