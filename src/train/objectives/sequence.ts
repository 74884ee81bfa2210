/**
 * Sequence classification and regression: one label (a class index or a real target) per text or
 * text pair, the model's sequence-classification logits, cross-entropy or mean squared error, GLUE's
 * metrics (metrics.ts). Batches are length-bucketed (batches.ts); dev batches are sorted by length.
 */
import { crossEntropy, mseLoss } from '../../engine/ops.js';
import { noGrad, scope, type Tensor } from '../../engine/tensor.js';
import { padBatch, type TextTokenizer } from '../../io/tokenizer.js';
import type { Model, ModelInputs } from '../../models/model.js';
import { epochBatches } from '../batches.js';
import { evaluate } from '../metrics.js';
import { hashInts, type EvalResult, type Objective } from '../objective.js';
import type { LabeledExample, Task } from '../task.js';

export interface Encoded { ids: number[]; typeIds: number[]; label: number }

export function encodeExamples(tok: TextTokenizer, xs: LabeledExample[], maxLength: number): Encoded[] {
  return xs.map((x) => ({ ...tok.encode(x.text, x.pair ?? null, { maxLength }), label: x.label }));
}

function batchInputs(enc: Encoded[], idx: number[], padId: number): { x: ModelInputs; labels: number[] } {
  return { x: padBatch(idx.map((i) => enc[i].ids), idx.map((i) => enc[i].typeIds), padId), labels: idx.map((i) => enc[i].label) };
}

function taskLoss(task: Pick<Task, 'kind'>, logits: Tensor, labels: number[]): Tensor {
  return task.kind === 'regression' ? mseLoss(logits, labels) : crossEntropy(logits, Int32Array.from(labels));
}

/** Predictions and mean loss on a set of encoded examples (no gradients, dropout off). */
export function predict(model: Model, task: Pick<Task, 'kind'>, enc: Encoded[], padId: number, batchSize: number): { pred: number[]; loss: number } {
  const order = [...enc.keys()].sort((a, b) => enc[a].ids.length - enc[b].ids.length);
  const pred = new Array<number>(enc.length);
  let lossSum = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const idx = order.slice(s, s + batchSize);
    const { x, labels } = batchInputs(enc, idx, padId);
    noGrad(() => scope(() => {
      const logits = model.forward(x, { keepHidden: false }).logits;
      lossSum += taskLoss(task, logits, labels).item() * idx.length;
      const C = logits.shape[1], d = logits.data; // I/O boundary: per-batch logits read in place for the predictions (toFloat32 would copy every batch)
      idx.forEach((i, r) => {
        if (task.kind === 'regression') { pred[i] = d[r * C]; return; }
        let best = 0;
        for (let c = 1; c < C; c++) if (d[r * C + c] > d[r * C + best]) best = c;
        pred[i] = best;
      });
    }));
  }
  return { pred, loss: lossSum / enc.length };
}

export function evaluateOn(model: Model, task: Pick<Task, 'kind' | 'metric'>, enc: Encoded[], padId: number, batchSize: number): EvalResult {
  const { pred, loss } = predict(model, task, enc, padId, batchSize);
  const r = evaluate(task.kind, pred, enc.map((e) => e.label), task.metric);
  return { ...r, loss, predictions: pred };
}

/** gelora_task.json: the label order and metric a model was trained with, next to its weights (eval reads it back). */
export function sequenceTaskInfo(task: Task): { name: string; kind: Task['kind']; labels: string[]; metric: string; [k: string]: unknown } {
  return { name: task.name, kind: task.kind, labels: task.labels, metric: task.metric };
}

/** The label fields of a fully fine-tuned model's config.json, as transformers writes them. */
export function sequenceConfigFields(task: Task): Record<string, unknown> {
  const labels = task.kind === 'regression' ? ['LABEL_0'] : task.labels;
  return {
    num_labels: labels.length, id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])), ...(task.kind === 'regression' ? { problem_type: 'regression' } : {}),
  };
}

export interface SequenceOptions {
  task: Task;
  /** the tokenizer that encodes task.train and task.dev; or already encoded examples (benchmarks) */
  tokenizer?: TextTokenizer | null;
  encoded?: { train: Encoded[]; dev: Encoded[]; padId: number };
  batchSize: number;
  seed: number;
  maxLength: number;
}

/** The sequence classification (or regression, by task.kind) objective. */
export function sequenceObjective(o: SequenceOptions): Objective {
  const { task } = o;
  if (!o.encoded && !o.tokenizer) throw new Error('train: give a tokenizer or encoded examples');
  const enc = o.encoded?.train ?? encodeExamples(o.tokenizer!, task.train, o.maxLength);
  const devEnc = o.encoded?.dev ?? encodeExamples(o.tokenizer!, task.dev, o.maxLength);
  const padId = o.encoded?.padId ?? o.tokenizer!.padId;
  if (enc.length === 0) throw new Error('no training examples');
  const lengths = enc.map((e) => e.ids.length);
  return {
    kind: task.kind, metric: task.metric, select: 'best',
    saved: { info: sequenceTaskInfo(task), config: sequenceConfigFields(task) },
    epochBatches: (epoch) => epochBatches(enc.length, lengths, o.batchSize, o.seed, epoch),
    batchesPerEpoch: () => Math.ceil(enc.length / o.batchSize),
    loss: (model, idx) => {
      const { x, labels } = batchInputs(enc, idx, padId);
      return taskLoss(task, model.forward(x, { keepHidden: false }).logits, labels);
    },
    evaluate: (model) => evaluateOn(model, task, devEnc, padId, Math.max(o.batchSize, 32)),
    fingerprint: () => ({
      kind: task.kind, task: task.name, labels: task.labels, metric: task.metric, train_examples: enc.length, dev_examples: devEnc.length,
      data: hashInts((push) => {
        for (const set of [enc, devEnc]) for (const e of set) { push(e.ids.length); e.ids.forEach(push); e.typeIds.forEach(push); push(Math.round(e.label * 1e6)); }
      }),
    }),
  };
}
