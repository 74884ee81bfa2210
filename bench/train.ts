/**
 * The training loop's throughput on the lora_step shapes: `gelora train`'s loop (batching, loss,
 * backward, clipping, schedule, AdamW, logging) on the bench model with 128-token examples, against
 * `bench lora-step` (bare forward/backward/AdamW) measured in the same process right after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernels } from '../src/engine/backend.js';
import { Rng } from '../src/engine/random.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig } from '../src/lora/lora.js';
import { DEFAULT_TRAIN, train, type Encoded } from '../src/train/loop.js';
import type { Task } from '../src/train/task.js';
import { benchConfigs, median, peakRssMb, pick } from './configs.js';
import { buildBenchModel, loraStepBench } from './lora-step.js';

export function trainBench(name: string, steps = 10, warmup = 2): Record<string, unknown> {
  const c = pick(benchConfigs().lora_step, name, 'lora_step');
  const model = buildBenchModel(c);
  const { trainable } = applyLoraConfig(model, defaultLoraConfig(model, { r: c.lora_r, lora_alpha: c.lora_alpha, target_modules: c.targets }));
  const rng = new Rng(0);
  const example = (): Encoded => ({ ids: Array.from({ length: c.seq }, () => rng.int(c.vocab)), typeIds: new Array<number>(c.seq).fill(0), label: rng.int(c.num_labels) });
  const n = (steps + warmup) * c.batch;
  const task: Task = { name: 'bench', kind: 'classification', labels: ['0', '1'], train: [], dev: [], metric: 'accuracy', source: {} };
  const out = mkdtempSync(join(tmpdir(), 'gelora-bench-train-'));
  const stamps: number[] = [];
  try {
    train({
      model, params: trainable, tokenizer: null, task, outDir: out,
      encoded: { train: Array.from({ length: n }, example), dev: Array.from({ length: c.batch }, example), padId: 0 },
      config: { ...DEFAULT_TRAIN, epochs: 1, batchSize: c.batch, lr: 1e-4, evalEvery: 0, seed: 0, maxLength: c.seq },
      onStep: () => stamps.push(performance.now()),
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const times = stamps.slice(warmup).map((t, i) => (t - stamps[warmup + i - 1]) / 1000);
  const loopMedian = median(times.length ? times : [NaN]);
  const step = loraStepBench(name, steps, warmup);
  return {
    bench: 'train', config: name, backend: kernels().name, train_median_step_s: loopMedian, lora_step_median_s: step.median_step_s,
    ratio: loopMedian / step.median_step_s, tokens_per_s: (c.batch * c.seq) / loopMedian, peak_rss_mb: peakRssMb(),
  };
}
