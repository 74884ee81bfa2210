/**
 * BERT masked-language-model pretraining (the objective of Devlin et al. without next-sentence
 * prediction): corpus lines tokenized and packed into full sequences [CLS] ... [SEP]; 15% of the
 * tokens chosen for prediction, of those 80% replaced by [MASK], 10% by a random token, 10% kept;
 * cross-entropy over the chosen tokens only, so the vocabulary projection runs on 15% of the tokens.
 * Held-out MLM loss and accuracy with a fixed masking seed. The result is the final state, saved as a
 * BertForMaskedLM folder.
 */
import { join } from 'node:path';
import { crossEntropy } from '../../engine/ops.js';
import { Rng } from '../../engine/random.js';
import { noGrad, scope } from '../../engine/tensor.js';
import { writeJsonAtomic } from '../../io/atomic.js';
import { writeSafetensors, type TensorToWrite } from '../../io/safetensors.js';
import type { TextTokenizer } from '../../io/tokenizer.js';
import type { BertConfig, BertForSequenceClassification } from '../../models/bert.js';
import type { ModelInputs } from '../../models/model.js';
import { hashInts, type Objective } from '../objective.js';

/** Token ids of every line, concatenated and cut into sequences of seq - 2 pieces. */
export function packCorpus(tok: TextTokenizer, lines: string[], seq: number, onProgress?: (done: number, total: number) => void): Int32Array[] {
  const body = seq - 2, out: Int32Array[] = [];
  let cur: number[] = [];
  lines.forEach((l, i) => {
    const ids = tok.encode(l, null, { maxLength: 100000 }).ids.slice(1, -1); // without [CLS]/[SEP]
    for (const id of ids) {
      cur.push(id);
      if (cur.length === body) { out.push(Int32Array.from(cur)); cur = []; }
    }
    if (onProgress && i % 5000 === 0) onProgress(i, lines.length);
  });
  return out;
}

export interface MlmBatch { x: ModelInputs; positions: Int32Array; labels: Int32Array }
export interface MlmIds { cls: number; sep: number; mask: number; vocab: number; firstWord: number; special: ReadonlySet<number> }

/**
 * [CLS] chunk [SEP] rows with BERT's masking: round(maskProb * length) positions per sequence, as
 * BERT's create_pretraining_data picks them, so every batch has the same number of predictions.
 * positions are flat (b * T + t).
 */
export function maskBatch(chunks: Int32Array[], ids: MlmIds, maskProb: number, rng: Rng): MlmBatch {
  const B = chunks.length, T = chunks[0].length + 2;
  const inputIds = new Int32Array(B * T), positions: number[] = [], labels: number[] = [];
  chunks.forEach((c, b) => {
    inputIds[b * T] = ids.cls;
    inputIds.set(c, b * T + 1);
    inputIds[b * T + T - 1] = ids.sep;
    const cand: number[] = [];
    for (let t = 1; t < T - 1; t++) if (!ids.special.has(inputIds[b * T + t])) cand.push(b * T + t);
    const k = Math.min(cand.length, Math.max(1, Math.round(maskProb * (T - 2))));
    for (let j = 0; j < k; j++) { // partial Fisher-Yates: k distinct positions
      const r = j + rng.int(cand.length - j);
      [cand[j], cand[r]] = [cand[r], cand[j]];
    }
    for (const i of cand.slice(0, k).sort((x, y) => x - y)) {
      positions.push(i);
      labels.push(inputIds[i]);
      const r = rng.next();
      if (r < 0.8) inputIds[i] = ids.mask;
      else if (r < 0.9) inputIds[i] = ids.firstWord + rng.int(ids.vocab - ids.firstWord); // a random real word piece
    }
  });
  return { x: { inputIds, attentionMask: new Float32Array(B * T).fill(1), batch: B, seq: T }, positions: Int32Array.from(positions), labels: Int32Array.from(labels) };
}

/** Held-out MLM loss and accuracy (fixed masking seed). */
export function mlmEval(model: BertForSequenceClassification, chunks: Int32Array[], ids: MlmIds, c: { batch: number; maskProb: number }): { loss: number; accuracy: number } {
  const rng = new Rng(12345);
  let loss = 0, correct = 0, n = 0;
  for (let s = 0; s < chunks.length; s += c.batch) {
    const b = maskBatch(chunks.slice(s, s + c.batch), ids, c.maskProb, rng);
    noGrad(() => scope(() => {
      const logits = model.mlmLogits(model.encode(b.x, false)[0], b.positions);
      loss += crossEntropy(logits, b.labels).item() * b.labels.length;
      const V = logits.shape[1], d = logits.data; // I/O boundary: per-batch logits read in place for the argmax (toFloat32 would copy every batch)
      for (let r = 0; r < b.labels.length; r++) {
        let best = 0;
        for (let v = 1; v < V; v++) if (d[r * V + v] > d[r * V + best]) best = v;
        if (best === b.labels[r]) correct++;
      }
      n += b.labels.length;
    }));
  }
  return { loss: loss / n, accuracy: correct / n };
}

export interface MlmOptions {
  model: BertForSequenceClassification;
  chunks: Int32Array[];
  heldOut: Int32Array[];
  ids: MlmIds;
  /** sequences per batch */
  batch: number;
  maskProb: number;
  /** the fraction masked in the held-out evaluation (default maskProb) */
  evalMaskProb?: number;
  seed: number;
}

/**
 * What pretraining over packed sequences shares (MLM and ELECTRA): each epoch a seeded permutation of
 * the sequences cut into full batches (the remainder is dropped), a pure function of the epoch; one
 * random stream for masking (and ELECTRA's samples) that runs across steps and is checkpointed, so a
 * resumed run masks exactly as an uninterrupted one; and the fingerprint of the data and rates (with
 * the objective's own fields in `extra`). Refuses a corpus smaller than one batch and an empty
 * held-out set.
 */
export function packedPretraining(kind: string, o: { chunks: Int32Array[]; heldOut: Int32Array[]; batch: number; seed: number; maskProb: number; evalMaskProb?: number },
  extra: Record<string, unknown> = {}): { rng: Rng; common: Pick<Objective, 'epochBatches' | 'batchesPerEpoch' | 'fingerprint' | 'state'> } {
  const { chunks, heldOut, batch, seed } = o;
  if (chunks.length < batch) throw new Error(`the corpus packs into ${chunks.length} sequences, fewer than one batch of ${batch}`);
  if (heldOut.length === 0) throw new Error('the held-out corpus packs into no sequence; give a longer held-out text or a shorter --seq');
  const perEpoch = Math.floor(chunks.length / batch), rng = new Rng(seed);
  return {
    rng,
    common: {
      epochBatches: (epoch) => {
        const erng = new Rng((seed * 7919 + epoch * 104729 + 1) >>> 0);
        const order = Array.from({ length: chunks.length }, (_, i) => i);
        for (let i = order.length - 1; i > 0; i--) { const j = erng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
        return Array.from({ length: perEpoch }, (_, b) => order.slice(b * batch, (b + 1) * batch));
      },
      batchesPerEpoch: () => perEpoch,
      fingerprint: () => ({
        kind, sequences: chunks.length, held_out_sequences: heldOut.length, seq: chunks[0].length + 2, mask_prob: o.maskProb, eval_mask_prob: o.evalMaskProb,
        ...extra,
        data: hashInts((push) => { for (const set of [chunks, heldOut]) for (const c of set) c.forEach(push); }),
      }),
      state: { save: () => rng.getState(), load: (j) => rng.setState(j as [number, number | null]) },
    },
  };
}

/** The MLM objective: packedPretraining's batches, masking stream and fingerprint. */
export function mlmObjective(o: MlmOptions): Objective {
  const { rng, common } = packedPretraining('mlm', o);
  return {
    kind: 'mlm', metric: 'accuracy', select: 'final',
    ...common,
    loss: (_model, idx) => {
      const b = maskBatch(idx.map((i) => o.chunks[i]), o.ids, o.maskProb, rng);
      return crossEntropy(o.model.mlmLogits(o.model.encode(b.x, false)[0], b.positions), b.labels);
    },
    evaluate: () => {
      const e = mlmEval(o.model, o.heldOut, o.ids, { batch: o.batch, maskProb: o.evalMaskProb ?? o.maskProb });
      return { metrics: { accuracy: e.accuracy }, primary: e.accuracy, loss: e.loss };
    },
  };
}

/** A BertForMaskedLM checkpoint as transformers saves it (decoder tied to the word embeddings) in dir. */
export function saveMlmModel(dir: string, model: BertForSequenceClassification, cfg: BertConfig, dtype: 'f16' | 'f32'): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const n of model.params.names()) {
    const p = model.params.get(n);
    tensors[n] = { shape: [...p.shape], data: p.toFloat32(), dtype: dtype === 'f16' ? 'F16' : 'F32' };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeJsonAtomic(join(dir, 'config.json'), { architectures: ['BertForMaskedLM'], model_type: 'bert', ...cfg, num_labels: undefined, attention_probs_dropout_prob: 0.1, hidden_dropout_prob: 0.1, initializer_range: 0.02, position_embedding_type: 'absolute', torch_dtype: dtype === 'f16' ? 'float16' : 'float32' });
}
