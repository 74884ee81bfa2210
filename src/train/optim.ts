/** AdamW (decoupled weight decay, PyTorch's update) over trainable parameters, one fused kernel call per tensor. */
import type { Buf } from '../engine/kernels.js';
import type { Tensor } from '../engine/tensor.js';
import { adamwStep, gradNorm, scaleGrads } from '../engine/updates.js';

export interface AdamWOptions { lr?: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }

export class AdamW {
  readonly params: Tensor[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  step = 0;
  readonly m: Buf[];
  readonly v: Buf[];

  constructor(params: Tensor[], o: AdamWOptions = {}) {
    this.params = params.filter((p) => p.requiresGrad);
    this.lr = o.lr ?? 1e-3;
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
    const like = (p: Tensor): Buf => {
      if (p.dtype !== 'f32' && p.dtype !== 'f64') throw new Error(`AdamW: ${p.name || 'a parameter'} is ${p.dtype}; trainable tensors must be f32`);
      return p.dtype === 'f64' ? new Float64Array(p.size) : new Float32Array(p.size);
    };
    this.m = this.params.map(like);
    this.v = this.params.map(like);
  }

  /** Applies one update from the accumulated gradients (parameters without a gradient are skipped). */
  update(): void {
    this.step++;
    const bc1 = 1 - this.beta1 ** this.step, bc2 = 1 - this.beta2 ** this.step;
    this.params.forEach((p, i) => adamwStep(p, this.m[i], this.v[i], this.lr, this.beta1, this.beta2, this.eps, this.weightDecay, bc1, bc2));
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_); returns the norm before clipping. */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  const norm = gradNorm(params), coef = maxNorm / (norm + 1e-6);
  if (coef < 1) scaleGrads(params, coef);
  return norm;
}
