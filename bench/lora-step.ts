/**
 * One LoRA training step on a BERT-style encoder: the same work as
 * `bench/torch_reference.py lora_step CONFIG` (forward, cross-entropy, backward, AdamW over LoRA + head).
 */
import { kernels } from '../src/engine/backend.js';
import { crossEntropy } from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { backward, scope } from '../src/engine/tensor.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig } from '../src/lora/lora.js';
import { BertForSequenceClassification } from '../src/models/bert.js';
import type { ModelInputs } from '../src/models/model.js';
import { initWeights } from '../src/models/modules.js';
import { applyPrecision, type Precision, type PrecisionInfo } from '../src/engine/precision.js';
import { AdamW } from '../src/train/optim.js';
import { benchConfigs, median, peakRssMb, pick, type LoraStepConfig } from './configs.js';

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

export interface LoraStepResult {
  bench: 'lora_step'; config: string; backend: string; median_step_s: number; min_step_s: number;
  tokens_per_s: number; peak_rss_mb: number; trainable_params: number; first_loss: number; last_loss: number; steps: number;
  /** the matmul precision that ran, and oneDNN's ISA */
  precision: PrecisionInfo['precision']; isa: string;
}

export function loraStepBench(name: string, steps = 10, warmup = 2, precision: Precision = 'fp32'): LoraStepResult {
  const c = pick(benchConfigs().lora_step, name, 'lora_step');
  const model = buildBenchModel(c);
  // LoRA on the six matrices of every layer; SEQ_CLS trains the classifier in full, as the reference does
  const { trainable: params } = applyLoraConfig(model, defaultLoraConfig(model, { r: c.lora_r, lora_alpha: c.lora_alpha, target_modules: c.targets }));
  const prec = applyPrecision(model, precision, () => {}); // after LoRA: the frozen weights in bf16 mode
  const opt = new AdamW(params, { lr: 1e-4 });
  const { inputs, labels } = benchInputs(c);
  const times: number[] = [], losses: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const loss = scope(() => {
      const { logits } = model.forward(inputs, { keepHidden: false });
      const l = crossEntropy(logits, labels);
      opt.zeroGrad();
      backward(l);
      return l.item();
    });
    opt.update();
    const dt = (performance.now() - t0) / 1000;
    if (i >= warmup) times.push(dt);
    losses.push(loss);
  }
  const med = median(times);
  return {
    bench: 'lora_step', config: name, backend: kernels().name, median_step_s: med, min_step_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, peak_rss_mb: peakRssMb(),
    trainable_params: params.reduce((s, p) => s + p.size, 0), first_loss: losses[0], last_loss: losses[losses.length - 1], steps,
    precision: prec.precision, isa: prec.isa,
  };
}
