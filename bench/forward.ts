/**
 * Frozen forward keeping every hidden state (what intrinsic-dimension analysis runs). Encoder
 * configs: the same work as `bench/torch_reference.py forward CONFIG`; decoder configs (qwen05b):
 * the decoder LLM on its lora-step batch (batch x seq random tokens). Median time of one batch.
 */
import { kernels } from '../src/engine/backend.js';
import { profileKernels } from '../src/engine/profile.js';
import { noGrad, scope } from '../src/engine/tensor.js';
import { applyPrecision, type Precision } from '../src/engine/precision.js';
import type { Model, ModelInputs } from '../src/models/model.js';
import { median, peakRssMb, pickModelConfig, resetPeakRss, type DecoderBenchConfig } from './configs.js';
import { benchInputs, buildBenchModel, buildDecoderBenchModel, decoderBenchBatch, defaultSteps, modelParams, stepProfile, type StepProfile } from './lora-step.js';

/** warmup + steps forward passes of x keeping every hidden state, each timed (and with `profile`, every kernel call of the timed ones). */
function timedForward(model: Model, x: ModelInputs, steps: number, warmup: number, profile = false): { times: number[]; hidden: number; profile?: StepProfile } {
  const times: number[] = [];
  let hidden = 0, prof: ReturnType<typeof profileKernels> | null = null;
  for (let i = 0; i < warmup + steps; i++) {
    if (profile && i === warmup) prof = profileKernels();
    const t0 = performance.now();
    noGrad(() => scope(() => { hidden = model.forward(x).hiddenStates.length; }));
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  return { times, hidden, ...(prof ? { profile: stepProfile(prof.stop(), times) } : {}) };
}

export function forwardBench(name: string, steps?: number, warmup?: number, precision: Precision = 'fp32', profile = false): Record<string, unknown> {
  const m = pickModelConfig(name), d = defaultSteps(m.kind);
  if (m.kind === 'decoder') return decoderForwardBench(m.c, name, steps ?? d.steps, warmup ?? d.warmup, precision, profile);
  const c = m.c, model = buildBenchModel(c);
  const prec = applyPrecision(model, precision, () => {});
  const { times, hidden, profile: prof } = timedForward(model, benchInputs(c).inputs, steps ?? d.steps, warmup ?? d.warmup, profile);
  const med = median(times);
  return { bench: 'forward', config: name, backend: kernels().name, median_s: med, min_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, hidden_states: hidden, peak_rss_mb: peakRssMb(),
    precision: prec.precision, isa: prec.isa, library: prec.library, ...(prof ? { profile: prof } : {}) };
}

/** The frozen forward of a decoder config (a config object, so tests can run a tiny one). */
export function decoderForwardBench(c: DecoderBenchConfig, name: string, steps = 3, warmup = 1, precision: Precision = 'fp32', profile = false): Record<string, unknown> {
  const model = buildDecoderBenchModel(c), size = modelParams(model);
  const prec = applyPrecision(model, precision, () => {});
  const x = decoderBenchBatch(c).x, buildPeak = peakRssMb(), window = resetPeakRss() ? 'steps' : 'process';
  const { times, hidden, profile: prof } = timedForward(model, x, steps, warmup, profile);
  const med = median(times);
  return { bench: 'forward', config: name, backend: kernels().name, median_s: med, min_s: Math.min(...times),
    tokens_per_s: (c.batch * c.seq) / med, hidden_states: hidden, peak_rss_mb: peakRssMb(),
    precision: prec.precision, isa: prec.isa, library: prec.library,
    model_type: model.type, params: size, batch: c.batch, seq: c.seq, steps, warmup, peak_rss_window: window, build_peak_rss_mb: buildPeak,
    ...(prof ? { profile: prof } : {}) };
}
