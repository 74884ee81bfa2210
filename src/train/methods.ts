/**
 * Fine-tuning methods: what is trained and how the result is saved.
 *  - lora:   uniform rank r (alpha = alphaRatio * r) on the adaptable modules; PEFT adapter
 *  - gelora: the per-block ranks of a GeLoRA allocation on the same modules; PEFT adapter
 *  - full:   every weight trained; a complete Hugging Face model folder
 */
import { copyFileSync, existsSync } from 'node:fs';
import { readJsonObject } from '../io/files.js';
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.js';
import { blockModules, allocationConfig, type Allocation } from '../gelora/analyze.js';
import { writeDirAtomic, writeJsonAtomic } from '../io/atomic.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { defaultLoraConfig, taskHeadParams } from '../lora/config.js';
import { applyLoraConfig, countTrainable, modulesToSaveParams } from '../lora/lora.js';
import { PEFT_PREFIX } from '../lora/peft.js';
import type { Model } from '../models/model.js';
import type { Task } from './task.js';
import type { TrainContext } from './loop.js';
import type { Objective } from './objective.js';
import { sequenceConfigFields, sequenceTaskInfo } from './objectives/sequence.js';
import { ADALORA_DEFAULTS, AdaLoraModel } from '../lora/adalora.js';
import { SoraModel } from '../lora/sora.js';
import { adapterConfigFor, initialisedHeadModules, saveAdapter } from '../lora/adapter.js';
import { transpose, type Linear } from '../models/modules.js';

export const METHODS = ['gelora', 'lora', 'adalora', 'sora', 'full'] as const;
export type Method = (typeof METHODS)[number];

export interface Prepared {
  params: Tensor[];
  /** trainable parameters at the start (PEFT's count) */
  trainableParams: number;
  /** what the method really uses at the end (AdaLoRA's active triplets, SoRA's non-zero gates) */
  finalParams?: () => number;
  hooks?: TrainContext['hooks'];
  /** ranks per block (LoRA methods) */
  ranks: number[] | null;
  /** writes the trained state under dir (adapter/ or model/, a whole folder replacing any earlier one) and returns that folder */
  save(dir: string): string;
}

export interface MethodOptions {
  r?: number;
  /** optimizer steps of the run (AdaLoRA's budget schedule) */
  totalSteps?: number;
  sparseLambda?: number;
  lr?: number;
  alphaRatio?: number;
  dropout?: number;
  allocation?: Allocation;
  targets?: string[] | null;
  seed?: number;
  baseModel: string;
  /** the sequence task (its labels and metric are saved unless `saved` is given; objectives other than sequence tasks give `saved` alone) */
  task?: Task;
  /** what the objective saves next to the weights (Objective.saved); default: the sequence task's labels and metric */
  saved?: SavedInfo;
}

type SavedInfo = NonNullable<Objective['saved']>;
const savedOf = (o: MethodOptions): SavedInfo => {
  if (o.saved) return o.saved;
  if (!o.task) throw new Error('prepareMethod: give the sequence task, or what the objective saves');
  return { info: sequenceTaskInfo(o.task), config: sequenceConfigFields(o.task) };
};

/** What identifies a method's run for resume: a checkpoint written with other options is refused. */
function methodFingerprint(method: Method, o: MethodOptions): Record<string, unknown> {
  const lora = method !== 'full';
  return {
    method, base_model: o.baseModel, seed: o.seed ?? 0,
    ...(lora ? { targets: o.targets ?? 'default', alpha_ratio: o.alphaRatio ?? 2, lora_dropout: o.dropout ?? 0 } : {}),
    ...(method === 'lora' || method === 'adalora' || method === 'sora' ? { r: o.r ?? 8 } : {}),
    ...(method === 'gelora' && o.allocation ? { ranks: o.allocation.ranks } : {}),
    ...(method === 'sora' ? { sparse_lambda: o.sparseLambda ?? 3e-4 } : {}),
    ...(method === 'adalora' ? { total_steps: o.totalSteps ?? 1 } : {}),
  };
}

export function prepareMethod(model: Model, method: Method, o: MethodOptions): Prepared {
  const p = prepareMethodState(model, method, o);
  return { ...p, hooks: { ...p.hooks, fingerprint: methodFingerprint(method, o) } };
}

function prepareMethodState(model: Model, method: Method, o: MethodOptions): Prepared {
  const ratio = o.alphaRatio ?? 2;
  if (method === 'full') {
    const params = model.params.names().map((n) => model.params.get(n));
    for (const p of params) p.requiresGrad = true;
    return { params, trainableParams: params.reduce((s, p) => s + p.size, 0), ranks: null, save: (dir) => saveFullModel(join(dir, 'model'), model, o.baseModel, savedOf(o)) };
  }
  const modules = blockModules(model, o.targets ?? null);
  if (method === 'adalora' || method === 'sora') return prepareAdaptive(model, method, modules.map((m) => model.linears().find((l) => l.name === m.name)!), o);
  let config;
  if (method === 'lora') {
    const r = o.r ?? 8;
    config = defaultLoraConfig(model, { r, lora_alpha: ratio * r, lora_dropout: o.dropout ?? 0, target_modules: modules.map((m) => m.name) });
  } else {
    if (!o.allocation) throw new Error('method gelora needs an allocation (run gelora analyze, or give --ranks)');
    config = allocationConfig(model, o.allocation, { lora_dropout: o.dropout ?? 0 });
  }
  const lm = applyLoraConfig(model, config, o.seed ?? 0);
  const L = model.numLayers;
  const ranks = Array.from({ length: L }, (_, i) => lm.resolution.modules.find((m) => model.blockOf(m.linear.name) === i + 1)?.r ?? 0);
  return {
    params: lm.trainable, trainableParams: countTrainable(lm), ranks,
    save: (dir) => writeDirAtomic(join(dir, 'adapter'), (a) => {
      saveAdapter(a, lm, o.baseModel);
      writeTaskInfo(a, savedOf(o));
    }),
  };
}

/** gelora_task.json: what the model was trained for (label order, metric), next to its weights (eval reads it back). */
export function writeTaskInfo(dir: string, saved: SavedInfo): void {
  writeJsonAtomic(join(dir, 'gelora_task.json'), saved.info);
}

export function readTaskInfo(dir: string): { name: string; kind: 'classification' | 'regression'; labels: string[]; metric: string } | null {
  const f = join(dir, 'gelora_task.json');
  return existsSync(f) ? (readJsonObject(f) as unknown as { name: string; kind: 'classification' | 'regression'; labels: string[]; metric: string }) : null;
}

/** A Hugging Face model folder: config.json (labels updated), model.safetensors, tokenizer files; written as a whole. */
export function saveFullModel(dir: string, model: Model, baseModel: string, saved: SavedInfo): string {
  return writeDirAtomic(dir, (tmp) => fillFullModel(tmp, model, baseModel, saved));
}

function fillFullModel(dir: string, model: Model, baseModel: string, saved: SavedInfo): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of model.params.names()) {
    if (model.params.tied.has(name)) continue;
    const p = model.params.get(name);
    if (model.params.transposed.has(name)) {
      const [r, c] = p.shape;
      tensors[name] = { shape: [c, r], data: transpose(p.toFloat32(), r, c) };
    } else tensors[name] = { shape: [...p.shape], data: p.toFloat32() };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeJsonAtomic(join(dir, 'config.json'), { ...model.config, ...saved.config });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json', 'merges.txt', 'vocab.json']) {
    if (existsSync(join(baseModel, f))) copyFileSync(join(baseModel, f), join(dir, f));
  }
  writeTaskInfo(dir, saved);
}

/**
 * AdaLoRA (target_r = the budget rank r, init_r = 1.5 r as PEFT's defaults 12/8, tinit 10% and tfinal
 * 20% of the steps, deltaT 10, orth_reg_weight 0.5) or SoRA (r_max = r gates, SparseAdamW lambda: it starts at
 * the budget and its gates can only prune, as the SoRA and GeLoRA papers compare it with LoRA at the same r).
 */
function prepareAdaptive(model: Model, method: 'adalora' | 'sora', targets: Linear[], o: MethodOptions): Prepared {
  const r = o.r ?? 8, ratio = o.alphaRatio ?? 2, total = o.totalSteps ?? 1;
  const head = taskHeadParams(model).map((n) => model.params.get(n));
  for (const p of head) p.requiresGrad = true;
  const headSize = head.reduce((s, p) => s + p.size, 0);
  // head weights the loader initialised outside the trained head (a checkpoint without a pooler):
  // saved with the adapter, as LoRA's are, so that the adapter folder alone reproduces predictions
  const headModules = [...new Set(head.map((p) => p.name.slice(0, p.name.lastIndexOf('.'))))];
  const extraSaved = initialisedHeadModules(model, headModules), saved = [...head, ...modulesToSaveParams(model, extraSaved)];
  if (method === 'adalora') {
    const cfg = { ...ADALORA_DEFAULTS, init_r: Math.round(1.5 * r), target_r: r, lora_alpha: ratio * r, lora_dropout: o.dropout ?? 0,
      tinit: Math.floor(0.1 * total), tfinal: Math.floor(0.2 * total), deltaT: 10, total_step: total };
    const ada = new AdaLoraModel(model, cfg, targets, o.seed ?? 0);
    const params = [...ada.params(), ...head];
    return {
      params, trainableParams: params.reduce((s, p) => s + p.size, 0), ranks: null,
      finalParams: () => ada.effectiveParams() + headSize,
      hooks: { regularizer: () => ada.regularizer(), afterUpdate: (step) => { ada.updateAndAllocate(step); }, state: { save: () => ada.saveState(), load: (read, j) => ada.loadState(read, j) }, selectFrom: cfg.total_step - cfg.tfinal },
      save: (dir) => writeDirAtomic(join(dir, 'adapter'), (a) => {
        const lc = defaultLoraConfig(model);
        ada.save(a, o.baseModel, saved, lc.task_type, adapterConfigFor(lc, [], o.baseModel, extraSaved));
        writeTaskInfo(a, savedOf(o));
      }),
    };
  }
  const sora = new SoraModel(targets, { r, lora_alpha: ratio * r, lora_dropout: o.dropout ?? 0, sparse_lambda: o.sparseLambda ?? 3e-4, lr: o.lr ?? 1e-3, weight_decay: 0 }, o.seed ?? 0);
  const params = [...sora.params(), ...head];
  return {
    params, trainableParams: params.reduce((s, p) => s + p.size, 0) + sora.gates().reduce((s, g) => s + g.size, 0), ranks: null,
    finalParams: () => sora.effectiveParams() + headSize,
    hooks: { afterUpdate: (_step, lr) => sora.updateGates(lr), state: { save: () => sora.saveState(), load: (read, j) => sora.loadState(read, j) }, selectFrom: total },
    save: (dir) => writeDirAtomic(join(dir, 'adapter'), (a) => {
      // exported as plain LoRA with the surviving ranks; the gates are folded into A
      const exp = sora.exportLora(ratio);
      const lc = defaultLoraConfig(model, { lora_alpha: ratio, r: 1 });
      writeSafetensors(join(a, 'adapter_model.safetensors'), Object.fromEntries([
        ...exp.modules.flatMap((m) => [[`${PEFT_PREFIX}${m.name}.lora_A.weight`, { shape: [m.r, m.inF], data: m.A }], [`${PEFT_PREFIX}${m.name}.lora_B.weight`, { shape: [m.outF, m.r], data: m.B }]]),
        ...saved.map((p) => [`${PEFT_PREFIX}${p.name}`, { shape: [...p.shape], data: p.toFloat32() }]),
      ]), { format: 'pt' });
      writeJsonAtomic(join(a, 'adapter_config.json'), adapterConfigFor(lc, exp.modules, o.baseModel, extraSaved));
      writeTaskInfo(a, savedOf(o));
    }),
  };
}
