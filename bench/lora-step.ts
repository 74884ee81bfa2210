/**
 * One LoRA training step (forward, loss, backward, AdamW over the trainable tensors), timed:
 *  - encoder configs (bench/configs.json lora_step): a BERT-style encoder with a classification head,
 *    the same work as `bench/torch_reference.py lora_step CONFIG`;
 *  - decoder configs (bench/configs.json decoder, e.g. qwen05b): a decoder LLM built from its
 *    config.json with random weights, the causal-LM loss on the completion tokens (the prompt's labels
 *    -100, as PEFT/TRL users build them), LoRA on PEFT's module names, as `gelora train` runs it.
 */
import { kernels } from '../src/engine/backend.js';
import { crossEntropy } from '../src/engine/ops.js';
import { profileKernels, type KernelTime } from '../src/engine/profile.js';
import { Rng } from '../src/engine/random.js';
import { backward, scope, type Tensor } from '../src/engine/tensor.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig } from '../src/lora/lora.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import { DecoderModel } from '../src/models/decoder.js';
import { createModel } from '../src/models/load.js';
import type { HfConfig, ModelInputs } from '../src/models/model.js';
import { initWeights } from '../src/models/modules.js';
import { applyPrecision, type Precision, type PrecisionInfo } from '../src/engine/precision.js';
import { causalLmLoss, IGNORE_INDEX, lmBatch, lmLogits, type LmEncoded } from '../src/train/objectives/causal-lm.js';
import { AdamW } from '../src/train/optim.js';
import { benchConfigs, median, peakRssMb, pick, pickModelConfig, resetPeakRss, type DecoderBenchConfig, type LoraStepConfig } from './configs.js';

export function buildBenchModel(c: LoraStepConfig): BertForSequenceClassification {
  const model = new BertForSequenceClassification({
    vocab_size: c.vocab, hidden_size: c.hidden, num_hidden_layers: c.layers, num_attention_heads: c.heads,
    intermediate_size: c.intermediate, hidden_act: 'gelu', max_position_embeddings: c.max_positions,
    type_vocab_size: 2, layer_norm_eps: 1e-12, num_labels: c.num_labels,
  });
  initWeights(model.params, 0);
  return model;
}

/** Inputs shaped as the PyTorch reference makes them: random ids, the first half of the batch half padded. */
export function benchInputs(c: LoraStepConfig, seed = 0): { inputs: ModelInputs; labels: Int32Array } {
  const rng = new Rng(seed), n = c.batch * c.seq;
  const inputIds = new Int32Array(n), attentionMask = new Float32Array(n).fill(1), labels = new Int32Array(c.batch);
  for (let i = 0; i < n; i++) inputIds[i] = rng.int(c.vocab);
  for (let b = 0; b < c.batch >> 1; b++) for (let t = c.seq >> 1; t < c.seq; t++) attentionMask[b * c.seq + t] = 0;
  for (let b = 0; b < c.batch; b++) labels[b] = rng.int(c.num_labels);
  return { inputs: { inputIds, attentionMask, batch: c.batch, seq: c.seq }, labels };
}

/** A decoder causal-LM model of the config with seeded random weights (N(0, 0.02), norms 1, biases 0), tied as config.json says. */
export function buildDecoderBenchModel(c: DecoderBenchConfig): DecoderModel {
  const model = createModel(c.config as HfConfig, { task: 'causal-lm' }, 'bench/configs.json');
  if (!(model instanceof DecoderModel)) throw new Error(`bench/configs.json: model_type ${String(c.config.model_type)} is not a decoder`);
  // tied weights share storage before any is written (as loading ties lm_head to the embeddings), so the
  // untied copy is never touched and costs no memory
  for (const [name, src] of model.params.tied) model.params.get(name).tie(model.params.get(src));
  initWeights(model.params, 0);
  return model;
}

/**
 * A causal-LM batch of `batch` rows of `seq` random token ids: each row's prompt (a seeded fraction
 * in [lo, hi) of its tokens) has label -100, the completion is trained; built by the training
 * objective's own lmBatch (labels shifted by one).
 */
export function decoderBenchBatch(c: DecoderBenchConfig, seq = c.seq, batch = c.batch, seed = 0): ReturnType<typeof lmBatch> {
  const rng = new Rng(seed), vocab = Number(c.config.vocab_size), [lo, hi] = c.prompt_fraction;
  const rows: LmEncoded[] = Array.from({ length: batch }, () => {
    const ids = Array.from({ length: seq }, () => rng.int(vocab));
    const prompt = Math.floor(seq * (lo + (hi - lo) * rng.next()));
    return { ids, labels: ids.map((id, t) => (t < prompt ? IGNORE_INDEX : id)) };
  });
  return lmBatch(rows, 0);
}

export interface LoraStepResult {
  bench: 'lora_step'; config: string; backend: string; median_step_s: number; min_step_s: number;
  tokens_per_s: number; peak_rss_mb: number; trainable_params: number; first_loss: number; last_loss: number; steps: number;
  /** the matmul precision that ran, oneDNN's ISA and the library behind bf16 */
  precision: PrecisionInfo['precision']; isa: string; library: string;
  /** with --profile */
  profile?: StepProfile;
}

/** Decoder runs say also what ran: the model, its size, the batch and the tokens the loss covers. */
export interface DecoderLoraStepResult extends LoraStepResult {
  model_type: string; params: number; batch: number; seq: number; trained_tokens: number; warmup: number; targets: string[]; lora_r: number;
  /** peak_rss_mb covers the steps ('steps': VmHWM reset after the model was built) or the whole process ('process') */
  peak_rss_window: 'steps' | 'process';
  /** the peak while building the random model, LoRA and the precision conversion */
  build_peak_rss_mb: number;
}

/** warmup + steps optimizer steps over `params` (loss, backward, AdamW lr 1e-4), each timed; every step's loss. */
/** --profile: seconds a timed step spends in each kernel, and the rest (JavaScript: tape, shapes, allocation). */
export interface StepProfile { per_step_s: number; kernels_s: number; js_s: number; kernels: (KernelTime & { share: number })[] }

function timedSteps(params: Tensor[], loss: () => Tensor, steps: number, warmup: number, profile = false): { times: number[]; losses: number[]; profile?: StepProfile } {
  const opt = new AdamW(params, { lr: 1e-4 });
  const times: number[] = [], losses: number[] = [];
  let prof: ReturnType<typeof profileKernels> | null = null;
  for (let i = 0; i < warmup + steps; i++) {
    if (profile && i === warmup) prof = profileKernels();
    const t0 = performance.now();
    const l = scope(() => {
      const t = loss();
      opt.zeroGrad();
      backward(t);
      return t.item();
    });
    opt.update();
    const dt = (performance.now() - t0) / 1000;
    if (i >= warmup) times.push(dt);
    losses.push(l);
  }
  if (!prof) return { times, losses };
  return { times, losses, profile: stepProfile(prof.stop(), times) };
}

/** Kernel times over the timed steps (`times`, seconds each) as per-step figures. */
export function stepProfile(ks: KernelTime[], times: number[]): StepProfile {
  const steps = times.length, total = times.reduce((a, b) => a + b, 0), inKernels = ks.reduce((a, k) => a + k.seconds, 0);
  return {
    per_step_s: total / steps, kernels_s: inKernels / steps, js_s: (total - inKernels) / steps,
    kernels: ks.map((k) => ({ kernel: k.kernel, calls: k.calls / steps, seconds: k.seconds / steps, share: k.seconds / total })),
  };
}

/** Default steps: encoders 10 timed after 2; decoder LLM configs 3 after 1 (a qwen05b step is many seconds on 2 cores). */
export function defaultSteps(kind: 'encoder' | 'decoder'): { steps: number; warmup: number } {
  return kind === 'decoder' ? { steps: 3, warmup: 1 } : { steps: 10, warmup: 2 };
}

export function loraStepBench(name: string, steps?: number, warmup?: number, precision: Precision = 'fp32', profile = false): LoraStepResult {
  const m = pickModelConfig(name), d = defaultSteps(m.kind);
  if (m.kind === 'decoder') return decoderLoraStepBench(m.c, name, steps ?? d.steps, warmup ?? d.warmup, precision, profile);
  const c = pick(benchConfigs().lora_step, name, 'lora_step');
  const model = buildBenchModel(c);
  // LoRA on the six matrices of every layer; SEQ_CLS trains the classifier in full, as the reference does
  const { trainable: params } = applyLoraConfig(model, defaultLoraConfig(model, { r: c.lora_r, lora_alpha: c.lora_alpha, target_modules: c.targets }));
  const prec = applyPrecision(model, precision, () => {}); // after LoRA: the frozen weights in bf16 mode
  const { inputs, labels } = benchInputs(c);
  const n = steps ?? d.steps;
  const { times, losses, profile: prof } = timedSteps(params, () => crossEntropy(model.forward(inputs, { keepHidden: false }).logits, labels), n, warmup ?? d.warmup, profile);
  const med = median(times);
  return {
    bench: 'lora_step', config: name, backend: kernels().name, median_step_s: med, min_step_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, peak_rss_mb: peakRssMb(),
    trainable_params: params.reduce((s, p) => s + p.size, 0), first_loss: losses[0], last_loss: losses[losses.length - 1], steps: n,
    precision: prec.precision, isa: prec.isa, library: prec.library, ...(prof ? { profile: prof } : {}),
  };
}

/** One causal-LM LoRA step of a decoder config (a config object, so tests can run a tiny one). */
export function decoderLoraStepBench(c: DecoderBenchConfig, name: string, steps = 3, warmup = 1, precision: Precision = 'fp32', profile = false): DecoderLoraStepResult {
  const model = buildDecoderBenchModel(c), size = modelParams(model);
  // CAUSAL_LM: only the LoRA A/B tensors train (no modules_to_save)
  const { trainable: params } = applyLoraConfig(model, defaultLoraConfig(model, { r: c.lora_r, lora_alpha: c.lora_alpha, target_modules: c.targets }));
  const prec = applyPrecision(model, precision, () => {}); // after LoRA: the frozen weights in bf16 mode
  const b = decoderBenchBatch(c);
  const buildPeak = peakRssMb(), window = resetPeakRss() ? 'steps' : 'process';
  // what training runs: logits of the completion tokens only (lmLogits)
  const { times, losses, profile: prof } = timedSteps(params, () => { const { logits, targets } = lmLogits(model, b); return causalLmLoss(logits, targets); }, steps, warmup, profile);
  const bad = losses.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0) throw new Error(`bench lora-step ${name}: the loss of step ${bad} is ${losses[bad]}`);
  const med = median(times);
  return {
    bench: 'lora_step', config: name, backend: kernels().name, median_step_s: med, min_step_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, peak_rss_mb: peakRssMb(),
    trainable_params: params.reduce((s, p) => s + p.size, 0), first_loss: losses[0], last_loss: losses[losses.length - 1], steps,
    precision: prec.precision, isa: prec.isa, library: prec.library, ...(prof ? { profile: prof } : {}),
    model_type: model.type, params: size, batch: c.batch, seq: c.seq, trained_tokens: b.tokens, warmup, targets: c.targets, lora_r: c.lora_r,
    peak_rss_window: window, build_peak_rss_mb: buildPeak,
  };
}

/** Parameters of a model as transformers counts them (tied tensors once). */
export function modelParams(model: DecoderModel): number {
  let n = 0;
  for (const [name, t] of model.params.byName) if (!model.params.tied.has(name)) n += t.size;
  return n;
}
