/**
 * Fine-tuning methods: what is trained and how the result is saved.
 *  - lora:   uniform rank r (alpha = alphaRatio * r) on the adaptable modules; PEFT adapter
 *  - gelora: the per-block ranks of a GeLoRA allocation on the same modules; PEFT adapter
 *  - full:   every weight trained; a complete Hugging Face model folder
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.js';
import { blockModules, allocationConfig, type Allocation } from '../gelora/analyze.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { saveAdapter } from '../lora/adapter.js';
import { defaultLoraConfig } from '../lora/config.js';
import { applyLoraConfig, countTrainable } from '../lora/lora.js';
import type { Model } from '../models/model.js';
import type { Task } from './task.js';

export const METHODS = ['gelora', 'lora', 'full'] as const;
export type Method = (typeof METHODS)[number];

export interface Prepared {
  params: Tensor[];
  trainableParams: number;
  /** ranks per block (LoRA methods) */
  ranks: number[] | null;
  /** writes the trained state under dir (adapter/ or model/) and returns that folder */
  save(dir: string): string;
}

export interface MethodOptions {
  r?: number;
  alphaRatio?: number;
  dropout?: number;
  allocation?: Allocation;
  targets?: string[] | null;
  seed?: number;
  baseModel: string;
  task: Task;
}

export function prepareMethod(model: Model, method: Method, o: MethodOptions): Prepared {
  const ratio = o.alphaRatio ?? 2;
  if (method === 'full') {
    const params = model.params.names().map((n) => model.params.get(n));
    for (const p of params) p.requiresGrad = true;
    return { params, trainableParams: params.reduce((s, p) => s + p.size, 0), ranks: null, save: (dir) => saveFullModel(join(dir, 'model'), model, o.baseModel, o.task) };
  }
  const modules = blockModules(model, o.targets ?? null);
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
    save: (dir) => {
      const a = join(dir, 'adapter');
      saveAdapter(a, lm, o.baseModel);
      writeTaskInfo(a, o.task);
      return a;
    },
  };
}

/** The label order and metric a model was trained with, next to its weights (eval reads it back). */
export function writeTaskInfo(dir: string, task: Task): void {
  writeJsonAtomic(join(dir, 'gelora_task.json'), { name: task.name, kind: task.kind, labels: task.labels, metric: task.metric });
}

export function readTaskInfo(dir: string): { name: string; kind: 'classification' | 'regression'; labels: string[]; metric: string } | null {
  const f = join(dir, 'gelora_task.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { name: string; kind: 'classification' | 'regression'; labels: string[]; metric: string }) : null;
}

/** A Hugging Face model folder: config.json (labels updated), model.safetensors, tokenizer files. */
export function saveFullModel(dir: string, model: Model, baseModel: string, task: Task): string {
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of model.params.names()) {
    if (model.params.tied.has(name)) continue;
    const p = model.params.get(name);
    if (model.params.transposed.has(name)) {
      const [r, c] = p.shape, t = new Float32Array(p.size);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = p.data[i * c + j];
      tensors[name] = { shape: [c, r], data: t };
    } else tensors[name] = { shape: [...p.shape], data: Float32Array.from(p.data) };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const labels = task.kind === 'regression' ? ['LABEL_0'] : task.labels;
  writeJsonAtomic(join(dir, 'config.json'), {
    ...model.config, num_labels: labels.length, id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])), ...(task.kind === 'regression' ? { problem_type: 'regression' } : {}),
  });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json', 'merges.txt', 'vocab.json']) {
    if (existsSync(join(baseModel, f))) copyFileSync(join(baseModel, f), join(dir, f));
  }
  writeTaskInfo(dir, task);
  return dir;
}
