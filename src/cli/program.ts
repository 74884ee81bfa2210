/** The gelora command tree. Each subcommand lives in its own module; this file only wires them. */
import { Command } from 'commander';
import { registerAnalyze } from './analyze.js';
import { registerBaseline } from './baseline.js';
import { registerBench } from './bench.js';
import { registerCompare } from './compare.js';
import { registerDemo } from './demo.js';
import { registerForward } from './forward.js';
import { registerGenerate } from './generate.js';
import { registerId } from './id.js';
import { registerPretrain } from './pretrain.js';
import { registerTrain } from './train.js';

/** Every command, parsed but not run (main.ts runs it; tests walk its options). */
export function buildProgram(): Command {
  const program = new Command('gelora')
    .description('Geometry-aware LoRA fine-tuning: LoRA ranks from the intrinsic dimension of hidden states')
    .version('0.1.0')
    .showHelpAfterError();
  registerAnalyze(program);
  registerTrain(program);
  registerCompare(program);
  registerDemo(program);
  registerForward(program);
  registerGenerate(program);
  registerId(program);
  registerPretrain(program);
  registerBench(program);
  registerBaseline(program);
  return program;
}
