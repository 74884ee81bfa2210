/**
 * Extractive question answering (SQuAD v1.1 / v2.0), as transformers' run_qa.py trains and scores it:
 * every (question, context) is split into windows (qa/features.ts: max length 384, stride 128 by
 * default) and the training examples are the windows, each labelled with its answer's start and end
 * tokens (the CLS index when the answer is not inside it). The loss is the mean of the start and end
 * cross-entropies of the qa_outputs logits (models/qa.ts). Evaluation runs every dev window, merges
 * the windows of one question in the n-best span search (qa/postprocess.ts: maximum answer length,
 * null answer against a threshold for v2.0) and scores exact match and F1 with the official scripts'
 * rules (qa/metric.ts), F1 primary; the dev loss is the windows' mean loss.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { noGrad, scope } from '../../engine/tensor.js';
import type { TextTokenizer } from '../../io/tokenizer.js';
import type { Model } from '../../models/model.js';
import { qaLogits, qaLoss } from '../../models/qa.js';
import { qaBatch, qaFeatures, type QaFeature } from '../../qa/features.js';
import { squadEvaluate, type SquadScores } from '../../qa/metric.js';
import { postprocessQa, type QaPredictions } from '../../qa/postprocess.js';
import { join } from 'node:path';
import { readSquad, type QaData, type QaExample } from '../../qa/squad.js';
import { Rng } from '../../engine/random.js';
import type { Task, TaskOptions } from '../task.js';
import { epochBatches } from '../batches.js';
import { hashInts, type EvalResult, type Objective } from '../objective.js';

/** transformers' architecture names of the QA models, for a fully fine-tuned model's config.json. */
const QA_ARCHITECTURES: Record<string, string> = {
  bert: 'BertForQuestionAnswering', roberta: 'RobertaForQuestionAnswering', distilbert: 'DistilBertForQuestionAnswering', 'deberta-v2': 'DebertaV2ForQuestionAnswering',
};

export interface QaObjectiveOptions {
  /** a name for logs and gelora_task.json */
  name: string;
  train: QaExample[];
  dev: QaExample[];
  /** v2.0: null answers are predicted (against nullScoreDiffThreshold) and scored HasAns/NoAns */
  version: 'v1.1' | 'v2.0';
  tokenizer: TextTokenizer;
  /** the model's config.json model_type (the architecture a full model is saved as) */
  modelType: string;
  batchSize: number;
  seed: number;
  /** tokens per window (run_qa's max_seq_length, default 384) */
  maxLength?: number;
  /** tokens consecutive windows share (run_qa's doc_stride, default 128) */
  stride?: number;
  /** post-processing: longest answer in tokens (30), candidates per window (20), v2.0 null threshold (0) */
  maxAnswerLength?: number;
  nBest?: number;
  nullScoreDiffThreshold?: number;
}

export interface QaEvaluation { predictions: QaPredictions; scores: SquadScores; loss: number }

export interface QaObjective extends Objective {
  readonly trainFeatures: QaFeature[];
  readonly devFeatures: QaFeature[];
  /** every dev window through the model, merged per question and scored: predictions.json's content and EM/F1 */
  predict(model: Model): QaEvaluation;
}

/** EM/F1 (and v2.0's HasAns/NoAns splits) as metrics: every numeric score of the official script's output. */
export function qaMetrics(s: SquadScores): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s)) if (typeof v === 'number') out[k] = v;
  return out;
}

export interface QaPostOptions { version: 'v1.1' | 'v2.0'; maxAnswerLength?: number; nBest?: number; nullScoreDiffThreshold?: number }

/**
 * Every window of `examples` through the model (no gradients), merged per question by the n-best
 * search and scored with the official rules: predictions.json's content, EM/F1 and the windows' mean loss.
 */
export function predictQa(model: Model, examples: QaExample[], features: QaFeature[], padId: number, batchSize: number, o: QaPostOptions): QaEvaluation {
  // windows sorted by length so a batch pads little; logit rows put back in feature order
  const order = [...features.keys()].sort((a, b) => features[a].ids.length - features[b].ids.length);
  const starts: Float32Array[] = new Array(features.length), ends: Float32Array[] = new Array(features.length);
  let lossSum = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const idx = order.slice(s, s + batchSize);
    noGrad(() => scope(() => {
      const b = qaBatch(idx.map((i) => features[i]), padId);
      const { start, end } = qaLogits(model.forward(b, { keepHidden: false }));
      lossSum += qaLoss(start, end, b.startPositions, b.endPositions).item() * idx.length;
      const T = b.seq, sd = start.toFloat32(), ed = end.toFloat32();
      idx.forEach((fi, r) => {
        const len = features[fi].ids.length;
        starts[fi] = sd.slice(r * T, r * T + len);
        ends[fi] = ed.slice(r * T, r * T + len);
      });
    }));
  }
  const predictions = postprocessQa(examples, features, starts, ends, {
    v2: o.version === 'v2.0', maxAnswerLength: o.maxAnswerLength ?? 30, nBest: o.nBest ?? 20, nullScoreDiffThreshold: o.nullScoreDiffThreshold ?? 0,
  });
  const scores = squadEvaluate(examples, predictions.predictions, { version: o.version });
  return { predictions, scores, loss: lossSum / features.length };
}

/** SQuAD-shaped data: SQuAD JSON ({"data": [{"paragraphs": ...}]}) or rows with question, context and answers (JSONL). */
export function squadShaped(file: string): boolean {
  if (!existsSync(file) || !statSync(file).isFile()) return false;
  const fd = openSync(file, 'r'), buf = Buffer.alloc(1 << 16);
  let head: string;
  try { head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8'); } finally { closeSync(fd); }
  if (/^\s*\{[\s\S]*"data"\s*:\s*\[[\s\S]*"paragraphs"\s*:/.test(head)) return true;
  const first = head.split('\n').find((l) => l.trim() !== '');
  if (!first) return false;
  try {
    const row = JSON.parse(first) as Record<string, unknown>;
    return !!row && typeof row === 'object' && 'question' in row && 'context' in row && 'answers' in row;
  } catch {
    return false;
  }
}

export function qaObjective(o: QaObjectiveOptions): QaObjective {
  const fo = { maxLength: o.maxLength ?? 384, stride: o.stride ?? 128 };
  if (o.train.length === 0) throw new Error(`${o.name}: no training questions`);
  if (o.dev.length === 0) throw new Error(`${o.name}: no dev questions`);
  const trainFeatures = qaFeatures(o.train, o.tokenizer, fo);
  const devFeatures = qaFeatures(o.dev, o.tokenizer, fo);
  const padId = o.tokenizer.padId;
  const lengths = trainFeatures.map((f) => f.ids.length);
  const v2 = o.version === 'v2.0';
  const post = { v2, maxAnswerLength: o.maxAnswerLength ?? 30, nBest: o.nBest ?? 20, nullScoreDiffThreshold: o.nullScoreDiffThreshold ?? 0 };
  const evalBatch = Math.max(o.batchSize, 32);

  const predict = (model: Model): QaEvaluation => predictQa(model, o.dev, devFeatures, padId, evalBatch, { ...post, version: o.version });

  return {
    kind: 'qa', metric: 'f1', select: 'best', trainFeatures, devFeatures, predict,
    saved: {
      info: { name: o.name, kind: 'qa', metric: 'f1', version: o.version, labels: [], max_length: fo.maxLength, stride: fo.stride, max_answer_length: post.maxAnswerLength, null_score_diff_threshold: post.nullScoreDiffThreshold },
      config: QA_ARCHITECTURES[o.modelType] ? { architectures: [QA_ARCHITECTURES[o.modelType]] } : {},
    },
    epochBatches: (epoch) => epochBatches(trainFeatures.length, lengths, o.batchSize, o.seed, epoch),
    batchesPerEpoch: () => Math.ceil(trainFeatures.length / o.batchSize),
    loss: (model, idx) => {
      const b = qaBatch(idx.map((i) => trainFeatures[i]), padId);
      const { start, end } = qaLogits(model.forward(b, { keepHidden: false }));
      return qaLoss(start, end, b.startPositions, b.endPositions);
    },
    evaluate: (model): EvalResult => {
      const r = predict(model);
      return { metrics: qaMetrics(r.scores), primary: r.scores.f1, loss: r.loss };
    },
    fingerprint: () => ({
      kind: 'qa', task: o.name, version: o.version, ...fo, train_windows: trainFeatures.length, dev_windows: devFeatures.length,
      post: JSON.stringify(post),
      data: hashInts((push) => {
        for (const set of [trainFeatures, devFeatures]) for (const f of set) { push(f.ids.length); f.ids.forEach(push); f.typeIds.forEach(push); push(f.startPosition); push(f.endPosition); }
      }),
    }),
  };
}

/** --task-type, else qa when the data files are SQuAD-shaped (or a saved model says it was trained for qa). */
export function resolveTaskType(o: Pick<TaskOptions, 'taskType' | 'train' | 'dev'>, savedDir?: string): 'seq-cls' | 'qa' {
  if (o.taskType) return o.taskType === 'qa' ? 'qa' : 'seq-cls';
  if (savedDir && existsSync(join(savedDir, 'gelora_task.json'))) {
    const info = JSON.parse(readFileSync(join(savedDir, 'gelora_task.json'), 'utf8')) as { kind?: string };
    if (info.kind === 'qa') return 'qa';
  }
  const files = [o.train, o.dev].filter((f): f is string => !!f);
  return files.length > 0 && files.every(squadShaped) ? 'qa' : 'seq-cls';
}

export async function readQa(file: string | undefined, flag: string, badAnswers: 'refuse' | 'skip' = 'refuse'): Promise<QaData> {
  if (!file) throw new Error(`--task-type qa needs ${flag} FILE (SQuAD v1.1/v2.0 JSON, or JSONL/parquet rows with id, context, question, answers)`);
  return readSquad(file, { badAnswers, skipHint: '--bad-answers skip' });
}

/** A seeded sample of at most n questions (--max-train / --max-dev), in file order. */
export function capQuestions(xs: QaExample[], n: number | undefined, seed: number): QaExample[] {
  if (!n || xs.length <= n) return xs;
  const rng = new Rng(seed + 99), idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) { const j = rng.int(i + 1); [idx[i], idx[j]] = [idx[j], idx[i]]; }
  return idx.slice(0, n).sort((a, b) => a - b).map((i) => xs[i]);
}

/** A QA data set as train, eval and compare load it: questions, the SQuAD version, and the (question, context) pairs GeLoRA's analysis reads as a Task. */
export interface QaTask {
  name: string; version: 'v1.1' | 'v2.0'; train: QaExample[]; dev: QaExample[]; source: Record<string, unknown>; analysis: Task;
  /** the readers' warnings (answers left out, naming the ids), for the user */
  warnings: string[];
}

export async function loadQaTask(o: TaskOptions): Promise<QaTask> {
  const trainData = await readQa(o.train, '--train', o.badAnswers), devData = await readQa(o.dev, '--dev', o.badAnswers);
  const version = trainData.version === 'v2.0' || devData.version === 'v2.0' ? 'v2.0' : 'v1.1';
  const seed = o.seed ?? 0;
  const train = capQuestions(trainData.examples, o.maxTrain, seed), dev = capQuestions(devData.examples, o.maxDev, seed);
  const name = o.task ?? o.train!;
  const source = { train: o.train, dev: o.dev, version, questions: { train: train.length, dev: dev.length } };
  const analysis: Task = {
    name, kind: 'classification', labels: [], metric: 'f1', source, dev: [],
    train: train.map((x, i) => ({ text: x.question, pair: x.context, label: 0, line: i + 1 })),
  };
  const warnings = [trainData.warning, devData.warning].filter((w): w is string => !!w);
  return { name, version, train, dev, source, analysis, warnings };
}
