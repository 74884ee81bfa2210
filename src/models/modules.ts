/**
 * Building blocks shared by every architecture: named weights (transformers' state-dict names, so
 * the module paths are the ones PEFT users write) and the Linear layer that LoRA attaches to.
 */
import { totalmem } from 'node:os';
import * as op from '../engine/ops.js';
import { Rng } from '../engine/random.js';
import { Tensor, lazyParameter } from '../engine/tensor.js';

/** Every weight of a model by its transformers state-dict name. */
export class ParamStore {
  readonly byName = new Map<string, Tensor>();
  /** weights that checkpoints store transposed (GPT-2's Conv1D keeps [in, out]) */
  readonly transposed = new Set<string>();
  /** weights that may be absent because they are tied to another (name -> source) */
  readonly tied = new Map<string, string>();

  /** weights that the loader initialised because the checkpoint lacks them (head weights) */
  readonly initialised = new Set<string>();
  /** float32 values held so far */
  private elements = 0;

  /** Registers a frozen weight of the given shape (zeros until loaded or initialised, allocated only when used). */
  add(name: string, shape: number[], opts: { transposed?: boolean } = {}): Tensor {
    if (this.byName.has(name)) throw new Error(`duplicate weight name ${name}`);
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new ModelSizeError(`weight ${name} would have shape [${shape}]`);
    const n = shape.reduce((a, b) => a * b, 1);
    // kernels index with int32; and a model must fit in memory (float32 values)
    if (n > 2 ** 31 - 1) throw new ModelSizeError(`weight ${name} would have shape [${shape}], ${n} values, more than 2^31 - 1`);
    this.elements += n;
    if (this.elements * 4 > totalmem()) {
      throw new ModelSizeError(`the weights would need more than ${(this.elements * 4 / 2 ** 30).toFixed(1)} GiB as float32 (this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB) by ${name} [${shape}]`);
    }
    if (opts.transposed) this.transposed.add(name);
    // no memory yet: the loader adopts the checkpoint's values (half weights stay 16-bit), and a
    // weight that no checkpoint fills gets its f32 zeros when first initialised or read
    const t = lazyParameter(shape, name);
    this.byName.set(name, t);
    return t;
  }

  get(name: string): Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`no weight named ${name}`);
    return t;
  }

  names(): string[] { return [...this.byName.keys()]; }

  trainable(): Tensor[] { return [...this.byName.values()].filter((t) => t.requiresGrad); }
}

/** Sizes from a config.json that no model can have; the loader adds the file's name. */
export class ModelSizeError extends Error {}

/** The LoRA branch attached to a Linear: delta W = scale * B A, dropout on its input. */
export interface LoraState {
  A: Tensor;
  B: Tensor;
  /** per-rank scale of A's rows [r, 1]: AdaLoRA's singular values lora_E, SoRA's gate */
  E?: Tensor;
  scale: number;
  dropout: number;
  rng: Rng;
}

/** nn.Linear (weight [out, in]); GPT-2's Conv1D is stored transposed and converted on load. */
export class Linear {
  lora: LoraState | null = null;
  /** an adapter folded into the weight by merge(), kept so unmerge() can take it out */
  mergedLora: LoraState | null = null;
  /** set by the training loop: dropout only applies while training */
  training = false;
  /** GPT-2's Conv1D: stored [in, out] in checkpoints (PEFT's fan_in_fan_out) */
  conv1d = false;

  constructor(readonly name: string, readonly weight: Tensor, readonly bias: Tensor | null) {}

  get inFeatures(): number { return this.weight.shape[1]; }
  get outFeatures(): number { return this.weight.shape[0]; }

  forward(x: Tensor): Tensor {
    const l = this.lora;
    if (!l) return op.linear(x, this.weight, this.bias);
    const input = this.training && l.dropout > 0 ? op.dropout(x, l.dropout, l.rng) : x;
    const A = l.E ? op.mul(l.A, l.E) : l.A;
    return op.linear(x, this.weight, this.bias, { A, B: l.B, scale: l.scale, input });
  }

  /** act(forward(x)), fused where op.linearAct can (no adapter on this Linear, no tape, bf16 product). */
  forwardAct(act: (t: Tensor) => Tensor, x: Tensor): Tensor {
    return this.lora ? act(this.forward(x)) : op.linearAct(act, x, this.weight, this.bias);
  }

  static create(params: ParamStore, name: string, inF: number, outF: number, bias = true, conv1d = false): Linear {
    const lin = new Linear(name, params.add(`${name}.weight`, [outF, inF], { transposed: conv1d }), bias ? params.add(`${name}.bias`, [outF]) : null);
    lin.conv1d = conv1d;
    return lin;
  }
}

export class RMSNorm {
  constructor(readonly weight: Tensor, readonly eps: number) {}

  forward(x: Tensor): Tensor { return op.rmsNorm(x, this.weight, this.eps); }

  static create(params: ParamStore, name: string, size: number, eps: number): RMSNorm {
    return new RMSNorm(params.add(`${name}.weight`, [size]), eps);
  }
}

export class LayerNorm {
  constructor(readonly weight: Tensor, readonly bias: Tensor | null, readonly eps: number) {}

  forward(x: Tensor, residual?: Tensor): Tensor {
    return op.layerNorm(x, this.weight, this.bias, this.eps, residual);
  }

  static create(params: ParamStore, name: string, size: number, eps: number, bias = true): LayerNorm {
    return new LayerNorm(params.add(`${name}.weight`, [size]), bias ? params.add(`${name}.bias`, [size]) : null, eps);
  }
}

/**
 * Random initialisation as transformers' _init_weights does it for these models: normal(0, std)
 * for matrices and embeddings, zero biases, LayerNorm weight 1 (names ending in norm weights).
 */
export function initWeights(params: ParamStore, seed: number, std = 0.02): void {
  const rng = new Rng(seed);
  for (const [name, t] of params.byName) {
    const isNorm = /(norm|ln_\w+)\.weight$/i.test(name);
    if (isNorm) t.fill(1);
    else if (name.endsWith('.bias') || t.ndim === 1) t.fill(0);
    else fillNormal(t, rng, std);
  }
}

/** Sets t to normal(0, std) draws of rng: drawn in double and stored in t's precision, as filling its storage in place did. */
export function fillNormal(t: Tensor, rng: Rng, std: number): void {
  const d = new Float64Array(t.size);
  rng.fillNormal(d, std);
  t.assign(d);
}

/** A row-major [rows, cols] matrix as [cols, rows] (GPT-2's Conv1D weights: checkpoints store them [in, out]). */
export function transpose<T extends Float32Array | Uint16Array = Float32Array>(d: ArrayLike<number>, rows: number, cols: number, t: T = new Float32Array(rows * cols) as T): T {
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = d[i * cols + j];
  return t;
}

/** Additive attention mask [B, T] from a 0/1 attention mask: 0 where kept, float32 min where padded. */
export function additiveMask(attentionMask: ArrayLike<number>, B: number, T: number): Tensor {
  const m = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) m[i] = attentionMask[i] ? 0 : -3.4028234663852886e38;
  return new Tensor(m, [B, T]);
}
