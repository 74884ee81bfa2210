/**
 * LoRA as PEFT defines it: y = W x + scale * B A dropout(x), A (r, in) kaiming-uniform, B (out, r)
 * zero, scale = alpha / r (alpha / sqrt(r) with rsLoRA). Module names are transformers' paths.
 */
import { Rng } from '../engine/random.js';
import { parameter } from '../engine/tensor.js';
import type { Linear } from '../models/modules.js';

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout?: number;
  useRslora?: boolean;
  seed?: number;
}

/** PEFT's target_modules rule for a list entry: the full name, or a dotted suffix of it. */
export function matchesTarget(moduleName: string, key: string): boolean {
  return moduleName === key || moduleName.endsWith(`.${key}`);
}

/** Attaches a fresh LoRA branch (trainable A and B) to a Linear. */
export function attachLora(lin: Linear, o: LoraOptions, rng: Rng): void {
  if (!Number.isInteger(o.r) || o.r < 1) throw new Error(`LoRA rank must be a positive integer, got ${o.r} for ${lin.name}`);
  const inF = lin.inFeatures, outF = lin.outFeatures;
  // kaiming_uniform_(a=sqrt(5)) on (r, in): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(in)
  const A = new Float32Array(o.r * inF), bound = 1 / Math.sqrt(inF);
  rng.fillUniform(A, -bound, bound);
  lin.lora = {
    A: parameter(A, [o.r, inF], true, `${lin.name}.lora_A.weight`),
    B: parameter(new Float32Array(outF * o.r), [outF, o.r], true, `${lin.name}.lora_B.weight`),
    scale: o.useRslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r,
    dropout: o.dropout ?? 0,
    rng: new Rng((o.seed ?? 0) + 1),
  };
}

/** Adds LoRA of rank r to every Linear whose name matches one of `targets`; returns the adapted ones. */
export function applyLora(linears: Linear[], targets: string[], o: LoraOptions): Linear[] {
  const rng = new Rng(o.seed ?? 0);
  const hit = linears.filter((l) => targets.some((t) => matchesTarget(l.name, t)));
  const unused = targets.filter((t) => !linears.some((l) => matchesTarget(l.name, t)));
  if (unused.length) throw new Error(`target modules not found in the model: ${unused.join(', ')}`);
  for (const l of hit) attachLora(l, o, rng);
  return hit;
}
