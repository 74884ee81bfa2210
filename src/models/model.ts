/**
 * What every architecture provides: transformers' state-dict names, every hidden state, a head, and
 * the Linear modules that LoRA adapts (by their full module path, as PEFT users name them).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.js';
import type { Linear, ParamStore } from './modules.js';

export const MODEL_TYPES = ['bert', 'roberta', 'distilbert', 'deberta-v2', 'gpt2', 'llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma3_text'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];
export type Task = 'seq-cls' | 'causal-lm';

export interface ModelInputs {
  /** [batch, seq] token ids, row-major */
  inputIds: Int32Array;
  /** [batch, seq] 1 for tokens, 0 for padding */
  attentionMask: ArrayLike<number>;
  tokenTypeIds?: Int32Array;
  batch: number;
  seq: number;
}

export interface ModelOutput {
  /** hidden_states.0 (embedding output) .. hidden_states.L, each [B, T, H], as transformers returns them */
  hiddenStates: Tensor[];
  /** [B, num_labels] for sequence classification, [B, T, vocab] for causal LM */
  logits: Tensor;
}

export interface Model {
  readonly type: ModelType;
  readonly task: Task;
  readonly config: HfConfig;
  readonly params: ParamStore;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numLabels: number;
  forward(x: ModelInputs, opts?: { keepHidden?: boolean }): ModelOutput;
  /** every Linear by module name, blocks first, heads last */
  linears(): Linear[];
  /** the block (1..L) a module path belongs to; null for embeddings and heads */
  blockOf(moduleName: string): number | null;
  /** modules of the task head, trained in full next to LoRA (PEFT's modules_to_save) */
  readonly headModules: string[];
  /** the prefix of backbone weights ("bert", "model", ...) */
  readonly backbonePrefix: string;
  /** module names PEFT targets by default for this model type */
  readonly defaultLoraTargets: string[];
}

/** config.json as transformers wrote it. */
export type HfConfig = Record<string, unknown> & { model_type: string };

export function readConfig(dir: string): HfConfig {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (a Hugging Face model folder has config.json, model.safetensors and tokenizer.json)`);
  let c: unknown;
  try {
    c = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${file}: not a JSON object`);
  const cfg = c as HfConfig;
  if (typeof cfg.model_type !== 'string') throw new Error(`${file}: has no "model_type"; supported: ${MODEL_TYPES.join(', ')}`);
  if (!(MODEL_TYPES as readonly string[]).includes(cfg.model_type)) {
    throw new Error(`${file}: model_type "${cfg.model_type}" is not supported; supported: ${MODEL_TYPES.join(', ')} (DeBERTa-v3 checkpoints use deberta-v2)`);
  }
  return cfg;
}

/** Typed access to config fields with transformers' defaults and clear errors. */
export class ConfigReader {
  constructor(readonly c: HfConfig, readonly file = 'config.json') {}

  num(key: string, dflt?: number): number {
    const v = this.c[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new Error(`${this.file}: missing "${key}" (needed by ${this.c.model_type})`);
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${this.file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  int(key: string, dflt?: number): number {
    const v = this.num(key, dflt);
    if (!Number.isInteger(v)) throw new Error(`${this.file}: "${key}" must be an integer, got ${v}`);
    return v;
  }

  str(key: string, dflt?: string): string {
    const v = this.c[key];
    if (v === undefined || v === null) {
      if (dflt === undefined) throw new Error(`${this.file}: missing "${key}" (needed by ${this.c.model_type})`);
      return dflt;
    }
    if (typeof v !== 'string') throw new Error(`${this.file}: "${key}" must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.c[key];
    return v === undefined || v === null ? dflt : Boolean(v);
  }

  /** num_labels, or the size of id2label, or 2 (transformers' default). */
  numLabels(): number {
    if (typeof this.c.num_labels === 'number') return this.c.num_labels;
    const m = this.c.id2label;
    if (m && typeof m === 'object') return Object.keys(m).length;
    return 2;
  }

  /** seq-cls when the saved architecture is a *ForSequenceClassification, else causal-lm for decoders. */
  task(decoder: boolean): Task {
    const arch = Array.isArray(this.c.architectures) ? String(this.c.architectures[0] ?? '') : '';
    if (!decoder) return 'seq-cls';
    return arch.endsWith('ForSequenceClassification') ? 'seq-cls' : 'causal-lm';
  }
}

/** Block index from a module path: the number after the layer container (layer.3 / layers.3 / h.3) plus one. */
export function blockFromPath(name: string, container: RegExp): number | null {
  const m = container.exec(name);
  return m ? Number(m[1]) + 1 : null;
}

/** Positions of the last non-pad token per row, as transformers' *ForSequenceClassification decoders pick them. */
export function lastTokenPositions(x: ModelInputs, padTokenId: number | null): Int32Array {
  const pos = new Int32Array(x.batch);
  for (let b = 0; b < x.batch; b++) {
    let last = x.seq - 1;
    if (padTokenId !== null) {
      last = -1;
      for (let t = 0; t < x.seq; t++) if (x.inputIds[b * x.seq + t] !== padTokenId) last = t;
      if (last < 0) last = 0;
    }
    pos[b] = b * x.seq + last;
  }
  return pos;
}
