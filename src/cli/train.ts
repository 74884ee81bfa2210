/** `gelora train` and `gelora eval`: fine-tune with a method on a task; evaluate a saved adapter or model. */
import type { Command } from 'commander';
import { writeJsonAtomic } from '../io/atomic.js';
import { DEFAULT_TRAIN } from '../train/loop.js';
import { evaluateSaved, runTraining } from '../train/run.js';
import { positiveInt } from './flags.js';
import { progressBar } from './progress.js';
import { addOptions, DATA_OPTIONS, precisionOption, TRAIN_OPTIONS, type DataCli, type TrainCli } from './train-options.js';
import type { Precision } from '../engine/precision.js';

export type { DataCli, TrainCli } from './train-options.js';

/** The `train` command, with every option from TRAIN_OPTIONS (compare's children are parsed by it). */
export function registerTrain(program: Command): void {
  const cmd = program.command('train').description('fine-tune a model on a task with gelora, uniform lora, or full fine-tuning');
  addOptions(cmd, TRAIN_OPTIONS).action(async (o: TrainCli) => {
    const m = await runTraining(o, { progress: progressBar });
    const b = m.best as { primary: number; step: number } | null;
    console.log(`${m.method} on ${m.task}: best ${m.metric} ${b ? b.primary.toFixed(4) : 'n/a'} at step ${b?.step ?? '-'}; ${m.trainable_params} trainable parameters; ${(m.train_seconds as number).toFixed(1)} s; saved ${m.saved}`);
  });

  const ev = program.command('eval').description('evaluate a saved adapter (or a fully fine-tuned model) on dev data')
    .requiredOption('--model <dir>', 'base model folder (or a fully fine-tuned model folder)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .option('--out <file>', 'write the metrics as JSON here')
    .option('--predictions <file>', 'write the dev predictions as JSONL here (index, prediction, label; sequence tasks)')
    .option('--max-length <n>', 'truncate inputs to n tokens', positiveInt, DEFAULT_TRAIN.maxLength)
    .option('--batch-size <n>', 'examples per forward pass', positiveInt, 32)
    .addOption(precisionOption());
  addOptions(ev, DATA_OPTIONS).action(async (o: DataCli & { model: string; adapter?: string; out?: string; predictions?: string; maxLength: number; batchSize: number; precision: Precision }) => {
    const out = await evaluateSaved(o);
    if (o.out) writeJsonAtomic(o.out, out);
    console.log(JSON.stringify(out));
  });
}
