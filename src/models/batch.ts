/** Forward passes over many sequences in batches, every hidden state and the logits kept. */
import { noGrad, scope } from '../engine/tensor.js';
import type { TensorToWrite } from '../io/safetensors.js';
import type { Model, ModelInputs } from './model.js';

/** Concatenates arrays end to end. */
function concat(parts: Float32Array[]): Float32Array {
  const r = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { r.set(p, at); at += p.length; }
  return r;
}

/**
 * Forward in batches of `batchSize` rows, concatenated along the batch axis: hidden_states.0..L
 * ([B, T, H]) and logits (a QA model: start_logits and end_logits [B, T], transformers' names), as
 * `gelora forward` writes them. Rows keep the inputs' common length T.
 */
export function forwardAll(model: Model, x: ModelInputs, batchSize: number): Record<string, TensorToWrite> {
  const out: Float32Array[][] = Array.from({ length: model.numLayers + 2 }, () => []);
  let logitShape: number[] = [];
  for (let s = 0; s < x.batch; s += batchSize) {
    const n = Math.min(batchSize, x.batch - s), T = x.seq;
    const part: ModelInputs = {
      inputIds: x.inputIds.subarray(s * T, (s + n) * T), attentionMask: (x.attentionMask as Float32Array).subarray(s * T, (s + n) * T),
      tokenTypeIds: x.tokenTypeIds?.subarray(s * T, (s + n) * T), batch: n, seq: T,
    };
    noGrad(() => scope(() => {
      const o = model.forward(part);
      o.hiddenStates.forEach((h, i) => out[i].push(h.toFloat32()));
      out[model.numLayers + 1].push(o.logits.toFloat32());
      logitShape = [...o.logits.shape.slice(1)];
    }));
  }
  const tensors: Record<string, TensorToWrite> = {};
  for (let i = 0; i <= model.numLayers; i++) tensors[`hidden_states.${i}`] = { shape: [x.batch, x.seq, model.hiddenSize], data: concat(out[i]) };
  const logits = concat(out[model.numLayers + 1]);
  if (model.task === 'qa') {
    // transformers' QuestionAnsweringModelOutput names: start_logits, end_logits [B, T] (the two columns of [B, T, 2])
    const start = new Float32Array(x.batch * x.seq), end = new Float32Array(x.batch * x.seq);
    for (let i = 0; i < start.length; i++) { start[i] = logits[2 * i]; end[i] = logits[2 * i + 1]; }
    tensors.start_logits = { shape: [x.batch, x.seq], data: start };
    tensors.end_logits = { shape: [x.batch, x.seq], data: end };
    return tensors;
  }
  tensors.logits = { shape: [x.batch, ...logitShape], data: logits };
  return tensors;
}
