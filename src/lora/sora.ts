/**
 * SoRA (Ding et al. 2023, "Sparse Low-rank Adaptation"), following its reference code: a gate g
 * (1, r_max) ~ N(0, 1) between A (kaiming-uniform) and B (zero), y += ((x A^T) * g) B^T * alpha / r.
 * The gates are optimised by SparseAdamW: transformers' AdamW step followed by soft-thresholding with
 * lambda (g > lambda: g - lambda; g < -lambda: g + lambda; else 0). A module's rank is its number of
 * non-zero gates; at the end the adapter is exported as plain LoRA with those ranks.
 */
import { Rng } from '../engine/random.js';
import { parameter, type Tensor } from '../engine/tensor.js';
import { soraGateStep } from '../engine/updates.js';
import type { Linear } from '../models/modules.js';
import type { TensorToWrite } from '../io/safetensors.js';
import type { AdaptedModule } from './adapter.js';

export interface SoraConfig { r: number; lora_alpha: number; lora_dropout: number; sparse_lambda: number; lr: number; weight_decay: number }


/**
 * SoRA's proximal step on a gate vector (in place), on host values: the rule the soraGates kernel
 * applies after each gate update, kept as its readable statement (and tested as such).
 */
export function softThreshold(g: Float32Array | Float64Array, lambda: number): void {
  for (let i = 0; i < g.length; i++) {
    const v = g[i];
    g[i] = v > lambda ? v - lambda : v < -lambda ? v + lambda : 0;
  }
}

export class SoraModel {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private step = 0;

  constructor(readonly modules: Linear[], readonly config: SoraConfig, seed = 0) {
    const rng = new Rng(seed), r = config.r;
    for (const lin of modules) {
      const A = new Float32Array(r * lin.inFeatures), bound = 1 / Math.sqrt(lin.inFeatures);
      rng.fillUniform(A, -bound, bound);
      const g = new Float32Array(r);
      rng.fillNormal(g);
      lin.lora = {
        A: parameter(A, [r, lin.inFeatures], true, `${lin.name}.lora_A.weight`),
        B: parameter(new Float32Array(lin.outFeatures * r), [lin.outFeatures, r], true, `${lin.name}.lora_B.weight`),
        E: parameter(g, [r, 1], true, `${lin.name}.gate`),
        scale: config.lora_alpha / r, dropout: config.lora_dropout, rng: new Rng(rng.int(2 ** 31)),
      };
    }
    this.m = modules.map(() => new Float64Array(config.r));
    this.v = modules.map(() => new Float64Array(config.r));
  }

  /** A and B (optimised by the ordinary AdamW). */
  params(): Tensor[] { return this.modules.flatMap((l) => [l.lora!.A, l.lora!.B]); }
  gates(): Tensor[] { return this.modules.map((l) => l.lora!.E!); }

  /** SparseAdamW.step on the gates (transformers' AdamW with bias correction), then their gradients cleared. */
  updateGates(lr: number): void {
    const b1 = 0.9, b2 = 0.999, c = this.config;
    this.step++;
    const stepSize = (lr * Math.sqrt(1 - b2 ** this.step)) / (1 - b1 ** this.step);
    // the betas (0.9, 0.999) and eps (1e-8) are SparseAdamW's, fixed in the kernel
    this.gates().forEach((g, i) => soraGateStep(g, this.m[i], this.v[i], stepSize, lr, c.weight_decay, c.sparse_lambda));
  }

  /** What a checkpoint needs beyond A, B and their AdamW moments: the gates and their SparseAdamW state (float64, kept exact in JSON). */
  saveState(): { tensors: Record<string, TensorToWrite>; json: { step: number; m: number[][]; v: number[][] } } {
    const tensors: Record<string, TensorToWrite> = {};
    for (const g of this.gates()) tensors[g.name] = { shape: [...g.shape], data: g.toFloat32() };
    return { tensors, json: { step: this.step, m: this.m.map((x) => Array.from(x)), v: this.v.map((x) => Array.from(x)) } };
  }

  loadState(read: (key: string) => Float32Array, json: unknown): void {
    const j = json as { step: number; m: number[][]; v: number[][] };
    for (const g of this.gates()) g.assign(read(g.name));
    j.m.forEach((x, k) => this.m[k].set(x));
    j.v.forEach((x, k) => this.v[k].set(x));
    this.step = j.step;
  }

  ranks(): number[] { return this.gates().map((g) => g.toFloat32().filter((x) => x !== 0).length); }

  /** Parameters the sparse adapter really uses: nnz(g) (in + out) per module, plus its gates. */
  effectiveParams(): number {
    return this.modules.reduce((s, l, k) => s + this.ranks()[k] * (l.inFeatures + l.outFeatures) + this.ranks()[k], 0);
  }

  /**
   * Plain LoRA with rank nnz(g) per module reproducing the gated product exactly:
   * A' = (scale / scale') diag(g) A on the live rows, B' = B's live columns, alpha' = alphaRatio * r'.
   */
  exportLora(alphaRatio = 2): { modules: (AdaptedModule & { A: Float32Array; B: Float32Array; inF: number; outF: number })[] } {
    const out = [];
    for (const l of this.modules) {
      // the exported adapter is written to a file: read to the host here (an I/O boundary)
      const { scale } = l.lora!, r = l.lora!.A.shape[0], inF = l.inFeatures, outF = l.outFeatures;
      const A = l.lora!.A.toFloat32(), B = l.lora!.B.toFloat32(), E = l.lora!.E!.toFloat32();
      const live = Array.from(E).flatMap((g, i) => (g !== 0 ? [i] : []));
      if (live.length === 0) continue;
      const rr = live.length, alpha = alphaRatio * rr, s2 = alpha / rr;
      const a = new Float32Array(rr * inF), b = new Float32Array(outF * rr);
      live.forEach((k, n) => {
        const f = (scale / s2) * E[k];
        for (let j = 0; j < inF; j++) a[n * inF + j] = f * A[k * inF + j];
        for (let i = 0; i < outF; i++) b[i * rr + n] = B[i * r + k];
      });
      out.push({ name: l.name, r: rr, alpha, A: a, B: b, inF, outF });
    }
    return { modules: out };
  }
}
