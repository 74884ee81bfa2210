#!/usr/bin/env node
/** The gelora command line. Each subcommand lives in its own module; this file only wires them. */
import { Command, InvalidArgumentError } from 'commander';
import { registerAnalyze } from './analyze.js';
import { registerBench } from './bench.js';
import { registerCompare } from './compare.js';
import { registerDemo } from './demo.js';
import { registerForward } from './forward.js';
import { registerId } from './id.js';
import { registerPretrain } from './pretrain.js';
import { registerTrain } from './train.js';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command('gelora')
  .description('Geometry-aware LoRA fine-tuning: LoRA ranks from the intrinsic dimension of hidden states')
  .version('0.1.0')
  .showHelpAfterError();

registerAnalyze(program);
registerTrain(program);
registerCompare(program);
registerDemo(program);
registerForward(program);
registerId(program);
registerPretrain(program);
registerBench(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`gelora: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
