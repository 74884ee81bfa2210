/** `gelora train` and `gelora eval`: fine-tune with a method on a task; evaluate a saved adapter or model. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { allocate, analyzeTask, blockModules, fixedTrainableParams, type Allocation } from '../gelora/analyze.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { lineChartSvg, profileSvg, smooth } from '../report/plots.js';
import { DEFAULT_TRAIN, encodeExamples, evaluateOn, stepCounts, train, type TrainConfig } from '../train/loop.js';
import type { MetricName } from '../train/metrics.js';
import { METHODS, prepareMethod, readTaskInfo, type Method } from '../train/methods.js';
import { loadTask, type Task, type TaskOptions } from '../train/task.js';
import { fraction } from './id.js';
import { positiveInt } from './main.js';
import { progressBar } from './progress.js';

const nonNegInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got ${v}`);
  return n;
};
const positive = (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new Error(`expected a positive number, got ${v}`);
  return n;
};

/** The data flags shared by train, eval and compare. */
export function addDataOptions(cmd: Command): Command {
  return cmd
    .option('--train <file>', 'training examples: CSV/TSV/JSONL/parquet with text, optional text_pair, label')
    .option('--dev <file>', 'dev examples (default: a seeded 10% of --train)')
    .option('--glue <dir>', 'a GLUE data folder (with CoLA/, SST-2/, ... or the task files themselves)')
    .option('--task <name>', 'GLUE task with --glue (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, MNLI-mm, QNLI, RTE, WNLI); a run name otherwise')
    .option('--text-col <name>', 'text column').option('--pair-col <name>', 'second-text column').option('--label-col <name>', 'label column')
    .option('--regression', 'labels are real-valued targets')
    .option('--max-train <n>', 'cap the training set with a seeded sample', positiveInt)
    .option('--max-dev <n>', 'cap the dev set with a seeded sample', positiveInt)
    .addOption(new Option('--metric <m>', 'metric to select on (default: GLUE\'s for the task, accuracy or pearson otherwise)').choices(['accuracy', 'f1', 'mcc', 'pearson', 'spearman', 'acc_f1', 'pearson_spearman']))
    .option('--seed <s>', 'seed for data order, initialisation, dropout, sampling', (v) => Number(v), 0);
}

export interface DataCli { train?: string; dev?: string; glue?: string; task?: string; textCol?: string; pairCol?: string; labelCol?: string; regression?: boolean; maxTrain?: number; maxDev?: number; metric?: MetricName; seed: number }

export function taskOptions(o: DataCli): TaskOptions {
  return { train: o.train, dev: o.dev, glue: o.glue, task: o.task, textCol: o.textCol, pairCol: o.pairCol, labelCol: o.labelCol, regression: o.regression, maxTrain: o.maxTrain, maxDev: o.maxDev, metric: o.metric, seed: o.seed };
}

export function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--epochs <n>', 'epochs', positiveInt, DEFAULT_TRAIN.epochs)
    .option('--batch-size <n>', 'examples per optimizer step (before accumulation)', positiveInt, DEFAULT_TRAIN.batchSize)
    .option('--lr <x>', 'peak learning rate', positive, DEFAULT_TRAIN.lr)
    .option('--weight-decay <x>', 'AdamW weight decay', (v) => Number(v), DEFAULT_TRAIN.weightDecay)
    .option('--warmup <f>', 'fraction of steps of linear warmup', fraction, DEFAULT_TRAIN.warmupRatio)
    .addOption(new Option('--schedule <s>', 'decay after warmup').choices(['linear', 'cosine', 'constant']).default(DEFAULT_TRAIN.schedule))
    .option('--max-grad-norm <x>', 'clip the gradient norm (0: off)', (v) => Number(v), DEFAULT_TRAIN.maxGradNorm)
    .option('--grad-accum <n>', 'accumulate gradients over n batches', positiveInt, DEFAULT_TRAIN.gradAccum)
    .option('--eval-every <n>', 'evaluate every n steps (0: every epoch)', nonNegInt, DEFAULT_TRAIN.evalEvery)
    .option('--patience <n>', 'early stopping after n evaluations without improvement (0: off)', nonNegInt, DEFAULT_TRAIN.patience)
    .option('--max-length <n>', 'truncate inputs to n tokens', positiveInt, DEFAULT_TRAIN.maxLength)
    .option('--checkpoint-every <n>', 'checkpoint every n steps (0: off)', nonNegInt, DEFAULT_TRAIN.checkpointEvery)
    .option('--max-steps <n>', 'stop after n optimizer steps', positiveInt)
    .option('--r <k>', 'lora: the uniform rank', positiveInt, 8)
    .option('--alpha-ratio <a>', 'lora_alpha = a * r', positive, 2)
    .option('--lora-dropout <p>', 'dropout on the LoRA input', fraction, 0.05)
    .option('--ranks <list>', 'gelora: ranks per block, comma-separated (skips the analysis)')
    .option('--gelora-dir <dir>', 'gelora: use the allocation in DIR/gelora.json (from gelora analyze)')
    .option('--budget <n>', 'gelora: scale ranks to exactly n trainable parameters', positiveInt)
    .option('--budget-like-rank <k>', 'gelora: scale ranks to the budget of uniform LoRA at rank k', positiveInt)
    .option('--samples <n>', 'gelora: examples for the intrinsic-dimension analysis', positiveInt, 2000)
    .option('--targets <names...>', 'modules to adapt (default: every Linear inside the blocks)');
}

export interface TrainCli extends DataCli {
  model: string; method: Method; out: string; resume?: boolean; epochs: number; batchSize: number; lr: number; weightDecay: number; warmup: number;
  schedule: TrainConfig['schedule']; maxGradNorm: number; gradAccum: number; evalEvery: number; patience: number; maxLength: number;
  checkpointEvery: number; maxSteps?: number; r: number; alphaRatio: number; loraDropout: number; ranks?: string; geloraDir?: string;
  budget?: number; budgetLikeRank?: number; samples: number; targets?: string[];
}

/** The GeLoRA allocation for a training run: given ranks, a previous analysis, or a fresh one (written to outDir). */
async function geloraAllocation(model: Model, tok: TextTokenizer, task: Task, o: TrainCli): Promise<Allocation> {
  const modules = blockModules(model, o.targets ?? null);
  const fixed = fixedTrainableParams(model);
  const allocOpts = { alphaRatio: o.alphaRatio, budget: o.budget, budgetLikeRank: o.budgetLikeRank, fixedParams: fixed };
  if (o.ranks) {
    const r = o.ranks.split(',').map(Number);
    if (r.length !== model.numLayers || r.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`--ranks needs ${model.numLayers} non-negative integers, got "${o.ranks}"`);
    // a flat profile through the given ranks: d_i - d_{i-1} = r_i - 1
    const profile = [{ id: 0 }];
    r.forEach((x) => profile.push({ id: profile[profile.length - 1].id + Math.max(x - 1, 0) }));
    return allocate(profile, modules, { ...allocOpts, offset: 1, budget: undefined, budgetLikeRank: undefined });
  }
  if (o.geloraDir) {
    const g = JSON.parse(readFileSync(join(o.geloraDir, 'gelora.json'), 'utf8')) as { profile: { id: number; low: number; high: number }[]; rule: { offset: number; error_aware: boolean } };
    if (g.profile.length !== model.numLayers + 1) throw new Error(`${o.geloraDir}/gelora.json has ${g.profile.length - 1} blocks, the model ${model.numLayers}`);
    return allocate(g.profile, modules, { ...allocOpts, offset: g.rule.offset, errorAware: g.rule.error_aware });
  }
  const bar = progressBar('hidden states');
  const { report, alloc } = analyzeTask(model, tok, task.train, { modelPath: o.model, taskName: task.name, modules, allocOpts, samples: o.samples, maxLength: o.maxLength, seed: o.seed, onBatch: (d, t) => bar.update(d, t) });
  bar.stop();
  writeJsonAtomic(join(o.out, 'gelora.json'), report);
  writeFileAtomic(join(o.out, 'profile.svg'), profileSvg(report.profile, alloc.ranks, `GeLoRA profile: ${task.name}`));
  return alloc;
}

export function learningCurveSvg(logFile: string, title: string): string {
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  const loss = lines.filter((l) => typeof l.loss === 'number').map((l) => [l.step as number, l.loss as number] as [number, number]);
  const evals = lines.filter((l) => typeof l.primary === 'number').map((l) => [l.step as number, l.primary as number] as [number, number]);
  const devLoss = lines.filter((l) => typeof l.dev_loss === 'number').map((l) => [l.step as number, l.dev_loss as number] as [number, number]);
  return [
    lineChartSvg([{ name: 'train loss (smoothed)', points: smooth(loss) }, { name: 'dev loss', points: devLoss, dashed: true }], { title: `${title}: loss`, xLabel: 'optimizer step', yLabel: 'loss' }),
    lineChartSvg([{ name: 'dev metric', points: evals }], { title: `${title}: dev metric`, xLabel: 'optimizer step', yLabel: 'metric' }),
  ].join('\n');
}

export async function runTrain(o: TrainCli): Promise<Record<string, unknown>> {
  const task = await loadTask(taskOptions(o));
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls', seed: o.seed });
  const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
  const allocation = o.method === 'gelora' ? await geloraAllocation(model, tok, task, o) : undefined;
  const config: TrainConfig = {
    epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay, warmupRatio: o.warmup, schedule: o.schedule,
    maxGradNorm: o.maxGradNorm, gradAccum: o.gradAccum, evalEvery: o.evalEvery, patience: o.patience, seed: o.seed,
    maxLength: o.maxLength, checkpointEvery: o.checkpointEvery, maxSteps: o.maxSteps,
  };
  const totalSteps = stepCounts(task.train.length, config).total;
  const prepared = prepareMethod(model, o.method, { r: o.r, alphaRatio: o.alphaRatio, dropout: o.loraDropout, allocation, targets: o.targets ?? null, seed: o.seed, baseModel: o.model, task, totalSteps, lr: o.lr });
  writeJsonAtomic(join(o.out, 'train_config.json'), { method: o.method, model: o.model, task: task.name, source: task.source, config, ranks: prepared.ranks, trainable_params: prepared.trainableParams });
  const bar = progressBar(`train ${o.method}`);
  let saved = '';
  const result = train({
    model, params: prepared.params, tokenizer: tok, task, config, outDir: o.out, resume: o.resume, hooks: prepared.hooks,
    onBest: () => { saved = prepared.save(o.out); },
    onStep: (s, t, loss, metric) => bar.update(s, t, `loss ${loss.toFixed(4)}${metric === null ? '' : ` | ${task.metric} ${metric.toFixed(4)}`}`),
  });
  bar.stop();
  if (!saved) saved = prepared.save(o.out);
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

export function registerTrain(program: Command): void {
  const cmd = program.command('train').description('fine-tune a model on a task with gelora, uniform lora, or full fine-tuning')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .addOption(new Option('--method <m>', 'what to train').choices([...METHODS]).default('gelora'))
    .requiredOption('--out <dir>', 'output folder: adapter/ (or model/), metrics.json, log.jsonl, learning_curve.svg')
    .option('--resume', 'continue from the latest checkpoint in --out');
  addTrainOptions(addDataOptions(cmd)).action(async (o: TrainCli) => {
    const m = await runTrain(o);
    const b = m.best as { primary: number; step: number } | null;
    console.log(`${m.method} on ${m.task}: best ${m.metric} ${b ? b.primary.toFixed(4) : 'n/a'} at step ${b?.step ?? '-'}; ${m.trainable_params} trainable parameters; ${(m.train_seconds as number).toFixed(1)} s; saved ${m.saved}`);
  });

  const ev = program.command('eval').description('evaluate a saved adapter (or a fully fine-tuned model) on dev data')
    .requiredOption('--model <dir>', 'base model folder (or a fully fine-tuned model folder)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .option('--out <file>', 'write the metrics as JSON here')
    .option('--max-length <n>', 'truncate inputs to n tokens', positiveInt, DEFAULT_TRAIN.maxLength)
    .option('--batch-size <n>', 'examples per forward pass', positiveInt, 32);
  addDataOptions(ev).action(async (o: DataCli & { model: string; adapter?: string; out?: string; maxLength: number; batchSize: number }) => {
    const info = readTaskInfo(o.adapter ?? o.model);
    const task = await loadTask({ ...taskOptions(o), regression: o.regression ?? (info ? info.kind === 'regression' : undefined), metric: o.metric ?? (info?.metric as MetricName | undefined) });
    if (info && task.kind === 'classification') {
      // the label order of training, not of this file
      const map = new Map(info.labels.map((l, i) => [l, i]));
      for (const x of task.dev) {
        const name = task.labels[x.label], idx = map.get(name);
        if (idx === undefined) throw new Error(`dev label "${name}" was not a training label (${info.labels.join(', ')})`);
        x.label = idx;
      }
      task.labels = info.labels;
    }
    const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
    const { model } = loadModel(o.model, { numLabels, task: 'seq-cls' });
    if (o.adapter) loadAdapter(model, o.adapter);
    const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
    const r = evaluateOn(model, task, encodeExamples(tok, task.dev, o.maxLength), tok.padId, o.batchSize);
    const out = { task: task.name, metric: task.metric, primary: r.primary, metrics: r.metrics, dev_loss: r.loss, examples: task.dev.length };
    if (o.out) writeJsonAtomic(o.out, out);
    console.log(JSON.stringify(out));
  });
}
