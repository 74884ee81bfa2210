/**
 * `gelora train` and `gelora eval` as library functions: one training run from its options, and the
 * evaluation of a saved adapter or fully fine-tuned model on dev data.
 */
import { rmSync } from 'node:fs';
import { readJsonObject } from '../io/files.js';
import { join } from 'node:path';
import { allocate, analyzeTask, fixedTrainableParams, type Allocation, type BlockModule } from '../gelora/analyze.js';
import { allocationFromRanks, checkBudgetFits, checkRanksFit, targetBlockModules } from '../gelora/ranks.js';
import { checkWritable, writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter, randomHeadWarning } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { learningCurveSvg } from '../report/curves.js';
import { profileSvg } from '../report/plots.js';
import { useTrainingLabels } from './labels.js';
import { encodeExamples, evaluateOn, stepCounts, train, type TrainConfig } from './loop.js';
import type { MetricName } from './metrics.js';
import { prepareMethod, readTaskInfo } from './methods.js';
import { refuseBoth, taskOptions, type DataOptions, type TrainOptions } from './options.js';
import { loadTask, type Task } from './task.js';

/** A progress display for long work (the CLI passes bars with ETA; the library default is silent). */
export interface Progress { update(done: number, total: number, info?: string): void; stop(): void }
export type ProgressFactory = (label: string) => Progress;
const silent: ProgressFactory = () => ({ update() {}, stop() {} });

/** Checks of a train run's flags against the model, before any work: targets, ranks and budgets that fit. */
function checkTrainFlags(model: Model, o: TrainOptions): BlockModule[] | null {
  if (o.method === 'full') return null;
  const modules = targetBlockModules(model, o.targets);
  if (o.method === 'gelora') checkBudgetFits(o, modules, fixedTrainableParams(model));
  else checkRanksFit(Array.from({ length: model.numLayers }, () => o.r), modules, '--r');
  return modules;
}

/** The GeLoRA allocation for a training run: given ranks, a previous analysis, or a fresh one (written to outDir). */
async function geloraAllocation(model: Model, tok: TextTokenizer, task: Task, modules: BlockModule[], o: TrainOptions, progress: ProgressFactory): Promise<Allocation> {
  const fixed = fixedTrainableParams(model);
  const allocOpts = { alphaRatio: o.alphaRatio, budget: o.budget, budgetLikeRank: o.budgetLikeRank, fixedParams: fixed };
  if (o.ranks) {
    const r = o.ranks.split(',').map(Number);
    if (r.length !== model.numLayers || r.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`--ranks needs ${model.numLayers} non-negative integers, got "${o.ranks}"`);
    return allocationFromRanks(r, modules, allocOpts);
  }
  if (o.geloraDir) {
    const g = readJsonObject(join(o.geloraDir, 'gelora.json')) as unknown as { profile: { id: number; low: number; high: number }[]; rule: { offset: number; error_aware: boolean } };
    if (g.profile.length !== model.numLayers + 1) throw new Error(`${o.geloraDir}/gelora.json has ${g.profile.length - 1} blocks, the model ${model.numLayers}`);
    const alloc = allocate(g.profile, modules, { ...allocOpts, offset: g.rule.offset, errorAware: g.rule.error_aware });
    checkRanksFit(alloc.ranks, modules, `${o.geloraDir}/gelora.json: rank`);
    return alloc;
  }
  const bar = progress('hidden states');
  const { report, alloc } = analyzeTask(model, tok, task.train, { modelPath: o.model, taskName: task.name, modules, allocOpts, samples: o.samples, maxLength: o.maxLength, seed: o.seed, onBatch: (d, t) => bar.update(d, t) });
  bar.stop();
  checkRanksFit(alloc.ranks, modules, 'the analysis gave rank');
  writeJsonAtomic(join(o.out, 'gelora.json'), report);
  writeFileAtomic(join(o.out, 'profile.svg'), profileSvg(report.profile, alloc.ranks, `GeLoRA profile: ${task.name}`));
  return alloc;
}

/**
 * One training run, as `gelora train` does it: loads the task and the model, checks the options
 * against them before any work, runs the GeLoRA analysis when needed, trains, saves the adapter (or
 * model) and writes metrics.json, learning_curve.svg and train_config.json into `o.out`.
 * Returns the metrics.
 */
export async function runTraining(o: TrainOptions, hooks: { progress?: ProgressFactory } = {}): Promise<Record<string, unknown>> {
  const progress = hooks.progress ?? silent;
  refuseBoth(o as unknown as Record<string, unknown>, ['budget', '--budget'], ['budgetLikeRank', '--budget-like-rank']);
  checkWritable(o.out, '--out', 'dir');
  const task = await loadTask(taskOptions(o));
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls', seed: o.seed });
  const modules = checkTrainFlags(model, o);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const allocation = o.method === 'gelora' ? await geloraAllocation(model, tok, task, modules!, o, progress) : undefined;
  const config: TrainConfig = {
    epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay, warmupRatio: o.warmup, schedule: o.schedule,
    maxGradNorm: o.maxGradNorm, gradAccum: o.gradAccum, evalEvery: o.evalEvery, patience: o.patience, seed: o.seed,
    maxLength: o.maxLength, checkpointEvery: o.checkpointEvery, maxSteps: o.maxSteps,
  };
  const totalSteps = stepCounts(task.train.length, config).total;
  const prepared = prepareMethod(model, o.method, { r: o.r, alphaRatio: o.alphaRatio, dropout: o.loraDropout, allocation, targets: o.targets ?? null, seed: o.seed, baseModel: o.model, task, totalSteps, lr: o.lr });
  writeJsonAtomic(join(o.out, 'train_config.json'), { method: o.method, model: o.model, task: task.name, source: task.source, config, ranks: prepared.ranks, trainable_params: prepared.trainableParams });
  const bar = progress(`train ${o.method}`);
  if (!o.resume) rmSync(join(o.out, 'metrics.json'), { force: true }); // never beside another run's weights
  const result = train({
    model, params: prepared.params, tokenizer: tok, task, config, outDir: o.out, resume: o.resume, hooks: prepared.hooks,
    onStep: (s, t, loss, metric) => bar.update(s, t, `loss ${loss.toFixed(4)}${metric === null ? '' : ` | ${task.metric} ${metric.toFixed(4)}`}`),
  });
  bar.stop();
  const saved = prepared.save(o.out); // the loop leaves the best state in the model
  const metrics = {
    task: task.name, method: o.method, metric: task.metric, kind: task.kind, labels: task.labels,
    best: result.best, final: result.final, steps: result.steps, stopped_early: result.stoppedEarly,
    trainable_params: prepared.finalParams ? prepared.finalParams() : prepared.trainableParams, initial_trainable_params: prepared.trainableParams, ranks: prepared.ranks, train_seconds: result.trainSeconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024, saved: saved, data: task.source,
  };
  writeJsonAtomic(join(o.out, 'metrics.json'), metrics);
  writeFileAtomic(join(o.out, 'learning_curve.svg'), learningCurveSvg(join(o.out, 'log.jsonl'), `${o.method} on ${task.name}`));
  return metrics;
}

export interface EvaluateOptions extends DataOptions {
  /** base model folder (or a fully fine-tuned model folder) */
  model: string;
  /** PEFT LoRA adapter folder */
  adapter?: string;
  /** write the metrics as JSON here */
  out?: string;
  maxLength: number;
  batchSize: number;
}

/** Dev metrics of a saved adapter (or fully fine-tuned model), in the label order it was trained with. */
export async function evaluateSaved(o: EvaluateOptions, hooks: { warn?: (message: string) => void } = {}): Promise<{ task: string; metric: string; primary: number; metrics: Record<string, number>; dev_loss: number; examples: number }> {
  if (o.out) checkWritable(o.out, '--out', 'file');
  const info = readTaskInfo(o.adapter ?? o.model);
  const task = await loadTask({ ...taskOptions(o), regression: o.regression ?? (info ? info.kind === 'regression' : undefined), metric: o.metric ?? (info?.metric as MetricName | undefined) });
  // the label order of training, not of this file
  if (info) useTrainingLabels(task, info.labels);
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls' });
  if (o.adapter) loadAdapter(model, o.adapter);
  // a head weight in neither the base nor the adapter was drawn at random: predictions will not reproduce
  const warning = randomHeadWarning(model, o.model, o.adapter);
  if (warning) (hooks.warn ?? ((m: string) => process.stderr.write(m)))(warning);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const r = evaluateOn(model, task, encodeExamples(tok, task.dev, o.maxLength), tok.padId, o.batchSize);
  return { task: task.name, metric: task.metric, primary: r.primary, metrics: r.metrics, dev_loss: r.loss, examples: task.dev.length };
}
