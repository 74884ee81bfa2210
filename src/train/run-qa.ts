/**
 * runTraining and evaluateSaved (run.ts) on extractive QA (--task-type qa, or SQuAD-shaped --train/--dev):
 * SQuAD v1.1/v2.0 or the Hugging Face layout, windows of --max-length tokens with --doc-stride, the
 * QA objective (train/objectives/qa.ts), EM/F1 in metrics.json and predictions.json beside it.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Allocation, BlockModule } from '../gelora/analyze.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter, randomHeadWarning } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { qaFeatures } from '../qa/features.js';
import { writePredictions } from '../qa/squad.js';
import { learningCurveSvg } from '../report/curves.js';
import { stepCounts, train, type TrainConfig } from './loop.js';
import { prepareMethod } from './methods.js';
import { applyPrecision } from '../engine/precision.js';
import { capQuestions, loadQaTask, predictQa, qaMetrics, qaObjective, readQa } from './objectives/qa.js';
import { taskOptions, type TrainOptions } from './options.js';
import type { EvaluateOptions, ProgressFactory } from './run.js';
import type { Task } from './task.js';

/** run.ts's flag checks and GeLoRA allocation, passed in (run.ts imports this file) */
export interface TrainSteps {
  checkTrainFlags(model: Model, o: TrainOptions): BlockModule[] | null;
  geloraAllocation(model: Model, tok: TextTokenizer, task: Task, modules: BlockModule[], o: TrainOptions, progress: ProgressFactory): Promise<Allocation>;
  progress: ProgressFactory;
  warn: (message: string) => void;
}

/** run_qa's doc_stride 128, or a third of the window when the window is short (the stride must leave room). */
const strideFor = (o: { docStride?: number; maxLength: number }): number => o.docStride ?? Math.min(128, Math.floor(o.maxLength / 3));

/** One QA training run as `gelora train` does it; returns (and writes) metrics.json, writes predictions.json. */
export async function runTrainingQa(o: TrainOptions, steps: TrainSteps): Promise<Record<string, unknown>> {
  const { checkTrainFlags, geloraAllocation, progress } = steps;
  const qa = await loadQaTask(taskOptions(o));
  for (const w of qa.warnings) steps.warn(w + '\n');
  const { version, name, analysis: task } = qa, trainQs = qa.train, devQs = qa.dev;
  const { model } = loadModel(o.model, { task: 'qa', seed: o.seed, halfWeights: o.method !== 'full' }); // frozen base: bf16/f16 weights stay half
  const modules = checkTrainFlags(model, o);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const objective = qaObjective({
    name, train: trainQs, dev: devQs, version, tokenizer: tok, modelType: model.type, batchSize: o.batchSize, seed: o.seed,
    maxLength: o.maxLength, stride: strideFor(o),
  });
  // GeLoRA's analysis and the methods' bookkeeping see the questions as (question, context) pairs (qa.analysis)
  const allocation = o.method === 'gelora' ? await geloraAllocation(model, tok, task, modules!, o, progress) : undefined;
  const config: TrainConfig = {
    epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay, warmupRatio: o.warmup, schedule: o.schedule,
    maxGradNorm: o.maxGradNorm, gradAccum: o.gradAccum, evalEvery: o.evalEvery, patience: o.patience, seed: o.seed,
    maxLength: o.maxLength, checkpointEvery: o.checkpointEvery, maxSteps: o.maxSteps,
  };
  const totalSteps = stepCounts(objective.trainFeatures.length, config).total;
  const prepared = prepareMethod(model, o.method, {
    r: o.r, alphaRatio: o.alphaRatio, dropout: o.loraDropout, allocation, targets: o.targets ?? null, seed: o.seed, baseModel: o.model, task, totalSteps, lr: o.lr,
    saved: objective.saved,
  });
  const precision = applyPrecision(model, o.precision ?? 'fp32', steps.warn); // after the method, as for sequence tasks
  writeJsonAtomic(join(o.out, 'train_config.json'), {
    method: o.method, model: o.model, task: name, task_type: 'qa', source: task.source, config, doc_stride: strideFor(o), ranks: prepared.ranks, trainable_params: prepared.trainableParams,
    precision: precision.precision,
  });
  const bar = progress(`train ${o.method}`);
  if (!o.resume) rmSync(join(o.out, 'metrics.json'), { force: true });
  const result = train({
    model, params: prepared.params, objective, config, outDir: o.out, resume: o.resume, hooks: prepared.hooks,
    onStep: (s, t, loss, metric) => bar.update(s, t, `loss ${loss.toFixed(4)}${metric === null ? '' : ` | f1 ${metric.toFixed(2)}`}`),
  });
  bar.stop();
  const saved = prepared.save(o.out); // the loop leaves the best state in the model
  const ev = objective.predict(model);
  writePredictions(join(o.out, 'predictions.json'), ev.predictions.predictions);
  const metrics = {
    task: name, task_type: 'qa', method: o.method, metric: 'f1', kind: 'qa', version, labels: [],
    best: result.best, final: result.final, steps: result.steps, stopped_early: result.stoppedEarly, dev: qaMetrics(ev.scores),
    questions: { train: trainQs.length, dev: devQs.length }, windows: { train: objective.trainFeatures.length, dev: objective.devFeatures.length },
    trainable_params: prepared.finalParams ? prepared.finalParams() : prepared.trainableParams, initial_trainable_params: prepared.trainableParams, ranks: prepared.ranks, train_seconds: result.trainSeconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024, saved, data: task.source, precision: precision.precision, precision_info: precision,
  };
  writeJsonAtomic(join(o.out, 'metrics.json'), metrics);
  writeFileAtomic(join(o.out, 'learning_curve.svg'), learningCurveSvg(join(o.out, 'log.jsonl'), `${o.method} on ${name}`));
  return metrics;
}

/** `gelora eval` on QA: EM/F1 of a saved adapter or model on --dev; predictions.json beside --out. */
export async function evaluateSavedQa(o: EvaluateOptions, warn: (message: string) => void): Promise<{ task: string; metric: string; primary: number; metrics: Record<string, number>; dev_loss: number; examples: number; precision: 'fp32' | 'bf16' }> {
  const dir = o.adapter ?? o.model;
  const infoFile = join(dir, 'gelora_task.json');
  const info = existsSync(infoFile) ? JSON.parse(readFileSync(infoFile, 'utf8')) as { max_length?: number; stride?: number; version?: 'v1.1' | 'v2.0'; max_answer_length?: number; null_score_diff_threshold?: number } : {};
  const devData = await readQa(o.dev ?? o.train, '--dev', o.badAnswers);
  if (devData.warning) warn(devData.warning + '\n');
  const dev = capQuestions(devData.examples, o.maxDev, o.seed);
  const { model } = loadModel(o.model, { task: 'qa' });
  if (o.adapter) loadAdapter(model, o.adapter);
  const headWarning = randomHeadWarning(model, o.model, o.adapter);
  if (headWarning) warn(headWarning);
  const { precision } = applyPrecision(model, o.precision ?? 'fp32', warn);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const maxLength = info.max_length ?? o.maxLength;
  const features = qaFeatures(dev, tok, { maxLength, stride: info.stride ?? strideFor({ docStride: o.docStride, maxLength }) });
  const version = info.version === 'v2.0' || devData.version === 'v2.0' ? 'v2.0' : 'v1.1';
  const r = predictQa(model, dev, features, tok.padId, o.batchSize, { version, maxAnswerLength: info.max_answer_length, nullScoreDiffThreshold: info.null_score_diff_threshold });
  if (o.out) writePredictions(join(dirname(o.out), 'predictions.json'), r.predictions.predictions);
  return { task: o.task ?? o.dev ?? o.train!, metric: 'f1', primary: r.scores.f1, metrics: qaMetrics(r.scores), dev_loss: r.loss, examples: dev.length, precision };
}
