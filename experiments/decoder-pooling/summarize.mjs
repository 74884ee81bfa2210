// Summarises experiments/decoder-pooling/results/<pooling>-seed<s>/gelora.json as markdown tables.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
const [dir, seedsArg, prefix = ''] = process.argv.slice(2);
const seeds = Number(seedsArg ?? 5);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => { const m = mean(xs); return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1)); };
const out = [];
for (const pooling of ['last', 'mean']) {
  const reps = Array.from({ length: seeds }, (_, s) => JSON.parse(readFileSync(join(dir, `${prefix}${pooling}-seed${s}`, 'gelora.json'), 'utf8')));
  const L = reps[0].profile.length;
  out.push(`### --pooling ${pooling} (${seeds} seeds, ${reps[0].profile[0].n} points per layer)\n`);
  out.push('| layer | ID mean over seeds | ID sd over seeds | mean bootstrap sd | mean bootstrap interval width (95%) |', '|---|---|---|---|---|');
  for (let l = 0; l < L; l++) {
    const ids = reps.map((r) => r.profile[l].id), errs = reps.map((r) => r.profile[l].error), w = reps.map((r) => r.profile[l].high - r.profile[l].low);
    out.push(`| ${l} | ${mean(ids).toFixed(2)} | ${sd(ids).toFixed(2)} | ${mean(errs).toFixed(2)} | ${mean(w).toFixed(2)} |`);
  }
  const vecs = reps.map((r) => r.ranks.join(','));
  const counts = new Map();
  for (const v of vecs) counts.set(v, (counts.get(v) ?? 0) + 1);
  const [modal, k] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  const params = reps.map((r) => r.trainable_params);
  out.push('', `ranks by block per seed: ${vecs.map((v) => `[${v}]`).join(' ')}; the modal vector [${modal}] in ${k} of ${seeds} seeds; trainable params ${Math.min(...params)}..${Math.max(...params)}`, '');
}
console.log(out.join('\n'));
