/**
 * AdaLoRA as PEFT implements it (peft.tuners.adalora): every target matrix gets an SVD-form adapter
 * P = lora_A (r, in), Lambda = lora_E (r, 1), Q = lora_B (out, r), initialised P, Q ~ N(0, 0.02),
 * Lambda = 0, and adds x (P * Lambda)^T Q^T * lora_alpha / (ranknum + 1e-5) with ranknum = init_r.
 * The RankAllocator scores every parameter entry by |p * grad p|, smoothed (beta1) times its
 * uncertainty (beta2); a triplet's score is its Lambda score + the mean score of its P row + the mean
 * of its Q column. The budget stays init_r * matrices until tinit, falls cubically to
 * target_r * matrices by total_step - tfinal, masking the lowest triplets every deltaT steps; an
 * orthogonality penalty ||P P^T - I||_F + ||Q^T Q - I||_F (mean over matrices) is added to the loss.
 */
import * as op from '../engine/ops.js';
import { Rng } from '../engine/random.js';
import { fromArray, parameter, type Tensor } from '../engine/tensor.js';
import { adaloraImportance } from '../engine/updates.js';
import type { Model } from '../models/model.js';
import type { Linear } from '../models/modules.js';
import { PEFT_PREFIX } from './peft.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { join } from 'node:path';

export interface AdaLoraConfig {
  init_r: number; target_r: number; tinit: number; tfinal: number; deltaT: number;
  beta1: number; beta2: number; orth_reg_weight: number; total_step: number; lora_alpha: number; lora_dropout: number;
}

export const ADALORA_DEFAULTS = { init_r: 12, target_r: 8, tinit: 0, tfinal: 0, deltaT: 1, beta1: 0.85, beta2: 0.85, orth_reg_weight: 0.5, lora_alpha: 8, lora_dropout: 0 };

/** Budget (number of active triplets) and whether to mask, at a step: RankAllocator.budget_schedule. */
export function budgetSchedule(c: AdaLoraConfig, initBudget: number, targetBudget: number, step: number): { budget: number; mask: boolean } {
  if (step <= c.tinit) return { budget: initBudget, mask: false };
  if (step > c.total_step - c.tfinal) return { budget: targetBudget, mask: true };
  const mul = 1 - (step - c.tinit) / (c.total_step - c.tfinal - c.tinit);
  return { budget: Math.trunc((initBudget - targetBudget) * mul ** 3 + targetBudget), mask: step % c.deltaT === 0 };
}

interface Ema { ipt: Float32Array; unc: Float32Array }

export class AdaLoraModel {
  readonly modules: Linear[];
  readonly initBudget: number;
  readonly targetBudget: number;
  /** per module: which triplets are active (PEFT's rank_pattern of booleans) */
  rankPattern: Map<string, boolean[]> | null = null;
  private ema = new Map<Tensor, Ema>();

  constructor(readonly model: Model, readonly config: AdaLoraConfig, targets: Linear[], seed = 0) {
    const rng = new Rng(seed), r = config.init_r;
    for (const lin of targets) {
      const A = new Float32Array(r * lin.inFeatures), B = new Float32Array(lin.outFeatures * r);
      rng.fillNormal(A, 0.02);
      rng.fillNormal(B, 0.02);
      lin.lora = {
        A: parameter(A, [r, lin.inFeatures], true, `${lin.name}.lora_A`),
        B: parameter(B, [lin.outFeatures, r], true, `${lin.name}.lora_B`),
        E: parameter(new Float32Array(r), [r, 1], true, `${lin.name}.lora_E`),
        scale: (config.lora_alpha > 0 ? config.lora_alpha : r) / (r + 1e-5),
        dropout: config.lora_dropout, rng: new Rng(rng.int(2 ** 31)),
      };
    }
    this.modules = targets;
    this.initBudget = r * targets.length;
    this.targetBudget = config.target_r * targets.length;
  }

  params(): Tensor[] {
    return this.modules.flatMap((l) => [l.lora!.A, l.lora!.E!, l.lora!.B]);
  }

  /** orth_reg_weight * mean over A and B matrices of ||A A^T - I||_F and ||B^T B - I||_F. */
  regularizer(): Tensor | null {
    if (this.config.orth_reg_weight <= 0) return null;
    const terms: Tensor[] = [];
    for (const l of this.modules) {
      const r = l.lora!.A.shape[0], eye = new Float32Array(r * r);
      for (let i = 0; i < r; i++) eye[i * r + i] = 1;
      const I = fromArray(eye, [r, r]);
      terms.push(op.frobenius(op.sub(op.matmul(l.lora!.A, l.lora!.A, { transB: true }), I)));
      terms.push(op.frobenius(op.sub(op.matmul(l.lora!.B, l.lora!.B, { transA: true }), I)));
    }
    let sum = terms[0];
    for (let i = 1; i < terms.length; i++) sum = op.add(sum, terms[i]);
    return op.scale(sum, this.config.orth_reg_weight / terms.length);
  }

  /** RankAllocator.update_ipt: sensitivity and uncertainty EMAs from |p * grad|. */
  private updateImportance(): void {
    const { beta1: b1, beta2: b2 } = this.config;
    for (const p of this.params()) {
      if (!p.grad) continue;
      let e = this.ema.get(p);
      if (!e) this.ema.set(p, (e = { ipt: new Float32Array(p.size), unc: new Float32Array(p.size) }));
      adaloraImportance(p, e.ipt, e.unc, b1, b2);
    }
  }

  /** Triplet scores per module: Lambda score + mean P-row score + mean Q-column score. */
  tripletScores(): Map<Linear, Float64Array> {
    const out = new Map<Linear, Float64Array>();
    const score = (t: Tensor, i: number): number => { const e = this.ema.get(t); return e ? e.ipt[i] * e.unc[i] : 0; };
    for (const l of this.modules) {
      const { A, B, E } = l.lora!, r = A.shape[0], inF = A.shape[1], outF = B.shape[0];
      const s = new Float64Array(r);
      for (let k = 0; k < r; k++) {
        let a = 0, b = 0;
        for (let j = 0; j < inF; j++) a += score(A, k * inF + j);
        for (let i = 0; i < outF; i++) b += score(B, i * r + k);
        s[k] = score(E!, k) + a / inF + b / outF;
      }
      out.set(l, s);
    }
    return out;
  }

  /** Masks (Lambda = 0) every triplet whose score is at most the k-th smallest, k = init budget - budget. */
  maskToBudget(budget: number): Map<string, boolean[]> {
    const scores = this.tripletScores();
    const all = [...scores.values()].flatMap((s) => Array.from(s)).sort((a, b) => a - b);
    const k = this.initBudget - budget;
    const threshold = k > 0 ? all[k - 1] : -Infinity;
    const pattern = new Map<string, boolean[]>();
    for (const [l, s] of scores) {
      const keep = Array.from(s, (v) => !(v <= threshold));
      keep.forEach((on, i) => { if (!on) l.lora!.E!.fill(0, i, 1); });
      pattern.set(l.name, keep);
    }
    return pattern;
  }

  private maskUsingPattern(): void {
    if (!this.rankPattern) return;
    for (const l of this.modules) this.rankPattern.get(l.name)!.forEach((on, i) => { if (!on) l.lora!.E!.fill(0, i, 1); });
  }

  /** AdaLoraModel.update_and_allocate, called after every optimizer step (before gradients are cleared). */
  updateAndAllocate(step: number): number {
    const c = this.config, end = c.total_step - c.tfinal;
    if (step < end) {
      this.updateImportance();
      const { budget, mask } = budgetSchedule(c, this.initBudget, this.targetBudget, step);
      if (mask) this.rankPattern = this.maskToBudget(budget);
      return budget;
    }
    if (step === end) {
      this.updateImportance();
      this.rankPattern = this.maskToBudget(budgetSchedule(c, this.initBudget, this.targetBudget, step).budget);
      this.ema.clear();
      return this.targetBudget;
    }
    this.maskUsingPattern();
    return this.targetBudget;
  }

  /** What a checkpoint needs beyond the tensors and their AdamW moments: the importance EMAs and the rank pattern. */
  saveState(): { tensors: Record<string, TensorToWrite>; json: { ema: string[]; rankPattern: [string, boolean[]][] | null } } {
    const tensors: Record<string, TensorToWrite> = {}, ema: string[] = [];
    for (const p of this.params()) {
      const e = this.ema.get(p);
      if (!e) continue;
      ema.push(p.name);
      tensors[`ipt.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(e.ipt) };
      tensors[`unc.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(e.unc) };
    }
    return { tensors, json: { ema, rankPattern: this.rankPattern ? [...this.rankPattern] : null } };
  }

  loadState(read: (key: string) => Float32Array, json: unknown): void {
    const j = json as { ema: string[]; rankPattern: [string, boolean[]][] | null };
    const saved = new Set(j.ema);
    this.ema.clear();
    for (const p of this.params()) if (saved.has(p.name)) this.ema.set(p, { ipt: Float32Array.from(read(`ipt.${p.name}`)), unc: Float32Array.from(read(`unc.${p.name}`)) });
    this.rankPattern = j.rankPattern ? new Map(j.rankPattern) : null;
  }

  /** Triplets currently active (non-masked) across all modules. */
  activeTriplets(): number {
    if (!this.rankPattern) return this.initBudget;
    return [...this.rankPattern.values()].reduce((s, p) => s + p.filter(Boolean).length, 0);
  }

  /** Parameters of the active triplets (r_active * (in + out + 1) per module), what AdaLoRA finally uses. */
  effectiveParams(): number {
    return this.modules.reduce((s, l) => {
      const active = this.rankPattern ? this.rankPattern.get(l.name)!.filter(Boolean).length : l.lora!.A.shape[0];
      return s + active * (l.inFeatures + l.outFeatures + 1);
    }, 0);
  }

  /** Saved as PEFT saves AdaLoRA: active triplets only (resize_state_dict_by_rank_pattern), rank_pattern of booleans. */
  save(dir: string, baseModel: string, modulesToSave: Tensor[], taskType: string, fullConfig: Record<string, unknown>): void {
    const tensors: Record<string, TensorToWrite> = {};
    const pattern: Record<string, boolean[]> = {};
    for (const l of this.modules) {
      // written to a file: the adapter is read to the host here (an I/O boundary)
      const r = l.lora!.A.shape[0], inF = l.lora!.A.shape[1], outF = l.lora!.B.shape[0];
      const A = l.lora!.A.toFloat32(), B = l.lora!.B.toFloat32(), E = l.lora!.E!.toFloat32();
      const keep = this.rankPattern?.get(l.name) ?? new Array<boolean>(r).fill(true);
      const idx = keep.flatMap((on, i) => (on ? [i] : []));
      const a = new Float32Array(idx.length * inF), b = new Float32Array(outF * idx.length), e = new Float32Array(idx.length);
      idx.forEach((k, n) => {
        a.set(A.subarray(k * inF, k * inF + inF), n * inF);
        for (let i = 0; i < outF; i++) b[i * idx.length + n] = B[i * r + k];
        e[n] = E[k];
      });
      tensors[`${PEFT_PREFIX}${l.name}.lora_A`] = { shape: [idx.length, inF], data: a };
      tensors[`${PEFT_PREFIX}${l.name}.lora_B`] = { shape: [outF, idx.length], data: b };
      tensors[`${PEFT_PREFIX}${l.name}.lora_E`] = { shape: [idx.length, 1], data: e };
      pattern[`${l.name}.lora_E`] = keep;
    }
    for (const p of modulesToSave) tensors[`${PEFT_PREFIX}${p.name}`] = { shape: [...p.shape], data: p.toFloat32() };
    writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
    writeJsonAtomic(join(dir, 'adapter_config.json'), {
      ...fullConfig, peft_type: 'ADALORA', task_type: taskType, base_model_name_or_path: baseModel, r: this.config.init_r,
      init_r: this.config.init_r, target_r: this.config.target_r, tinit: this.config.tinit, tfinal: this.config.tfinal, deltaT: this.config.deltaT,
      beta1: this.config.beta1, beta2: this.config.beta2, orth_reg_weight: this.config.orth_reg_weight, total_step: this.config.total_step,
      lora_alpha: this.config.lora_alpha, lora_dropout: this.config.lora_dropout, rank_pattern: pattern,
      target_modules: this.modules.map((l) => l.name),
    });
  }
}
