/**
 * The matmul precision of a run (`--precision auto|fp32|bf16`), set once before any work. What
 * torch.autocast does on a CPU: frozen Linear weights kept in bf16 and multiplied on the CPU's bf16
 * matrix units (oneDNN: AMX or AVX512-BF16) with fp32 accumulation, the activation rounded to bf16 on
 * the way in; LoRA A/B, the head, biases, norms, softmax, attention's batched products, losses and
 * optimizer state stay fp32. fp32 never comes through oneDNN: every weight's and attention's product is
 * OpenBLAS's, bit for bit, and the LoRA branch's thin products are the loraPass kernel's, in either mode
 * (the CLI defaults to auto, see DEFAULT_PRECISION; the library to fp32).
 *
 * Full fine-tuning trains every weight, so under bf16 it has no frozen weight to convert and runs
 * exactly as fp32. Pretraining may ask for mixed precision instead (applyPrecision's `trained`):
 * its block Linears keep f32 master weights, rounded to bf16 at each use for the forward product and
 * the input gradient, with the weight gradient in float32. The GeLoRA analysis runs before the
 * weights are converted, so it stays fp32 too.
 */
import { kernels } from './backend.js';
import { bf16Available, resolvePrecision, toBf16, type Precision } from './backends/dnnl.js';
import type { Tensor } from './tensor.js';

export type { Precision } from './backends/dnnl.js';

/** The values of a `--precision` flag. */
export const PRECISIONS: readonly Precision[] = ['auto', 'fp32', 'bf16'];

/**
 * The CLI's `--precision` default for training, eval, forward, compare and the training/forward benches:
 * bf16 where the CPU has bf16 matrix units, fp32 elsewhere. Chosen on measurement: bf16 LoRA training
 * of both demo tasks and SST-2 (2,000 train), 3 seeds, stayed within one standard deviation of fp32
 * (experiments/precision/RESULTS.md). The library's own options (TrainOptions.precision unset) stay fp32.
 */
export const DEFAULT_PRECISION: Precision = 'auto';

/**
 * The `--precision` default of the analysis (`gelora analyze`, bench analyze and analyze-scale): fp32, as
 * experiments/sensitivity decided (bf16 profiles were within 0.30 bootstrap SD there, so `auto` may be asked for).
 */
export const ANALYSIS_PRECISION: Precision = 'fp32';

let current: 'fp32' | 'bf16' = 'fp32';
/**
 * Head weights stored bf16 by the checkpoint (a bf16 LM head tied to its embedding): bf16 mode keeps
 * their products fp32 (widened exactly), as it keeps an f32 head, so the head rule holds for any checkpoint.
 */
const fp32Products = new WeakSet<Tensor>();
/** Trained block Linear weights multiplied in bf16 in bf16 mode (mixed-precision pretraining), rounded at each use. */
const bf16Trained = new WeakSet<Tensor>();

/**
 * Sets the run's matmul precision; `auto` is bf16 only where oneDNN multiplies bf16 on matrix units,
 * and bf16 asked for where it cannot run is an error naming why. Returns the precision that runs.
 */
export function setMatmulPrecision(p: Precision): 'fp32' | 'bf16' {
  current = resolvePrecision(p);
  return current;
}

/** The matmul precision in force. */
export function matmulPrecision(): 'fp32' | 'bf16' {
  return current;
}

/**
 * The bf16 bits to hand oneDNN for a weight operand, or null for the fp32 path: only in bf16 mode, for
 * a bf16 weight, on the native backend (the js reference backend widens half weights as in fp32 mode;
 * an f16 weight is widened too: oneDNN's product here is bf16 x bf16).
 */
export function bf16Operand(W: Tensor): Uint16Array | null {
  if (current !== 'bf16' || W.dtype !== 'bf16' || kernels().name !== 'native' || fp32Products.has(W)) return null;
  return W.halfBits;
}

/**
 * Whether linear multiplies this f32 weight in bf16, rounding it at each use (its values change every
 * step): a trained block Linear that applyPrecision registered with `trained`, in bf16 mode, native backend.
 */
export function bf16Rounded(W: Tensor): boolean {
  return current === 'bf16' && W.dtype === 'f32' && bf16Trained.has(W) && kernels().name === 'native';
}

/** The part of a model toBf16Weights needs: its Linears and which block each belongs to. */
export interface LinearOwner {
  linears(): { name: string; weight: Tensor }[];
  /** the block (1..L) of a module; null for embeddings and heads */
  blockOf(moduleName: string): number | null;
}

/**
 * Converts a model's frozen f32 Linear weights to bf16 in place (the memory is halved and the products
 * go to oneDNN in bf16 mode). Weights loaded as bf16 are already there. Weights loaded as f16 (the
 * embedded model's) are rounded to bf16 once, as f32 ones are: the very bits an f32 load of them gave
 * before (f16 widens exactly), so bf16 mode runs as it did; the rounding drops 3 of f16's 10 mantissa
 * bits, the price of bf16 products, which fp32 mode never pays. Only the Linears inside the blocks: heads stay f32 even when frozen
 * (an LM head tied to the embedding included), and embeddings and norms are not Linears. Call it after
 * the method is prepared, so trainable weights (full fine-tuning) stay f32. Returns how many were converted.
 */
export function toBf16Weights(model: LinearOwner): number {
  let n = 0;
  for (const lin of model.linears()) {
    const W = lin.weight;
    if (W.requiresGrad || (W.dtype !== 'f32' && W.dtype !== 'f16') || model.blockOf(lin.name) === null) continue;
    W.adoptHalf(toBf16(W.dtype === 'f16' ? W.toFloat32() : W.data instanceof Float32Array ? W.data : Float32Array.from(W.data)), 'bf16');
    n++;
  }
  return n;
}

/** What a run records about its precision (metrics.json, results.json, the log line). */
export interface PrecisionInfo {
  /** what ran: bf16 only where some block Linear weight is multiplied in bf16 */
  precision: 'fp32' | 'bf16'; requested: Precision; converted_weights: number; bf16_weights: number; library: string; isa: string;
  /** with `trained`: the trained block Linear weights multiplied in bf16 (f32 master weights) */
  trained_bf16_weights?: number;
}

/**
 * Sets the run's precision from its flag and, in bf16, converts the prepared model's frozen Linear
 * weights; `log` gets one line saying which ran and why.
 */
export function applyPrecision(model: LinearOwner, requested: Precision, log: (line: string) => void = (l) => process.stderr.write(l),
  o: { trained?: boolean } = {}): PrecisionInfo {
  const mode = setMatmulPrecision(requested);
  const s = bf16Available();
  const converted = mode === 'bf16' ? toBf16Weights(model) : 0;
  for (const l of model.linears()) if (model.blockOf(l.name) === null && l.weight.dtype === 'bf16') fp32Products.add(l.weight);
  // mixed precision (pretraining): the trained block Linears too, rounded at each use
  // (registered per run: a later run of the same model without `trained`, full fine-tuning say, runs fp32)
  let trained = 0;
  for (const l of model.linears()) {
    if (mode === 'bf16' && o.trained && l.weight.requiresGrad && l.weight.dtype === 'f32' && model.blockOf(l.name) !== null) { bf16Trained.add(l.weight); trained++; }
    else bf16Trained.delete(l.weight);
  }
  // what runs: bf16 only if some block Linear weight is bf16 (full fine-tuning has none: it runs fp32)
  const bf16Weights = model.linears().filter((l) => l.weight.dtype === 'bf16' && model.blockOf(l.name) !== null).length;
  const precision = mode === 'bf16' && bf16Weights + trained > 0 && kernels().name === 'native' ? 'bf16' : 'fp32';
  const why = precision === 'bf16' && trained > 0 ? `${trained} trained Linear weights multiplied in bf16 (f32 master weights, float32 weight gradients) on ${s.library} (${s.isa})`
    : precision === 'bf16' ? `${bf16Weights} frozen Linear weights in bf16 on ${s.library} (${s.isa})`
    : mode === 'bf16' ? (kernels().name !== 'native' ? 'bf16 asked, but the js backend multiplies in fp32' : 'bf16 asked, but every Linear weight is trained: fp32')
    : requested === 'auto' ? `auto: ${s.reason || 'bf16 available'}` : 'as asked';
  log(`gelora: precision ${precision} (${why})\n`);
  return { precision, requested, converted_weights: converted, bf16_weights: bf16Weights, library: s.library, isa: s.isa, ...(o.trained ? { trained_bf16_weights: trained } : {}) };
}
