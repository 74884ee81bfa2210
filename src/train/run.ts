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
import { applyPrecision, setMatmulPrecision, type Precision, type PrecisionInfo } from '../engine/precision.js';
import { dataColumns, exampleText, lmShapeOf, loadChatTemplate, readLmData, readLmExamples, readTokenizerConfig, specialTokens, type LmExample } from '../io/chat.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter, randomHeadWarning } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { learningCurveSvg } from '../report/curves.js';
import { profileSvg } from '../report/plots.js';
import { useTrainingLabels } from './labels.js';
import { encodeExamples, evaluateOn, predict, stepCounts, train, type TrainConfig, type TrainResult } from './loop.js';
import { evaluate, type MetricName } from './metrics.js';
import { PREDICTIONS_FILE, writePredictions } from './predictions.js';
import { prepareMethod, readTaskInfo, type Prepared } from './methods.js';
import { causalLmObjective, encodeLmExamples, evaluateLm, packLm, type LmEncoded, type LmEncodeOptions } from './objectives/causal-lm.js';
import { refuseBoth, taskOptions, type DataOptions, type TaskType, type TrainOptions } from './options.js';
import { loadTask, type Task } from './task.js';
import { resolveTaskType } from './objectives/qa.js';
import { evaluateSavedQa, runTrainingQa } from './run-qa.js';

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
async function geloraAllocation(model: Model, tok: TextTokenizer, task: { name: string; train: { text: string; pair?: string }[] }, modules: BlockModule[], o: TrainOptions, progress: ProgressFactory): Promise<Allocation> {
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
export async function runTraining(o: TrainOptions, hooks: { progress?: ProgressFactory; warn?: (message: string) => void } = {}): Promise<Record<string, unknown>> {
  const progress = hooks.progress ?? silent;
  refuseBoth(o as unknown as Record<string, unknown>, ['budget', '--budget'], ['budgetLikeRank', '--budget-like-rank']);
  setMatmulPrecision(o.precision ?? 'fp32'); // --precision bf16 where it cannot run: refused before any work
  checkWritable(o.out, '--out', 'dir');
  if (resolveTaskType(o) === 'qa') return runTrainingQa(o, { checkTrainFlags, geloraAllocation, progress, warn: hooks.warn ?? stderrWarn });
  if ((await taskTypeOf(o)) === 'causal-lm') return runCausalLmTraining(o, progress, hooks.warn ?? stderrWarn);
  const task = await loadTask(taskOptions(o));
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls', seed: o.seed, halfWeights: o.method !== 'full' }); // frozen base: bf16/f16 weights stay half
  const modules = checkTrainFlags(model, o);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const allocation = o.method === 'gelora' ? await geloraAllocation(model, tok, task, modules!, o, progress) : undefined;
  const config = trainConfigOf(o);
  const totalSteps = stepCounts(task.train.length, config).total;
  const prepared = prepareMethod(model, o.method, { r: o.r, alphaRatio: o.alphaRatio, dropout: o.loraDropout, allocation, targets: o.targets ?? null, seed: o.seed, baseModel: o.model, task, totalSteps, lr: o.lr });
  // after the method: its trainable weights stay f32 (full fine-tuning has no frozen weight to convert)
  const precision = applyPrecision(model, o.precision ?? 'fp32', hooks.warn);
  writeJsonAtomic(join(o.out, 'train_config.json'), { method: o.method, model: o.model, task: task.name, source: task.source, config, ranks: prepared.ranks, trainable_params: prepared.trainableParams, precision: precision.precision });
  const bar = progress(`train ${o.method}`);
  if (!o.resume) rmSync(join(o.out, 'metrics.json'), { force: true }); // never beside another run's weights
  const result = train({
    model, params: prepared.params, tokenizer: tok, task, config, outDir: o.out, resume: o.resume, hooks: prepared.hooks,
    onStep: (s, t, loss, metric) => bar.update(s, t, `loss ${loss.toFixed(4)}${metric === null ? '' : ` | ${task.metric} ${metric.toFixed(4)}`}`),
  });
  bar.stop();
  savePredictions(join(o.out, PREDICTIONS_FILE), model, task, tok, o, result, hooks.warn ?? stderrWarn);
  return finishRun(o, prepared, result, { task: task.name, metric: task.metric, kind: task.kind, labels: task.labels, data: task.source, precision });
}

/**
 * predictions.jsonl of the selected (best) state the loop left in the model: the dev set predicted
 * once more, batched as the loop's evaluation is, so the metric of these predictions is the one
 * that selected the state (a mismatch is reported, never hidden).
 */
function savePredictions(file: string, model: Model, task: Task, tok: TextTokenizer, o: TrainOptions, result: TrainResult, warn: (message: string) => void): void {
  const { pred } = predict(model, task, encodeExamples(tok, task.dev, o.maxLength), tok.padId, Math.max(o.batchSize, 32));
  const gold = task.dev.map((x) => x.label);
  const primary = evaluate(task.kind, pred, gold, task.metric).primary;
  if (result.best && Math.abs(primary - result.best.primary) > 1e-6) warn(`warning: ${file}: the saved predictions score ${task.metric} ${primary}, the selected evaluation ${result.best.primary}\n`);
  writePredictions(file, { prediction: pred, label: gold });
}

/** The loop's configuration from a run's options. */
function trainConfigOf(o: TrainOptions): TrainConfig {
  return {
    epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay, warmupRatio: o.warmup, schedule: o.schedule,
    maxGradNorm: o.maxGradNorm, gradAccum: o.gradAccum, evalEvery: o.evalEvery, patience: o.patience, seed: o.seed,
    maxLength: o.maxLength, checkpointEvery: o.checkpointEvery, maxSteps: o.maxSteps,
  };
}

/** Saves the trained state (the loop leaves the best state in the model) and writes metrics.json and learning_curve.svg. */
function finishRun(o: TrainOptions, prepared: Prepared, result: TrainResult, about: { task: string; metric: string; kind: string; labels: string[]; data: Record<string, unknown>; precision: PrecisionInfo }): Record<string, unknown> {
  const saved = prepared.save(o.out);
  const metrics = {
    task: about.task, method: o.method, metric: about.metric, kind: about.kind, labels: about.labels,
    best: result.best, final: result.final, steps: result.steps, stopped_early: result.stoppedEarly,
    trainable_params: prepared.finalParams ? prepared.finalParams() : prepared.trainableParams, initial_trainable_params: prepared.trainableParams, ranks: prepared.ranks, train_seconds: result.trainSeconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024, saved, data: about.data,
    precision: about.precision.precision, precision_info: about.precision,
  };
  writeJsonAtomic(join(o.out, 'metrics.json'), metrics);
  writeFileAtomic(join(o.out, 'learning_curve.svg'), learningCurveSvg(join(o.out, 'log.jsonl'), `${o.method} on ${about.task}`));
  return metrics;
}

/** --task-type, or causal-lm when --train has prompt/completion or messages columns. */
export async function taskTypeOf(o: DataOptions): Promise<TaskType> {
  if (o.taskType) return o.taskType;
  if (!o.train || o.glue) return 'seq-cls';
  return lmShapeOf(await dataColumns(o.train)) ? 'causal-lm' : 'seq-cls';
}

/** How a model folder turns causal-LM examples into ids and labels: its tokenizer, chat template and eos token. */
export function lmEncoding(dir: string, tok: TextTokenizer, model: Model, maxLength: number): LmEncodeOptions {
  const eosName = specialTokens(readTokenizerConfig(dir)).eos_token;
  const eosId = (eosName !== undefined ? tok.tokenId(eosName) : undefined) ?? (typeof model.config.eos_token_id === 'number' ? model.config.eos_token_id : null);
  return { tokenizer: tok, template: loadChatTemplate(dir), maxLength, eosId };
}

/** Examples encoded (and packed when asked); the sequences cut from the left are counted in a warning. */
function encodeLmSets(sets: Record<string, LmExample[]>, enc: LmEncodeOptions, packing: boolean | undefined, warn: (message: string) => void): { sets: Record<string, LmEncoded[]>; truncated: Record<string, number> } {
  const out: Record<string, LmEncoded[]> = {}, truncated: Record<string, number> = {};
  for (const [k, xs] of Object.entries(sets)) {
    const r = encodeLmExamples(xs, enc);
    out[k] = packing ? packLm(r.encoded, enc.maxLength) : r.encoded;
    truncated[k] = r.truncated;
  }
  const cut = Object.values(truncated).reduce((a, b) => a + b, 0), total = Object.values(sets).reduce((a, xs) => a + xs.length, 0);
  if (cut > 0) warn(`warning: ${cut} of ${total} examples (${Object.entries(truncated).map(([k, n]) => `${n} ${k}`).join(', ')}) are longer than --max-length ${enc.maxLength}; their beginnings (the prompt first) were cut\n`);
  return { sets: out, truncated };
}

const stderrWarn = (m: string): void => { process.stderr.write(m); };

/** The model of a causal-LM run (or evaluation): a decoder with its language-model head. */
function causalLmModel(dir: string, seed?: number, halfWeights = true): Model {
  const { model } = loadModel(dir, { task: 'causal-lm', seed, halfWeights });
  if (model.task !== 'causal-lm') throw new Error(`${dir}: this ${model.type} model has no causal-LM head; causal-lm needs a decoder (llama, qwen2, gpt2, ...)`);
  return model;
}

/**
 * A causal-LM fine-tuning run (`--task-type causal-lm`, or prompt/completion or messages data): every
 * method through the same loop with the causal-LM objective; the adapter (PEFT CAUSAL_LM) or the
 * model is saved with gelora_task.json, and metrics.json as for sequence tasks.
 */
async function runCausalLmTraining(o: TrainOptions, progress: ProgressFactory, warn: (message: string) => void): Promise<Record<string, unknown>> {
  if (!o.train) throw new Error('causal-lm: give --train FILE (JSONL or parquet with prompt/completion or messages)');
  const name = o.task ?? o.train;
  const model = causalLmModel(o.model, o.seed, o.method !== 'full'); // full fine-tuning trains every weight: f32
  const modules = checkTrainFlags(model, o);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const data = await readLmData({ train: o.train, dev: o.dev, maxTrain: o.maxTrain, maxDev: o.maxDev, seed: o.seed });
  const enc = lmEncoding(o.model, tok, model, o.maxLength);
  const { sets, truncated } = encodeLmSets({ train: data.train, dev: data.dev }, enc, o.packing, warn);
  const source = { ...data.source, truncated, packing: Boolean(o.packing), chat_template: enc.template?.name ?? null };
  const config = trainConfigOf(o);
  const objective = causalLmObjective({ train: sets.train, dev: sets.dev, padId: tok.padId, batchSize: o.batchSize, seed: o.seed, info: { name, max_length: o.maxLength, packing: Boolean(o.packing), chat_template: enc.template?.name ?? null } });
  const allocation = o.method === 'gelora' ? await geloraAllocation(model, tok, { name, train: data.train.map((x) => ({ text: exampleText(x, enc.template) })) }, modules!, o, progress) : undefined;
  const prepared = prepareMethod(model, o.method, { r: o.r, alphaRatio: o.alphaRatio, dropout: o.loraDropout, allocation, targets: o.targets ?? null, seed: o.seed, baseModel: o.model, totalSteps: stepCounts(sets.train.length, config).total, lr: o.lr, saved: objective.saved });
  const precision = applyPrecision(model, o.precision ?? 'fp32', warn); // after the method, as for sequence tasks
  writeJsonAtomic(join(o.out, 'train_config.json'), { method: o.method, model: o.model, task: name, source, config, ranks: prepared.ranks, trainable_params: prepared.trainableParams, precision: precision.precision });
  const bar = progress(`train ${o.method}`);
  if (!o.resume) rmSync(join(o.out, 'metrics.json'), { force: true }); // never beside another run's weights
  const result = train({
    model, params: prepared.params, objective, config, outDir: o.out, resume: o.resume, hooks: prepared.hooks,
    onStep: (s, t, loss, metric) => bar.update(s, t, `loss ${loss.toFixed(4)}${metric === null ? '' : ` | ${objective.metric} ${metric.toFixed(4)}`}`),
  });
  bar.stop();
  return finishRun(o, prepared, result, { task: name, metric: objective.metric, kind: 'causal-lm', labels: [], data: source, precision });
}

/** Dev loss, perplexity and token accuracy of a saved causal-LM adapter (or model) on --dev (or --train). */
async function evaluateCausalLm(o: EvaluateOptions, info: Record<string, unknown> | null, warn: (message: string) => void): Promise<EvalSummary> {
  const file = o.dev ?? o.train;
  if (!file) throw new Error('eval: give --dev FILE (JSONL or parquet with prompt/completion or messages)');
  const model = causalLmModel(o.model);
  if (o.adapter) loadAdapter(model, o.adapter);
  const { precision } = applyPrecision(model, o.precision ?? 'fp32', warn);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const { examples } = await readLmExamples(file);
  const dev = encodeLmSets({ dev: examples }, lmEncoding(o.model, tok, model, o.maxLength), o.packing, warn).sets.dev;
  const r = evaluateLm(model, dev, tok.padId, o.batchSize);
  return { task: o.task ?? (typeof info?.name === 'string' ? info.name : file), metric: 'token_accuracy', primary: r.primary, metrics: r.metrics, dev_loss: r.loss, examples: examples.length, precision };
}

export interface EvaluateOptions extends DataOptions {
  /** base model folder (or a fully fine-tuned model folder) */
  model: string;
  /** PEFT LoRA adapter folder */
  adapter?: string;
  /** write the metrics as JSON here */
  out?: string;
  /** write the dev predictions here (predictions.jsonl's format, src/train/predictions.ts; sequence tasks) */
  predictions?: string;
  maxLength: number;
  batchSize: number;
  /** matmul precision of the forward passes (src/engine/precision.ts) */
  precision?: Precision;
}

/** What eval reports: the task, its selection metric, every dev metric, the dev loss and the precision that ran. */
export interface EvalSummary { task: string; metric: string; primary: number; metrics: Record<string, number>; dev_loss: number; examples: number; precision: 'fp32' | 'bf16' }

/** Dev metrics of a saved adapter (or fully fine-tuned model), in the label order it was trained with. */
export async function evaluateSaved(o: EvaluateOptions, hooks: { warn?: (message: string) => void } = {}): Promise<EvalSummary> {
  if (o.out) checkWritable(o.out, '--out', 'file');
  if (o.predictions) checkWritable(o.predictions, '--predictions', 'file');
  setMatmulPrecision(o.precision ?? 'fp32'); // refused before any work where bf16 cannot run
  const noPredictions = (kind: string): void => { if (o.predictions) throw new Error(`--predictions: dev predictions are written for sequence classification and regression, not ${kind}; leave it out`); };
  if (o.taskType !== 'causal-lm' && resolveTaskType(o, o.adapter ?? o.model) === 'qa') { noPredictions('extractive QA'); return evaluateSavedQa(o, hooks.warn ?? stderrWarn); }
  const info = readTaskInfo(o.adapter ?? o.model);
  if (o.taskType === 'causal-lm' || (o.taskType === undefined && (info?.kind as string | undefined) === 'causal-lm')) { noPredictions('causal LM'); return evaluateCausalLm(o, info, hooks.warn ?? stderrWarn); }
  const task = await loadTask({ ...taskOptions(o), regression: o.regression ?? (info ? info.kind === 'regression' : undefined), metric: o.metric ?? (info?.metric as MetricName | undefined) });
  // the label order of training, not of this file
  if (info) useTrainingLabels(task, info.labels);
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls' });
  if (o.adapter) loadAdapter(model, o.adapter);
  // a head weight in neither the base nor the adapter was drawn at random: predictions will not reproduce
  const warning = randomHeadWarning(model, o.model, o.adapter);
  if (warning) (hooks.warn ?? ((m: string) => process.stderr.write(m)))(warning);
  const { precision } = applyPrecision(model, o.precision ?? 'fp32', hooks.warn);
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const r = evaluateOn(model, task, encodeExamples(tok, task.dev, o.maxLength), tok.padId, o.batchSize);
  if (o.predictions) writePredictions(o.predictions, { prediction: r.predictions!, label: task.dev.map((x) => x.label) });
  return { task: task.name, metric: task.metric, primary: r.primary, metrics: r.metrics, dev_loss: r.loss, examples: task.dev.length, precision };
}
