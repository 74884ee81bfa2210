/**
 * LoRA layers: y = W x + b + scale * B A dropout(x), A (r, in), B (out, r). Initialisations as PEFT's
 * init_lora_weights: true (A kaiming-uniform, B zero), "gaussian" (A ~ N(0, 1/r), B zero), false (both
 * as nn.Linear initialises them, so B is non-zero), "pissa" (top-r singular triplets of W moved into
 * A and B, the residual kept frozen). Merge folds scale * B A into W and unmerge takes it out again.
 */
import { Rng } from '../engine/random.js';
import { parameter, type Tensor } from '../engine/tensor.js';
import { addLowRank } from '../engine/updates.js';
import type { Model } from '../models/model.js';
import type { Linear } from '../models/modules.js';
import { resolveLora, type LoraConfig, type Resolution } from './config.js';
import { topSingular } from './svd.js';

/** kaiming_uniform_(a=sqrt(5)) as nn.Linear uses it: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
function linearInit(out: Float32Array, fanIn: number, rng: Rng): void {
  const bound = 1 / Math.sqrt(fanIn);
  rng.fillUniform(out, -bound, bound);
}

export function attachLora(lin: Linear, r: number, alpha: number, scale: number, c: LoraConfig, rng: Rng): void {
  if (!Number.isInteger(r) || r < 1) throw new Error(`LoRA rank must be a positive integer, got ${r} for ${lin.name}`);
  const inF = lin.inFeatures, outF = lin.outFeatures;
  const A = new Float32Array(r * inF), B = new Float32Array(outF * r);
  const init = c.init_lora_weights;
  if (init === 'pissa') {
    // the SVD runs on the host in float64 (subspace iteration + Jacobi): the weight is read out once
    const { U, S, V } = topSingular(lin.weight.toFloat32(), outF, inF, r, rng);
    // W = U S V^T; A = sqrt(S/scale) V^T, B = U sqrt(S/scale); W_res = W - scale * B A
    for (let k = 0; k < r; k++) {
      const s = Math.sqrt(S[k] / scale);
      for (let j = 0; j < inF; j++) A[k * inF + j] = s * V[j * r + k];
      for (let i = 0; i < outF; i++) B[i * r + k] = s * U[i * r + k];
    }
    // W_res = W - scale * B A, each dot product in double
    addLowRank(lin.weight, B, A, r, -scale);
  } else {
    if (init === 'gaussian') rng.fillNormal(A, 1 / r);
    else linearInit(A, inF, rng);
    if (init === false) linearInit(B, r, rng);
  }
  lin.lora = {
    A: parameter(A, [r, inF], true, `${lin.name}.lora_A.weight`),
    B: parameter(B, [outF, r], true, `${lin.name}.lora_B.weight`),
    scale, dropout: c.lora_dropout, rng: new Rng(rng.int(2 ** 31)),
  };
}

export interface LoraModel {
  model: Model;
  config: LoraConfig;
  resolution: Resolution;
  /** every trainable tensor: LoRA A and B, then the modules_to_save parameters */
  trainable: Tensor[];
}

/** Adds LoRA to the model as the config says and marks modules_to_save trainable. */
export function applyLoraConfig(model: Model, c: LoraConfig, seed = 0): LoraModel {
  const resolution = resolveLora(model, c);
  const rng = new Rng(seed);
  for (const m of resolution.modules) attachLora(m.linear, m.r, m.alpha, m.scale, c, rng);
  const saved = modulesToSaveParams(model, resolution.modulesToSave);
  for (const p of saved) p.requiresGrad = true;
  const trainable = [...resolution.modules.flatMap((m) => [m.linear.lora!.A, m.linear.lora!.B]), ...saved];
  return { model, config: c, resolution, trainable };
}

export function modulesToSaveParams(model: Model, modules: string[]): Tensor[] {
  return model.params.names().filter((n) => modules.some((m) => n.startsWith(`${m}.`))).map((n) => model.params.get(n));
}

/** Trainable parameters as PEFT counts them: r (in + out) per adapted module plus the modules_to_save copies. */
export function countTrainable(lm: LoraModel): number {
  return lm.trainable.reduce((s, t) => s + t.size, 0);
}

/** W += scale * B A (the adapter disappears from the forward pass). */
export function merge(lin: Linear): void {
  foldDelta(lin, 1);
}

/** W -= scale * B A (inverse of merge). */
export function unmerge(lin: Linear): void {
  foldDelta(lin, -1);
}

function foldDelta(lin: Linear, sign: 1 | -1): void {
  const l = lin.lora;
  if (!l) throw new Error(`${lin.name} has no LoRA adapter to merge`);
  addLowRank(lin.weight, l.B, l.A, l.A.shape[0], sign * l.scale);
  if (sign === 1) { lin.mergedLora = l; lin.lora = null; } else lin.mergedLora = null;
}

/** Merges every adapter (PEFT's merge_and_unload). */
export function mergeAll(model: Model): void {
  for (const lin of model.linears()) if (lin.lora) merge(lin);
}

/** Takes merged adapters out again. */
export function unmergeAll(model: Model): void {
  for (const lin of model.linears()) {
    if (lin.mergedLora) { lin.lora = lin.mergedLora; unmerge(lin); }
  }
}
