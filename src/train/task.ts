/**
 * A supervised text task: train and dev examples with labels mapped to class indices (or regression
 * targets), and the metric to select on. From --train/--dev files (CSV, TSV, JSONL, parquet), or a
 * GLUE task folder with GLUE's own file layouts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { readExamples, type ColumnOptions, type Example } from '../io/dataset.js';
import { sampleWithoutReplacement } from '../id/twonn.js';
import { primaryMetric, type MetricName } from './metrics.js';

export interface LabeledExample { text: string; pair?: string; label: number; line: number }

export interface Task {
  name: string;
  kind: 'classification' | 'regression';
  /** class names in index order (classification) */
  labels: string[];
  train: LabeledExample[];
  dev: LabeledExample[];
  metric: MetricName;
  /** where the data came from, and any capping or splitting done */
  source: Record<string, unknown>;
}

interface GlueLayout { header: boolean; text: string; pair?: string; label: string; regression?: boolean; dev?: string }

/** GLUE's file layouts, as download_glue_data.py leaves them (TASK/train.tsv, TASK/dev.tsv). */
export const GLUE_TASKS: Record<string, GlueLayout> = {
  cola: { header: false, text: '3', label: '1' },
  sst2: { header: true, text: 'sentence', label: 'label' },
  mrpc: { header: true, text: '#1 String', pair: '#2 String', label: 'Quality' },
  stsb: { header: true, text: 'sentence1', pair: 'sentence2', label: 'score', regression: true },
  qqp: { header: true, text: 'question1', pair: 'question2', label: 'is_duplicate' },
  mnli: { header: true, text: 'sentence1', pair: 'sentence2', label: 'gold_label', dev: 'dev_matched.tsv' },
  mnlimm: { header: true, text: 'sentence1', pair: 'sentence2', label: 'gold_label', dev: 'dev_mismatched.tsv' },
  qnli: { header: true, text: 'question', pair: 'sentence', label: 'label' },
  rte: { header: true, text: 'sentence1', pair: 'sentence2', label: 'label' },
  wnli: { header: true, text: 'sentence1', pair: 'sentence2', label: 'label' },
};

const DIRS: Record<string, string> = { cola: 'CoLA', sst2: 'SST-2', mrpc: 'MRPC', stsb: 'STS-B', qqp: 'QQP', mnli: 'MNLI', mnlimm: 'MNLI', qnli: 'QNLI', rte: 'RTE', wnli: 'WNLI' };

export const glueKey = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '');

export interface TaskOptions extends ColumnOptions {
  train?: string;
  dev?: string;
  glue?: string;
  task?: string;
  /** treat labels as regression targets (default: GLUE STS-B, or numeric labels that are not all integers) */
  regression?: boolean;
  /** dev fraction split off the training file when no dev file is given */
  devFraction?: number;
  /** cap the training set with a seeded sample */
  maxTrain?: number;
  maxDev?: number;
  seed?: number;
  metric?: MetricName;
  /** seq-cls, or qa (extractive QA: objectives/qa.ts loadQaTask); default: qa when the files are SQuAD-shaped */
  taskType?: 'seq-cls' | 'causal-lm' | 'qa';
  /** qa: context tokens consecutive windows share */
  docStride?: number;
  /** qa: an answer_start that does not point at the answer text refuses the file (default) or leaves the answer out */
  badAnswers?: 'refuse' | 'skip';
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/** Every label cell present and finite; an error naming the file and line of the first that is not. */
function checkLabels(examples: Example[], file: string): void {
  for (const e of examples) {
    const l = e.label?.trim() ?? '';
    if (l === '') throw new Error(`${file}:${e.line}: empty label; give every example a label, or drop the line`);
    if (NON_FINITE.test(l)) throw new Error(`${file}:${e.line}: label "${e.label}" is not a finite number; fix or drop the line`);
  }
}

/** The class key of a label cell: numbers by value, so "1" and "1.0" are one class; other names as written. */
function classKey(label: string, numeric: boolean): string {
  return numeric ? String(Number(label.trim())) : label;
}

function labelled(examples: Example[], file: string, map: Map<string, number> | null, numeric: boolean): LabeledExample[] {
  checkLabels(examples, file);
  return examples.map((e) => {
    let label: number;
    if (map) {
      const v = map.get(classKey(e.label!, numeric && NUMBER.test(e.label!.trim())));
      if (v === undefined) throw new Error(`${file}:${e.line}: label "${e.label}" does not occur in the training data (labels there: ${[...map.keys()].join(', ')})`);
      label = v;
    } else {
      label = Number(e.label!.trim());
      if (!NUMBER.test(e.label!.trim()) || !Number.isFinite(label)) throw new Error(`${file}:${e.line}: regression target "${e.label}" is not a finite number`);
    }
    return { text: e.text, pair: e.pair, label, line: e.line };
  });
}

function capped(xs: LabeledExample[], max: number | undefined, rng: Rng): LabeledExample[] {
  if (!max || xs.length <= max) return xs;
  return Array.from(sampleWithoutReplacement(xs.length, max, rng), (i) => xs[i]);
}

export async function loadTask(o: TaskOptions): Promise<Task> {
  let trainFile: string, devFile: string | undefined, cols: ColumnOptions & { header?: boolean } = o, name: string, regression = o.regression;
  if (o.glue) {
    if (!o.task) throw new Error('--glue needs --task NAME (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, MNLI-mm, QNLI, RTE, WNLI)');
    const key = glueKey(o.task), layout = GLUE_TASKS[key];
    if (!layout) throw new Error(`unknown GLUE task "${o.task}" (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, MNLI-mm, QNLI, RTE, WNLI)`);
    const dir = existsSync(join(o.glue, DIRS[key])) ? join(o.glue, DIRS[key]) : o.glue;
    trainFile = join(dir, 'train.tsv');
    devFile = join(dir, layout.dev ?? 'dev.tsv');
    cols = { textCol: layout.text, pairCol: layout.pair, labelCol: layout.label, header: layout.header };
    regression = regression ?? Boolean(layout.regression);
    name = o.task;
  } else {
    if (!o.train) throw new Error('give --train FILE (and --dev FILE), or --glue DIR --task NAME');
    trainFile = o.train;
    devFile = o.dev;
    name = o.task ?? trainFile;
  }
  const tr = await readExamples(trainFile, { ...cols, requireLabel: true });
  checkLabels(tr.examples, trainFile);
  const raw = tr.examples.map((e) => e.label!);
  const numeric = raw.every((l) => NUMBER.test(l.trim()));
  if (regression === undefined) regression = numeric && raw.some((l) => !Number.isInteger(Number(l)));
  let map: Map<string, number> | null = null, labels: string[] = [];
  if (!regression) {
    labels = [...new Set(raw.map((l) => classKey(l, numeric)))];
    labels.sort((a, b) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
    if (labels.length < 2) throw new Error(`${trainFile}: only one label ("${labels[0]}") in the training data; classification needs two or more`);
    map = new Map(labels.map((l, i) => [l, i]));
  }
  const rng = new Rng(o.seed ?? 0);
  let train = labelled(tr.examples, trainFile, map, numeric), dev: LabeledExample[];
  const source: Record<string, unknown> = { train: trainFile, train_rows: train.length };
  if (devFile) {
    const dv = await readExamples(devFile, { ...cols, textCol: tr.textCol, pairCol: tr.pairCol, labelCol: tr.labelCol, requireLabel: true });
    dev = labelled(dv.examples, devFile, map, numeric);
    source.dev = devFile;
  } else {
    const frac = o.devFraction ?? 0.1;
    const nDev = Math.max(1, Math.round(train.length * frac));
    if (train.length - nDev < 2) throw new Error(`${trainFile}: too few examples (${train.length}) to split off a dev set; give --dev FILE`);
    const devIdx = new Set(sampleWithoutReplacement(train.length, nDev, rng));
    dev = train.filter((_, i) => devIdx.has(i));
    train = train.filter((_, i) => !devIdx.has(i));
    source.dev = `${Math.round(frac * 100)}% of ${trainFile} (seeded split)`;
  }
  const fullTrain = train.length;
  train = capped(train, o.maxTrain, rng);
  dev = capped(dev, o.maxDev, rng);
  if (train.length < fullTrain) source.train_capped = `${train.length} of ${fullTrain} (seeded sample)`;
  source.dev_rows = dev.length;
  const kind = regression ? 'regression' : 'classification';
  return { name, kind, labels, train, dev, metric: o.metric ?? primaryMetric(o.glue ? o.task! : null, kind), source };
}
