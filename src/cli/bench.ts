/** `gelora bench ...`: benchmarks that print one JSON line each (never a test, never a pass/fail). */
import { Option, type Command } from 'commander';
import { analyzeBench } from '../../bench/analyze.js';
import { attentionBench } from '../../bench/attention.js';
import { analyzeScaleBench } from '../../bench/analyze-scale.js';
import { forwardBench } from '../../bench/forward.js';
import { loraStepBench } from '../../bench/lora-step.js';
import { matmulBench } from '../../bench/matmul.js';
import { memoryBench } from '../../bench/memory.js';
import { loraPassBench } from '../../bench/lora-pass.js';
import { matmulBf16Bench } from '../../bench/matmul-bf16.js';
import { trainBench } from '../../bench/train.js';
import { twonnBench } from '../../bench/twonn.js';
import { blasInfo } from '../engine/backend.js';
import type { GramPrecision } from '../id/knn.js';
import { positiveInt, sampleCount } from './flags.js';
import { ANALYSIS_PRECISION, type Precision } from '../engine/precision.js';
import { precisionOption } from './train-options.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('measure the engine; prints one JSON line');
  bench.command('lora-step')
    .description('one LoRA training step: a BERT encoder (mini, base: same work as bench/torch_reference.py lora_step) or a decoder LLM with the causal-LM loss (qwen05b, qwen-mini)')
    .option('--config <name>', 'mini, base, qwen05b or qwen-mini (bench/configs.json)', 'mini')
    .option('--steps <n>', 'timed steps (default 10; decoder configs 3)', positiveInt)
    .option('--warmup <n>', 'untimed steps first (default 2; decoder configs 1)', positiveInt)
    .addOption(precisionOption())
    .option('--profile', 'also time every kernel call of the timed steps: seconds per step by kernel, and the rest (JavaScript: tape, shapes, allocation)')
    .action((o: { config: string; steps?: number; warmup?: number; precision: Precision; profile?: boolean }) => {
      console.log(JSON.stringify({ ...loraStepBench(o.config, o.steps, o.warmup, o.precision, o.profile === true), blas: blasInfo() }));
    });
  bench.command('forward')
    .description('frozen forward keeping every hidden state: an encoder (same work as bench/torch_reference.py forward) or a decoder config on its lora-step batch')
    .option('--config <name>', 'base, mini, qwen05b or qwen-mini (bench/configs.json)', 'base')
    .option('--steps <n>', 'timed batches (default 10; decoder configs 3)', positiveInt)
    .option('--warmup <n>', 'untimed batches first (default 2; decoder configs 1)', positiveInt)
    .addOption(precisionOption())
    .option('--profile', 'also time every kernel call of the timed batches: seconds per batch by kernel, and the rest (JavaScript)')
    .action((o: { config: string; steps?: number; warmup?: number; precision: Precision; profile?: boolean }) => {
      console.log(JSON.stringify({ ...forwardBench(o.config, o.steps, o.warmup, o.precision, o.profile === true), blas: blasInfo() }));
    });
  bench.command('analyze')
    .description("the GeLoRA analysis (gelora analyze's forward passes, TwoNN profile and allocation) of a decoder config with random weights; seconds split into forward and ID")
    .option('--config <name>', 'qwen05b or qwen-mini (bench/configs.json decoder)', 'qwen05b')
    .option('--samples <n>', 'texts to analyse (default: the config\'s, 256 for qwen05b)', sampleCount)
    .option('--seq <n>', 'tokens per text (default: the config\'s, 128 for qwen05b)', positiveInt)
    .option('--batch-size <n>', 'sequences per forward pass (default: gelora analyze\'s)', positiveInt)
    .addOption(precisionOption(ANALYSIS_PRECISION))
    .action((o: { config: string; samples?: number; seq?: number; batchSize?: number; precision: Precision }) => {
      console.log(JSON.stringify({ ...analyzeBench(o.config, o), blas: blasInfo() }));
    });
  bench.command('train')
    .description('the training loop on the lora-step shapes, against bench lora-step in the same run')
    .option('--config <name>', 'mini or base (bench/configs.json)', 'mini')
    .option('--steps <n>', 'timed steps', positiveInt, 10)
    .option('--warmup <n>', 'untimed steps first', positiveInt, 2)
    .action((o: { config: string; steps: number; warmup: number }) => {
      console.log(JSON.stringify({ ...trainBench(o.config, o.steps, o.warmup), blas: blasInfo() }));
    });
  bench.command('twonn')
    .description('exact 2-NN + TwoNN fit on a 12-d Gaussian in 768-d (same work as bench/torch_reference.py twonn)')
    .option('--config <name>', 'n10k_d768 (bench/configs.json)', 'n10k_d768')
    .action((o: { config: string }) => {
      console.log(JSON.stringify({ ...twonnBench(o.config), blas: blasInfo() }));
    });
  bench.command('memory')
    .description('peak RSS of a forward (and of gelora analyze) on a random Llama-3.2-1B-shaped bf16 checkpoint in a temporary folder, against its size')
    .option('--config <name>', 'llama1b-4block (forward) or llama1b (forward and analyze)', 'llama1b-4block')
    .option('--batch <n>', 'forward: sequences', positiveInt, 1)
    .option('--seq <n>', 'forward: tokens per sequence', positiveInt, 128)
    .option('--analyze', 'also run gelora analyze (always for llama1b)')
    .option('--samples <n>', 'analyze: examples of 128 tokens', positiveInt, 64)
    .option('--analyze-batch <n>', 'analyze: --batch-size (default: analyze\'s own)', positiveInt)
    .addOption(precisionOption())
    .action((o: { config: string; batch: number; seq: number; analyze?: boolean; samples: number; analyzeBatch?: number; precision: Precision }) => {
      console.log(JSON.stringify({ ...memoryBench(o.config, o), blas: blasInfo() }));
    });
  bench.command('analyze-scale')
    .description('analyze --hidden-states on a synthetic F16 file of a 7B model\'s pooled states (written to the temp folder, removed after)')
    .option('--layers <n>', 'hidden states (blocks + 1)', positiveInt, 33)
    .option('--points <n>', 'points per layer', positiveInt, 5000)
    .option('--dim <n>', 'hidden size', positiveInt, 4096)
    .option('--bootstrap <n>', 'bootstrap resamples per layer', positiveInt, 100)
    .addOption(precisionOption(ANALYSIS_PRECISION))
    .addOption(new Option('--gram <p>', 'products of the neighbour candidate search (the neighbours are exact either way): auto = bf16 where the CPU has bf16 matrix units').choices(['auto', 'fp32', 'bf16']).default('auto'))
    .action((o: { layers: number; points: number; dim: number; bootstrap: number; precision: Precision; gram: GramPrecision }) => {
      console.log(JSON.stringify(analyzeScaleBench(o)));
    });
  bench.command('matmul')
    .description('GFLOP/s of the GEMM shapes of a BERT-base step')
    .option('--repeats <n>', 'timed repeats per shape', positiveInt, 10)
    .action((o: { repeats: number }) => {
      console.log(JSON.stringify({ ...matmulBench(o.repeats), blas: blasInfo() }));
    });
  bench.command('matmul-bf16')
    .description('GFLOP/s of a BERT-base step\'s frozen-weight products: fp32 OpenBLAS, fp32 oneDNN, bf16 oneDNN')
    .option('--repeats <n>', 'timed repeats per shape', positiveInt, 10)
    .action((o: { repeats: number }) => {
      console.log(JSON.stringify({ ...matmulBf16Bench(o.repeats), blas: blasInfo() }));
    });
  bench.command('lora-pass')
    .description('the LoRA branch\'s one pass over a Linear\'s activation (loraPass) against the sgemm thin products it replaces, and bf16 mode\'s pass against the separate conversion and oneDNN products')
    .option('--repeats <n>', 'timed repeats per shape', positiveInt, 25)
    .action((o: { repeats: number }) => {
      console.log(JSON.stringify(loraPassBench(o.repeats)));
    });
  bench.command('attention')
    .description('attention\'s QK^T on the mini and base shapes by each path (OpenBLAS one problem per thread, oneDNN batched fp32 and bf16) and the softmax after it')
    .option('--repeats <n>', 'timed repeats per shape', positiveInt, 30)
    .action((o: { repeats: number }) => {
      console.log(JSON.stringify(attentionBench(o.repeats)));
    });
}
