/**
 * The options of one training run, as `gelora train` takes them (the CLI's flags map onto these
 * fields one to one: src/cli/train-options.ts), and the task options they imply.
 */
import type { Method } from './methods.js';
import type { MetricName } from './metrics.js';
import type { TaskOptions } from './task.js';
import type { TrainConfig } from './loop.js';
import type { Precision } from '../engine/precision.js';

/** seq-cls: a label per text (classification, regression); causal-lm: prompt/completion or chat messages; qa: extractive QA (SQuAD). */
export const TASK_TYPES = ['seq-cls', 'causal-lm', 'qa'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** The data flags shared by train, eval and compare. */
export interface DataOptions {
  /** qa: context tokens consecutive windows share */
  docStride?: number;
  /** qa: an answer_start that does not point at the answer text refuses the file (default) or leaves the answer out, naming the ids */
  badAnswers?: 'refuse' | 'skip';
  train?: string; dev?: string; glue?: string; task?: string; taskType?: TaskType; packing?: boolean; textCol?: string; pairCol?: string; labelCol?: string; regression?: boolean; maxTrain?: number; maxDev?: number; metric?: MetricName; seed: number }

/** The training flags shared by train and compare. */
export interface TuningOptions {
  epochs: number; batchSize: number; lr: number; weightDecay: number; warmup: number;
  schedule: TrainConfig['schedule']; maxGradNorm: number; gradAccum: number; evalEvery: number; patience: number; maxLength: number;
  checkpointEvery: number; maxSteps?: number; r: number; alphaRatio: number; loraDropout: number; ranks?: string; geloraDir?: string;
  budget?: number; budgetLikeRank?: number; samples: number; targets?: string[];
  /** matmul precision of the training (src/engine/precision.ts); the GeLoRA analysis stays fp32 */
  precision?: Precision;
}

/** Every option of `gelora train`. */
export interface TrainOptions extends DataOptions, TuningOptions { model: string; method: Method; out: string; resume?: boolean }

/** The task-loading options of a run's data options. */
export function taskOptions(o: DataOptions): TaskOptions {
  return { taskType: o.taskType, docStride: o.docStride, badAnswers: o.badAnswers, train: o.train, dev: o.dev, glue: o.glue, task: o.task, textCol: o.textCol, pairCol: o.pairCol, labelCol: o.labelCol, regression: o.regression, maxTrain: o.maxTrain, maxDev: o.maxDev, metric: o.metric, seed: o.seed };
}

/** Two flags that exclude each other (the same refusal for every command that has both). */
export function refuseBoth(o: Record<string, unknown>, a: [key: string, flag: string], b: [key: string, flag: string]): void {
  if (o[a[0]] !== undefined && o[b[0]] !== undefined) throw new Error(`give ${a[1]} or ${b[1]}, not both`);
}

