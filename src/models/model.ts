/**
 * What every architecture provides: transformers' state-dict names, every hidden state, a head, and
 * the Linear modules that LoRA adapts (by their full module path, as PEFT users name them).
 */
import * as op from '../engine/ops.js';
import { blockScope, recording, type Tensor } from '../engine/tensor.js';
import type { Linear, ParamStore } from './modules.js';

/** A config.json model_type (see MODEL_TYPES in registry.ts for the supported ones). */
export type ModelType = string;
/**
 * What a model is built for (its head), not the training task (src/train/task.ts). seq-cls: [B,
 * num_labels] logits; causal-lm: [B, T, vocab]; qa: [B, T, 2] start/end logits (models/qa.ts).
 */
export type ModelTask = 'seq-cls' | 'causal-lm' | 'qa';

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
  readonly task: ModelTask;
  readonly config: HfConfig;
  readonly params: ParamStore;
  readonly numLayers: number;
  readonly hiddenSize: number;
  /** the head's width: num_labels for sequence classification, 2 (start, end) for QA, vocab_size for a causal LM */
  readonly outputSize: number;
  /**
   * logits false: the decoders (causal LM) skip their head, whose [B, T, vocab] logits would outweigh
   * every hidden state (the GeLoRA analysis reads only those); logits then holds the last hidden state.
   */
  forward(x: ModelInputs, opts?: ForwardOptions): ModelOutput;
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

/**
 * One architecture family: what the registry (registry.ts) needs to read its config.json, build it,
 * and tell LoRA and GeLoRA its module names. Each family file exports one; registry.ts lists them.
 */
export interface ModelFamily {
  /** the config.json model_type values this family reads */
  readonly modelTypes: readonly string[];
  /** a causal decoder (its default task is causal-lm) or a bidirectional encoder */
  readonly decoder: boolean;
  /** the prefix of backbone weights in state dicts ("bert", "model", "transformer", ...) */
  readonly backbonePrefix: string;
  /** the block container in module paths, the block index (0-based) as group 1: /\.encoder\.layer\.(\d+)\./ */
  readonly blockPattern: RegExp;
  /** module names of the task heads outside the backbone, per task */
  readonly headModules: Readonly<Partial<Record<ModelTask, readonly string[]>>>;
  /** target_modules PEFT picks for this model_type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) */
  readonly loraTargets: readonly string[];
  /** weights stored (fan_in, fan_out), as GPT-2's Conv1D: PEFT's fan_in_fan_out */
  readonly fanInFanOut: boolean;
  /** the smallest valid config.json of the family: module names without a checkpoint (analyze --model-type) */
  readonly tinyConfig: HfConfig;
  /** builds the model (zero weights) from a validated config.json */
  create(config: HfConfig, task?: ModelTask): Model;
}

/** config.json as transformers wrote it. */
export type HfConfig = Record<string, unknown> & { model_type: string };

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

  /** A positive finite number (an epsilon, rope_theta, a scaling factor). */
  positive(key: string, dflt?: number): number {
    const v = this.num(key, dflt);
    if (!(v > 0)) throw new Error(`${this.file}: "${key}" must be a positive number, got ${v}`);
    return v;
  }

  /** A size: a positive integer. */
  size(key: string, dflt?: number): number {
    const v = this.int(key, dflt);
    if (v < 1) throw new Error(`${this.file}: "${key}" must be a positive integer, got ${v}`);
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
  task(decoder: boolean): ModelTask {
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

/** Rows `positions` (flat b * T + t) of a [B, T, C] hidden state, as [positions.length, C]; gradients flow back to h. */
export function gatherPositions(h: Tensor, positions: Int32Array): Tensor {
  const [B, T, C] = h.shape;
  return op.embedding(op.reshape(h, [B * T, C]), positions, [positions.length]);
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

/**
 * A hidden state or logits that is not finite is an error naming where it appeared: finite weights can
 * still overflow float32 (values near 3e38 give inf, then NaN), and a NaN must not pass silently into
 * an intrinsic dimension, a prediction or a metric. One pass over the values.
 */
export function checkFinite(t: Tensor, what: string): void {
  const i = t.firstNonFinite();
  if (i < 0) return;
  const v = t.toFloat32()[i], H = t.shape[t.shape.length - 1], row = Math.floor(i / H);
  throw new Error(`${what} holds ${v} (row ${row}, feature ${i % H} of [${t.shape}]): the weights that feed it overflow float32 or are damaged (while training: the learning rate is too high)`);
}

/** Options of Model.forward. */
export interface ForwardOptions {
  /** return hidden_states.0 .. L (default true) */
  keepHidden?: boolean;
  /** false: a decoder skips its head (see Model.forward) */
  logits?: boolean;
  /**
   * Each hidden state k = 0 .. L (transformers' numbering) handed over as soon as it exists, checked
   * finite, and released after the next block when no gradient is recorded: a consumer that pools
   * them (GeLoRA's analysis) holds one layer at a time instead of all L + 1 (17 x 16 MB for a 1B
   * decoder at 16 x 128 tokens). hiddenStates is then empty.
   */
  onHidden?: (k: number, h: Tensor) => void;
  /**
   * causal-lm: the flat positions (b * T + t) whose logits to compute, transformers' logits_to_keep
   * given as indices; logits are then [M, vocab]. Training scores only the tokens with a label, so the
   * vocabulary projection (151,936 wide for Qwen2) and its logits and their gradient shrink to those
   * rows. Default: every position, [B, T, vocab].
   */
  logitRows?: Int32Array;
}

export interface BlockRunOptions {
  keepHidden: boolean;
  /** see ForwardOptions.onHidden */
  onHidden?: (k: number, h: Tensor) => void;
  /** module path of block i, for errors ("bert.encoder.layer") */
  blockPrefix: string;
  /** a decoder's final norm: transformers returns norm(h_L) as hidden_states[L], not h_L */
  final?: (h: Tensor) => Tensor;
  /** the head on the last hidden state (absent: the last hidden state is returned as logits) */
  head?: (last: Tensor) => Tensor;
}

/**
 * The block loop every family shares: h_0 (the embedding output), then each block in its own
 * blockScope (activations released block by block when no gradient is recorded), transformers'
 * hidden_states collected when keepHidden. Nothing non-finite passes: with keepHidden every returned
 * state and the logits are checked, naming the layer; without (training, evaluation) only the logits
 * are, and when they fail the states (still alive in the enclosing scope) are searched for the first
 * layer that went wrong, so the check costs one pass over the logits.
 */
export function runBlocks<B>(h0: Tensor, blocks: readonly B[], step: (block: B, h: Tensor, i: number) => Tensor, o: BlockRunOptions): ModelOutput {
  const L = blocks.length;
  const label = (k: number): string => (k === 0 ? 'hidden_states.0 (the embedding output)'
    : k <= L ? `hidden_states.${k} (output of ${o.blockPrefix}.${k - 1})` : `hidden_states.${L} (after the final norm)`);
  const states = [h0];
  const stream = o.onHidden, release = stream !== undefined && !recording();
  let h = h0;
  blocks.forEach((b, i) => {
    const prev = h;
    if (stream) { checkFinite(prev, label(i)); stream(i, prev); }
    h = blockScope(() => step(b, prev, i));
    if (release) prev.releaseStorage(); // consumed by this block and by the consumer; its buffer serves the next
    else states.push(h);
  });
  if (o.final) { const last = h; h = o.final(h); if (release) last.releaseStorage(); else states.push(h); }
  // transformers' hidden_states: with a final norm, norm(h_L) replaces the last block's output
  if (stream) { checkFinite(h, label(o.final ? L + 1 : L)); stream(L, h); }
  const logits = o.head ? o.head(h) : h;
  if (stream) {
    if (o.head) checkFinite(logits, 'logits');
    return { hiddenStates: [], logits };
  }
  if (o.keepHidden || logits.firstNonFinite() >= 0) {
    states.forEach((t, k) => checkFinite(t, label(k)));
    if (o.head) checkFinite(logits, 'logits');
  }
  // transformers' hidden_states: with a final norm, norm(h_L) replaces the last block's output
  const hiddenStates = o.keepHidden ? (o.final ? [...states.slice(0, L), states[L + 1]] : states) : [];
  return { hiddenStates, logits };
}
