/** The demo's files: the embedded model's folder, and a demo task written as CSV for `gelora train`. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io/atomic.js';
import { DEMO_TASKS } from './data.js';

/** The embedded model folder (committed to the repository). */
export const EMBEDDED_MODEL = fileURLToPath(new URL('../../../models/gelora-bert-6l', import.meta.url));

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Writes a demo task's train/dev split as CSV (text,label) and returns the paths. */
export function writeDemoTask(name: string, dir: string): { train: string; dev: string; description: string } {
  const make = DEMO_TASKS[name];
  if (!make) throw new Error(`unknown demo task "${name}" (${Object.keys(DEMO_TASKS).join(', ')})`);
  const t = make();
  const files = { train: join(dir, 'train.csv'), dev: join(dir, 'dev.csv') };
  for (const split of ['train', 'dev'] as const) {
    writeFileAtomic(files[split], ['text,label', ...t[split].map((x) => `${csvCell(x.text)},${csvCell(x.label)}`)].join('\n') + '\n');
  }
  return { ...files, description: t.description };
}
