/**
 * Frozen encoder forward keeping every hidden state (what intrinsic-dimension analysis runs): the
 * same work as `bench/torch_reference.py forward CONFIG`. Median time of one batch.
 */
import { kernels } from '../src/engine/backend.js';
import { noGrad, scope } from '../src/engine/tensor.js';
import { applyPrecision, type Precision } from '../src/engine/precision.js';
import { benchConfigs, median, peakRssMb, pick } from './configs.js';
import { benchInputs, buildBenchModel } from './lora-step.js';

export function forwardBench(name: string, steps = 10, warmup = 2, precision: Precision = 'fp32'): Record<string, unknown> {
  const c = pick(benchConfigs().lora_step, name, 'lora_step');
  const model = buildBenchModel(c);
  const prec = applyPrecision(model, precision, () => {});
  const { inputs } = benchInputs(c);
  const times: number[] = [];
  let hidden = 0;
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    noGrad(() => scope(() => { hidden = model.forward(inputs).hiddenStates.length; }));
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  const med = median(times);
  return { bench: 'forward', config: name, backend: kernels().name, median_s: med, min_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, hidden_states: hidden, peak_rss_mb: peakRssMb(),
    precision: prec.precision, isa: prec.isa };
}
