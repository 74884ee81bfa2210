/**
 * The GeLoRA analysis of a decoder config, timed: the library functions `gelora analyze` calls, in
 * its order and with its defaults (collectLayerPoints: seeded sample, mean pooling without special
 * tokens, batches of 16; idProfile: TwoNN fit, 10% discarded, 100 bootstrap resamples; allocate:
 * offset 1, alpha 2r, every Linear inside the blocks), on the config's model with random weights
 * built in memory (no checkpoint is read: loading is not what this measures) and `samples` random
 * texts of exactly `seq` tokens. Seconds are split into the forward passes with pooling, the
 * intrinsic-dimension profile and the allocation; peak_rss_mb covers the analysis (VmHWM reset after
 * the model was built), build_peak_rss_mb the building.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernels } from '../src/engine/backend.js';
import { applyPrecision, type Precision } from '../src/engine/precision.js';
import { Rng } from '../src/engine/random.js';
import { allocate, autoBatchSize, blockModules, collectLayerPoints, fixedTrainableParams } from '../src/gelora/analyze.js';
import { idProfile } from '../src/id/pooling.js';
import { TextTokenizer, wordPieceTokenizerJson } from '../src/io/tokenizer.js';
import { benchConfigs, peakRssMb, pick, resetPeakRss, type DecoderBenchConfig } from './configs.js';
import { buildDecoderBenchModel, modelParams } from './lora-step.js';

export interface AnalyzeBenchOptions { samples?: number; seq?: number; batchSize?: number; precision?: Precision }

/**
 * A whole-word tokenizer (written to a temporary folder, read back as `gelora analyze` reads one,
 * removed) over `words` words w0.., with BERT's special tokens around each text: a text of seq - 2
 * words is exactly seq tokens. Its ids stay below the model's vocabulary.
 */
function wordTokenizer(words: number): TextTokenizer {
  const dir = mkdtempSync(join(tmpdir(), 'gelora-bench-analyze-'));
  try {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...Array.from({ length: words }, (_, i) => `w${i}`)];
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(vocab, {})));
    return TextTokenizer.fromDir(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function analyzeBench(name: string, o: AnalyzeBenchOptions = {}): Record<string, unknown> {
  return decoderAnalyzeBench(pick(benchConfigs().decoder, name, 'decoder'), name, o);
}

/** The analysis bench of a decoder config (a config object, so tests can run a tiny one). */
export function decoderAnalyzeBench(c: DecoderBenchConfig, name: string, o: AnalyzeBenchOptions = {}): Record<string, unknown> {
  const samples = o.samples ?? c.analyze.samples, seq = o.seq ?? c.analyze.seq, batchSize = o.batchSize ?? c.analyze.batch_size; // absent: gelora analyze's own default (autoBatchSize)
  if (seq < 3) throw new Error(`--seq ${seq}: a text needs at least 3 tokens (2 are special)`);
  const t0 = performance.now();
  const model = buildDecoderBenchModel(c), size = modelParams(model);
  const prec = applyPrecision(model, o.precision ?? 'fp32', () => {});
  const words = Math.min(Number(c.config.vocab_size) - 5, 32000), tok = wordTokenizer(words), rng = new Rng(1);
  const examples = Array.from({ length: samples }, () => ({ text: Array.from({ length: seq - 2 }, () => `w${rng.int(words)}`).join(' ') }));
  const buildPeak = peakRssMb(), window = resetPeakRss() ? 'analysis' : 'process';
  const t1 = performance.now();
  const { layers, sequences } = collectLayerPoints(model, tok, examples, { samples, maxLength: seq, batchSize, seed: 0 });
  const t2 = performance.now();
  const profile = idProfile(layers, { method: 'fit', discard: 0.1, bootstrap: 100, seed: 0 });
  const t3 = performance.now();
  const alloc = allocate(profile, blockModules(model, null), { offset: 1, alphaRatio: 2, fixedParams: fixedTrainableParams(model) });
  const t4 = performance.now();
  const bad = profile.find((p) => !Number.isFinite(p.id));
  if (bad) throw new Error(`bench analyze ${name}: the intrinsic dimension of layer ${bad.layer} is ${bad.id}`);
  const s = (a: number, b: number): number => (b - a) / 1000;
  return {
    bench: 'analyze', config: name, backend: kernels().name, model_type: model.type, params: size,
    samples: sequences, seq, tokens: sequences * seq, batch_size: batchSize ?? autoBatchSize(model, seq),
    setup_s: s(t0, t1), forward_s: s(t1, t2), id_s: s(t2, t3), allocate_s: s(t3, t4), analysis_s: s(t1, t4),
    tokens_per_s: (sequences * seq) / s(t1, t2), peak_rss_mb: peakRssMb(), peak_rss_window: window, build_peak_rss_mb: buildPeak,
    precision: prec.precision, isa: prec.isa, library: prec.library,
    layers: layers.length, points: layers[0].n, id_profile: profile.map((p) => Number(p.id.toFixed(3))), ranks: alloc.ranks,
  };
}
