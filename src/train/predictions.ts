/**
 * A run's dev predictions, kept so that two methods can be compared example by example (the paired
 * bootstrap of src/report/significance.ts): predictions.jsonl in the run folder, one line per dev
 * example in dev order, `{"index": i, "prediction": p, "label": y}` (class indices, or the predicted
 * and gold score of a regression task).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';

export interface DevPredictions { prediction: number[]; label: number[] }

export const PREDICTIONS_FILE = 'predictions.jsonl';

/** Writes predictions.jsonl atomically (temp + rename); a NaN or a length mismatch is refused. */
export function writePredictions(file: string, p: DevPredictions): void {
  if (p.prediction.length !== p.label.length) throw new Error(`${file}: ${p.prediction.length} predictions for ${p.label.length} dev labels`);
  const bad = p.prediction.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${file}: the prediction of dev example ${bad} is ${p.prediction[bad]}; the model's outputs are not finite (lower --lr)`);
  writeFileAtomic(file, p.prediction.map((v, i) => JSON.stringify({ index: i, prediction: v, label: p.label[i] })).join('\n') + '\n');
}

/** Reads predictions.jsonl back; every line must be the next index with finite numbers. */
export function readPredictions(file: string): DevPredictions {
  const out: DevPredictions = { prediction: [], label: [] };
  readFileSync(file, 'utf8').split('\n').forEach((line, k) => {
    if (!line.trim()) return;
    let r: { index?: unknown; prediction?: unknown; label?: unknown };
    try { r = JSON.parse(line) as typeof r; } catch { throw new Error(`${file}:${k + 1}: not JSON; rerun the training that wrote it`); }
    if (r.index !== out.prediction.length) throw new Error(`${file}:${k + 1}: expected index ${out.prediction.length}, got ${String(r.index)}; the file is not one run's predictions in dev order`);
    if (typeof r.prediction !== 'number' || !Number.isFinite(r.prediction) || typeof r.label !== 'number' || !Number.isFinite(r.label)) {
      throw new Error(`${file}:${k + 1}: prediction and label must be finite numbers`);
    }
    out.prediction.push(r.prediction);
    out.label.push(r.label);
  });
  return out;
}
