/**
 * The options of `gelora train`, as one typed table. train's commander definition, eval's and
 * compare's shared flags, and the argv of compare's child `gelora train` runs are all generated from
 * it. Every key of TrainCli must have an entry (the mapped type below makes a missing one a compile
 * error), and every entry says what compare does with it: forward it to every child as given, set it
 * per run, or refuse it. So a new train flag cannot be dropped on the way to compare's runs.
 */
import { Option, type Command } from 'commander';
import { DEFAULT_TRAIN, type TrainConfig } from '../train/loop.js';
import type { MetricName } from '../train/metrics.js';
import { METHODS, type Method } from '../train/methods.js';
import { DEFAULT_PRECISION, PRECISIONS, type Precision } from '../engine/precision.js';
import type { TaskOptions } from '../train/task.js';
import { fraction, nonNegative, nonNegInt, positive, positiveInt, sampleCount, seedInt, type FlagParser } from './flags.js';

import { TASK_TYPES, type DataOptions, type TrainOptions, type TuningOptions } from '../train/options.js';

/** The data flags shared by train, eval and compare (the library's DataOptions). */
export type DataCli = DataOptions;
/** The training flags shared by train and compare. */
export type TuningCli = TuningOptions;
/** Every option of `gelora train`. */
export type TrainCli = TrainOptions;

/**
 * What compare does with a train option: 'forward' it to every child run as given; 'per-run': compare
 * sets it for each run (model, method, seed, out, resume; lr from --lr-for; r, budget and the analysis
 * folder from the shared budget); 'refuse': compare runs its own analysis, so the option has no
 * meaning there and giving it is an error rather than being ignored.
 */
export type CompareRole = 'forward' | 'per-run' | 'refuse';

export interface OptionSpec {
  /** commander's flags, e.g. '--max-train <n>' */
  flags: string;
  help: string;
  parse?: FlagParser;
  choices?: readonly string[];
  default?: number | string;
  required?: boolean;
  compare: CompareRole;
}

type Table<T> = { [K in keyof T]-?: OptionSpec };

/** train's own options (compare and eval define their --model and --out themselves). */
export const RUN_OPTIONS: Table<Pick<TrainCli, 'model' | 'method' | 'out' | 'resume'>> = {
  model: { flags: '--model <dir>', help: 'Hugging Face model folder', required: true, compare: 'per-run' },
  method: { flags: '--method <m>', help: 'what to train', choices: METHODS, default: 'gelora', compare: 'per-run' },
  out: { flags: '--out <dir>', help: 'output folder: adapter/ (or model/), metrics.json, log.jsonl, learning_curve.svg', required: true, compare: 'per-run' },
  resume: { flags: '--resume', help: 'continue from the latest checkpoint in --out', compare: 'per-run' },
};

export const DATA_OPTIONS: Table<DataCli> = {
  badAnswers: { flags: '--bad-answers <what>', help: 'qa: an answer_start that does not point at its answer text: refuse the file, or skip the answer (a warning names the ids)', choices: ['refuse', 'skip'], compare: 'forward' },
  docStride: { flags: '--doc-stride <n>', help: 'qa: context tokens shared by consecutive windows of --max-length tokens (default 128, or a third of the window when that is smaller)', parse: positiveInt, compare: 'forward' },
  train: { flags: '--train <file>', help: 'training examples: CSV/TSV/JSONL/parquet with text, optional text_pair, label', compare: 'forward' },
  dev: { flags: '--dev <file>', help: 'dev examples (default: a seeded 10% of --train)', compare: 'forward' },
  glue: { flags: '--glue <dir>', help: 'a GLUE data folder (with CoLA/, SST-2/, ... or the task files themselves)', compare: 'forward' },
  task: { flags: '--task <name>', help: 'GLUE task with --glue (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, MNLI-mm, QNLI, RTE, WNLI); a run name otherwise', compare: 'forward' },
  taskType: { flags: '--task-type <t>', help: 'seq-cls (a label per text), causal-lm (prompt/completion or messages rows; the default when --train has those columns) or qa (extractive QA on SQuAD v1.1/v2.0 JSON or the HF layout; the default when --train/--dev are SQuAD-shaped)', choices: TASK_TYPES, compare: 'forward' },
  packing: { flags: '--packing', help: 'causal-lm: concatenate the examples and cut the stream into --max-length sequences', compare: 'forward' },
  textCol: { flags: '--text-col <name>', help: 'text column', compare: 'forward' },
  pairCol: { flags: '--pair-col <name>', help: 'second-text column', compare: 'forward' },
  labelCol: { flags: '--label-col <name>', help: 'label column', compare: 'forward' },
  regression: { flags: '--regression', help: 'labels are real-valued targets', compare: 'forward' },
  maxTrain: { flags: '--max-train <n>', help: 'cap the training set with a seeded sample', parse: positiveInt, compare: 'forward' },
  maxDev: { flags: '--max-dev <n>', help: 'cap the dev set with a seeded sample', parse: positiveInt, compare: 'forward' },
  metric: { flags: '--metric <m>', help: 'metric to select on (default: GLUE\'s for the task, accuracy or pearson otherwise)', choices: ['accuracy', 'f1', 'mcc', 'pearson', 'spearman', 'acc_f1', 'pearson_spearman'], compare: 'forward' },
  // compare's runs use seeds 0..--seeds-1
  seed: { flags: '--seed <s>', help: 'seed for data order, initialisation, dropout, sampling', parse: seedInt, default: 0, compare: 'per-run' },
};

export const TUNING_OPTIONS: Table<TuningCli> = {
  epochs: { flags: '--epochs <n>', help: 'epochs', parse: positiveInt, default: DEFAULT_TRAIN.epochs, compare: 'forward' },
  batchSize: { flags: '--batch-size <n>', help: 'examples per optimizer step (before accumulation)', parse: positiveInt, default: DEFAULT_TRAIN.batchSize, compare: 'forward' },
  lr: { flags: '--lr <x>', help: 'peak learning rate', parse: positive, default: DEFAULT_TRAIN.lr, compare: 'per-run' },
  weightDecay: { flags: '--weight-decay <x>', help: 'AdamW weight decay', parse: nonNegative, default: DEFAULT_TRAIN.weightDecay, compare: 'forward' },
  warmup: { flags: '--warmup <f>', help: 'fraction of steps of linear warmup', parse: fraction, default: DEFAULT_TRAIN.warmupRatio, compare: 'forward' },
  schedule: { flags: '--schedule <s>', help: 'decay after warmup', choices: ['linear', 'cosine', 'constant'], default: DEFAULT_TRAIN.schedule, compare: 'forward' },
  maxGradNorm: { flags: '--max-grad-norm <x>', help: 'clip the gradient norm (0: off)', parse: nonNegative, default: DEFAULT_TRAIN.maxGradNorm, compare: 'forward' },
  gradAccum: { flags: '--grad-accum <n>', help: 'accumulate gradients over n batches', parse: positiveInt, default: DEFAULT_TRAIN.gradAccum, compare: 'forward' },
  evalEvery: { flags: '--eval-every <n>', help: 'evaluate every n steps (0: every epoch)', parse: nonNegInt, default: DEFAULT_TRAIN.evalEvery, compare: 'forward' },
  patience: { flags: '--patience <n>', help: 'early stopping after n evaluations without improvement (0: off)', parse: nonNegInt, default: DEFAULT_TRAIN.patience, compare: 'forward' },
  maxLength: { flags: '--max-length <n>', help: 'truncate inputs to n tokens', parse: positiveInt, default: DEFAULT_TRAIN.maxLength, compare: 'forward' },
  checkpointEvery: { flags: '--checkpoint-every <n>', help: 'checkpoint every n steps (0: off)', parse: nonNegInt, default: DEFAULT_TRAIN.checkpointEvery, compare: 'forward' },
  maxSteps: { flags: '--max-steps <n>', help: 'stop after n optimizer steps', parse: positiveInt, compare: 'forward' },
  r: { flags: '--r <k>', help: 'lora: the uniform rank', parse: positiveInt, default: 8, compare: 'per-run' },
  alphaRatio: { flags: '--alpha-ratio <a>', help: 'lora_alpha = a * r', parse: positive, default: 2, compare: 'forward' },
  loraDropout: { flags: '--lora-dropout <p>', help: 'dropout on the LoRA input', parse: fraction, default: 0.05, compare: 'forward' },
  ranks: { flags: '--ranks <list>', help: 'gelora: ranks per block, comma-separated (skips the analysis)', compare: 'refuse' },
  geloraDir: { flags: '--gelora-dir <dir>', help: 'gelora: use the allocation in DIR/gelora.json (from gelora analyze)', compare: 'refuse' },
  budget: { flags: '--budget <n>', help: 'gelora: scale ranks to exactly n trainable parameters', parse: positiveInt, compare: 'per-run' },
  budgetLikeRank: { flags: '--budget-like-rank <k>', help: 'gelora: scale ranks to the budget of uniform LoRA at rank k', parse: positiveInt, compare: 'per-run' },
  samples: { flags: '--samples <n>', help: 'gelora: examples for the intrinsic-dimension analysis', parse: sampleCount, default: 2000, compare: 'forward' },
  precision: { flags: '--precision <p>', help: 'frozen Linear weights multiplied in bf16 on AMX/AVX512-BF16 (LoRA, head, norms, losses fp32); auto: bf16 where the CPU has bf16 matrix units', choices: PRECISIONS, default: DEFAULT_PRECISION, compare: 'forward' },
  targets: { flags: '--targets <names...>', help: 'modules to adapt (default: every Linear inside the blocks)', compare: 'forward' },
};

/** Every train option, in the order of `gelora train --help`. */
export const TRAIN_OPTIONS: Table<TrainCli> = { ...RUN_OPTIONS, ...DATA_OPTIONS, ...TUNING_OPTIONS };

/** `--precision` for the commands outside train's table (eval, forward, analyze, bench), as train has it; the analysis passes its own default. */
export function precisionOption(dflt: Precision = DEFAULT_PRECISION): Option {
  const s = TUNING_OPTIONS.precision;
  return new Option(s.flags, s.help).choices(s.choices!).default(dflt);
}

/** The long flag of an option, e.g. '--max-train'. */
export const longFlag = (s: OptionSpec): string => s.flags.split(/[ ,]/)[0];

/** Adds the options of a table to a command, in table order. */
export function addOptions(cmd: Command, table: Record<string, OptionSpec>): Command {
  for (const s of Object.values(table)) {
    const o = new Option(s.flags, s.help);
    if (s.choices) o.choices(s.choices);
    if (s.parse) o.argParser(s.parse);
    if (s.default !== undefined) o.default(s.default);
    if (s.required) o.makeOptionMandatory();
    cmd.addOption(o);
  }
  return cmd;
}

/** The argv that gives a command these option values (booleans as bare flags, lists as variadic). */
export function optionArgv(table: Record<string, OptionSpec>, o: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, s] of Object.entries(table)) {
    const v = o[k];
    if (v === undefined || v === false) continue;
    if (v === true) out.push(longFlag(s));
    else if (Array.isArray(v)) out.push(longFlag(s), ...v.map(String));
    else out.push(longFlag(s), String(v));
  }
  return out;
}

/** The default value of every option of a table that has one. */
export function optionDefaults(table: Record<string, OptionSpec>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(table).filter(([, s]) => s.default !== undefined).map(([k, s]) => [k, s.default]));
}

/** The options of a table with a given compare role. */
export const keysWithRole = (table: Record<string, OptionSpec>, role: CompareRole): string[] => Object.keys(table).filter((k) => table[k].compare === role);

export { taskOptions } from '../train/options.js';
