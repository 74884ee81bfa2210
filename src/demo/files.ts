/** The demo's files: the embedded model's folder, and a demo task written as CSV for `gelora train`. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io/atomic.js';
import { DEMO_TASKS } from './data.js';
import { writeWordnetDefine } from './define-data.js';
import { writeWordnetQa } from './qa-data.js';

/** Every demo task: the classification tasks of data.ts, the extractive-QA set of qa-data.ts and the causal-LM set of define-data.ts. */
export const DEMO_TASK_NAMES = [...Object.keys(DEMO_TASKS), 'wordnet-qa', 'wordnet-define'];

/** The embedded model folder (committed to the repository). */
export const EMBEDDED_MODEL = fileURLToPath(new URL('../../../models/gelora-bert-6l', import.meta.url));

/** The embedded decoder (committed to the repository): the default model of causal-LM demo tasks. */
export const EMBEDDED_DECODER = fileURLToPath(new URL('../../../models/gelora-llama-4l', import.meta.url));

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Writes a demo task's train/dev split as CSV (text,label) and returns the paths. */
export function writeDemoTask(name: string, dir: string): { train: string; dev: string; description: string; taskType: 'seq-cls' | 'qa' | 'causal-lm' } {
  if (name === 'wordnet-define') return { ...writeWordnetDefine(dir), taskType: 'causal-lm' };
  if (name === 'wordnet-qa') {
    const q = writeWordnetQa(dir);
    return { train: q.train, dev: q.dev, taskType: 'qa', description: `wordnet-qa: extractive QA (SQuAD v2.0 format) on paragraphs of WordNet glosses, ${q.questions.train} train / ${q.questions.dev} dev questions; EM and F1 as the official SQuAD script` };
  }
  const make = DEMO_TASKS[name];
  if (!make) throw new Error(`unknown demo task "${name}" (${DEMO_TASK_NAMES.join(', ')})`);
  const t = make();
  const files = { train: join(dir, 'train.csv'), dev: join(dir, 'dev.csv') };
  for (const split of ['train', 'dev'] as const) {
    writeFileAtomic(files[split], ['text,label', ...t[split].map((x) => `${csvCell(x.text)},${csvCell(x.label)}`)].join('\n') + '\n');
  }
  return { ...files, description: t.description, taskType: 'seq-cls' };
}
