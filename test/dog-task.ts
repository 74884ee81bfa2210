/** A training fixture shared by the train tests: the bert fixture with a learnable task. */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/random.js';
import { HF } from './hf-fixtures.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The bert fixture with a WordPiece vocabulary and a learnable task: does the sentence mention a dog? */
export function dogTask(rows: number, seed: number, prefix = 'gelora-train-'): { model: string; data: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const model = join(dir, 'model');
  mkdirSync(model);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(`${HF}bert/${f}`, join(model, f));
  copyFileSync(ROOT + 'test/data/tokenizers/wordpiece/vocab.txt', join(model, 'vocab.txt'));
  const words = ['the', 'cat', 'cats', 'sat', 'on', 'mat', '.', 'a', 'dog', 'ran'], rng = new Rng(seed);
  const lines = ['text,label'];
  for (let i = 0; i < rows; i++) {
    const toks = Array.from({ length: 3 + rng.int(8) }, () => words[rng.int(words.length)]);
    lines.push(`${toks.join(' ')},${toks.includes('dog') ? 'yes' : 'no'}`);
  }
  writeFileSync(join(dir, 'task.csv'), lines.join('\n'));
  return { model, data: join(dir, 'task.csv'), dir };
}
