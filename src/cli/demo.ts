/**
 * `gelora demo`: the whole GeLoRA workflow on the embedded pretrained encoder and a task built from
 * npm-shipped English text, nothing downloaded: intrinsic-dimension profile and ranks, GeLoRA and
 * uniform LoRA trained at the same parameter budget, the comparison table and report.html.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { writeDefineReport } from '../demo/define-data.js';
import { DEMO_TASK_NAMES, EMBEDDED_DECODER, EMBEDDED_MODEL, writeDemoTask } from '../demo/files.js';
import { runCompare, type CompareCli } from './compare.js';
import { checkWritable, positive, positiveInt } from './flags.js';
import { optionDefaults, TRAIN_OPTIONS } from './train-options.js';

/** uniform LoRA ranks of the demo's budget curve: three runs at the demo's size, the first the comparison's own when GeLoRA's ranks are 1 */
const DEMO_BUDGET_CURVE = [1, 2, 4];

interface DemoCli { task: string; model?: string; out: string; methods: string; seeds: number; epochs: number; maxTrain?: number; lr: number; fullLr: number; batchSize: number }

/** uniform LoRA rank whose trainable-parameter count both methods get in the wordnet-define demo */
const DEFINE_BUDGET_RANK = 2;

export function registerDemo(program: Command): void {
  program.command('demo')
    .description('GeLoRA end to end on the embedded pretrained model: ID profile, ranks, GeLoRA vs uniform LoRA at the same budget, report.html')
    .addOption(new Option('--task <name>', 'demo task').choices(DEMO_TASK_NAMES).default('brown-genre'))
    .option('--model <dir>', 'model folder (default: models/gelora-bert-6l; wordnet-define: models/gelora-llama-4l)')
    .option('--out <dir>', 'output folder', 'runs/demo')
    .option('--methods <list>', 'methods to compare', 'gelora,lora')
    .option('--seeds <n>', 'seeds per method', positiveInt, 1)
    .option('--epochs <n>', 'epochs', positiveInt, 3)
    .option('--max-train <n>', 'cap the training set', positiveInt)
    .option('--lr <x>', 'learning rate of the LoRA methods', positive, 1e-3)
    .option('--full-lr <x>', 'learning rate of full fine-tuning', positive, 1e-4)
    .option('--batch-size <n>', 'batch size', positiveInt, 32)
    .action(async (o: DemoCli) => {
      const model = o.model ?? (o.task === 'wordnet-define' ? EMBEDDED_DECODER : EMBEDDED_MODEL);
      if (!existsSync(join(model, 'config.json'))) throw new Error(`${model}: the model is missing (the embedded ones live in models/gelora-bert-6l and models/gelora-llama-4l of the repository)`);
      checkWritable(o.out, '--out', 'dir');
      const data = writeDemoTask(o.task, join(o.out, 'data'));
      process.stderr.write(`gelora demo: ${data.description}\n  data: ${data.train}, ${data.dev}\n  model: ${model}\n  1. intrinsic dimension of every layer's hidden states on the training inputs -> ranks per block\n  2. ${o.methods.split(',').join(' and ')} trained at the same trainable-parameter budget, ${o.seeds} seed(s), ${o.epochs} epoch(s)\n`);
      // train's defaults, with the demo's own settings on top
      const opts: CompareCli = {
        ...(optionDefaults(TRAIN_OPTIONS) as unknown as CompareCli),
        model, out: o.out, train: data.train, dev: data.dev, task: o.task, taskType: data.taskType, seed: 0, methods: o.methods, seeds: o.seeds,
        epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, schedule: 'linear', gradAccum: 1, evalEvery: 0, patience: 0, maxLength: data.taskType === 'qa' ? 128 : 64, checkpointEvery: 50,
        r: 8, alphaRatio: 2, loraDropout: 0.05, samples: 2000, maxTrain: o.maxTrain, lrFor: o.methods.includes('full') ? [`full=${o.fullLr}`] : undefined,
        // classification demos: used only where GeLoRA's allocation is uniform (its rows would equal LoRA's)
        budgetCurve: data.taskType === 'seq-cls' ? DEMO_BUDGET_CURVE : undefined,
        // wordnet-define: GeLoRA's own budget (ranks 1-2 on the embedded decoder) falls between uniform
        // ranks, so its allocation is scaled to exactly uniform rank 2's budget: an equal budget, not the closest
        ...(data.taskType === 'causal-lm' ? { budgetLikeRank: DEFINE_BUDGET_RANK } : {}),
      };
      const r = await runCompare(opts);
      const g = JSON.parse(readFileSync(join(o.out, 'analysis', 'gelora.json'), 'utf8')) as { profile: { id: number }[]; ranks: number[] };
      console.log(`intrinsic dimension by layer: ${g.profile.map((p) => p.id.toFixed(1)).join(' → ')}`);
      console.log(`GeLoRA ranks by block: ${g.ranks.join(', ')}`);
      if (data.taskType === 'causal-lm') writeDefineReport(o.out, model, data.dev);
      console.log(r.markdown);
      if (r.budgetMarkdown) console.log(`budget curve: ${join(o.out, 'budget.svg')} (in report.html)`);
      console.log(`report: ${r.reportFile}\nresults: ${r.resultsFile}`);
    });
}
