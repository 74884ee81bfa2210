// TF-IDF + logistic regression on a GLUE task or train/dev files, with the same seeded training-set
// cap as the GLUE experiment (experiments/glue/run.sh: --max-train 2000, seed 0). Prints JSON.
// Usage: node experiments/baseline/tfidf.mjs [--glue DIR --task NAME | --train F --dev F | --demo NAME] [--max-train N]
import { parseArgs } from 'node:util';
import { tfidfBaseline } from '../../dist/src/baseline/tfidf.js';
import { loadTask } from '../../dist/src/train/task.js';
import { evaluate } from '../../dist/src/train/metrics.js';
import { DEMO_TASKS } from '../../dist/src/demo/data.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { values: a } = parseArgs({ options: { glue: { type: 'string' }, task: { type: 'string' }, train: { type: 'string' }, dev: { type: 'string' },
  'max-train': { type: 'string' }, demo: { type: 'string' }, seed: { type: 'string', default: '0' } } });
// a demo task: its recipe written as CSV (text,label), read back as `gelora demo` reads it
if (a.demo) {
  const t = DEMO_TASKS[a.demo]?.();
  if (!t) throw new Error(`unknown demo task ${a.demo} (${Object.keys(DEMO_TASKS).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'gelora-baseline-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const cell = (x) => (/[",\n]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x);
  for (const split of ['train', 'dev']) writeFileSync(join(dir, `${split}.csv`), ['text,label', ...t[split].map((x) => `${cell(x.text)},${cell(x.label)}`)].join('\n') + '\n');
  Object.assign(a, { train: join(dir, 'train.csv'), dev: join(dir, 'dev.csv'), task: a.demo });
}
const task = await loadTask({ glue: a.glue, task: a.task, train: a.train, dev: a.dev, maxTrain: a['max-train'] ? Number(a['max-train']) : undefined, seed: Number(a.seed) });
const t0 = performance.now();
const r = tfidfBaseline(task.train, task.dev, task.labels.length, (p, g) => evaluate(task.kind, p, g, task.metric).primary);
console.log(JSON.stringify({ task: task.name, metric: task.metric, train: task.train.length, dev: task.dev.length, C: r.C, score: r.score, grid: r.grid, features: r.features, seconds: (performance.now() - t0) / 1000 }));
