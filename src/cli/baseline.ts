/** `gelora baseline`: TF-IDF + logistic regression (src/baseline/tfidf.ts), the bag-of-words score an encoder has to beat. */
import type { Command } from 'commander';
import { baselineOnTask } from '../baseline/tfidf.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { evaluate } from '../train/metrics.js';
import { loadTask } from '../train/task.js';
import { writePredictions } from '../train/predictions.js';
import { checkWritable, listOf, positive } from './flags.js';
import { addOptions, DATA_OPTIONS, taskOptions, type DataCli } from './train-options.js';

/** The data options that apply to a classification baseline (no QA, causal-LM or regression flags). */
const BASELINE_DATA = Object.fromEntries(Object.entries(DATA_OPTIONS).filter(([k]) =>
  ['train', 'dev', 'glue', 'task', 'textCol', 'pairCol', 'labelCol', 'maxTrain', 'maxDev', 'metric', 'seed'].includes(k))) as typeof DATA_OPTIONS;

interface BaselineCli extends DataCli { out?: string; predictions?: string; c?: number[] }

export function registerBaseline(program: Command): void {
  const cmd = program.command('baseline')
    .description('TF-IDF (word 1-2-grams, sublinear tf) + logistic regression, C chosen on dev: the bag-of-words score to beat')
    .option('--c <list>', 'the regularisation strengths C to try on dev, comma-separated (default 0.1,0.3,1,3,10,30,100)', listOf(positive))
    .option('--out <file>', 'write the result as JSON here')
    .option('--predictions <file>', 'write the dev predictions at the chosen C as JSONL (index, prediction, label)');
  addOptions(cmd, BASELINE_DATA).action(async (o: BaselineCli) => {
    if (!o.train && !o.glue) throw new Error('baseline: give --train FILE (and --dev FILE), or --glue DIR --task NAME');
    if (o.out) checkWritable(o.out, '--out', 'file');
    if (o.predictions) checkWritable(o.predictions, '--predictions', 'file');
    const task = await loadTask(taskOptions(o));
    const { predictions, ...r } = baselineOnTask(task, (p, g) => evaluate(task.kind, p, g, task.metric).primary, { grid: o.c });
    const out = { ...r, data: task.source };
    if (o.out) writeJsonAtomic(o.out, out);
    if (o.predictions) writePredictions(o.predictions, { prediction: predictions, label: task.dev.map((x) => x.label) });
    console.log(JSON.stringify(out));
    process.stderr.write(`TF-IDF + logistic regression on ${r.task}: dev ${r.metric} ${r.score.toFixed(4)} at C=${r.C} (${r.train} train, ${r.dev} dev, ${r.features} features, ${r.seconds.toFixed(1)} s)\n`);
  });
}
