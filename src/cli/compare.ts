/** `gelora compare`: flags for the comparison in src/compare, whose runs are child `gelora train` processes. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { runCompare as runComparison, type ChildRun, type CompareOutcome } from '../compare/compare.js';
import { taskTypeOf } from '../train/run.js';
import { METHODS, type Method } from '../train/methods.js';
import { checkWritable, listOf, positiveInt } from './flags.js';
import { progressBar } from './progress.js';
import { addOptions, DATA_OPTIONS, keysWithRole, longFlag, optionArgv, TRAIN_OPTIONS, TUNING_OPTIONS, taskOptions, type TrainCli } from './train-options.js';

export interface CompareCli extends Omit<TrainCli, 'method'> { methods: string; seeds: number; lrFor?: string[]; budgetCurve?: number[] }

const FORWARDED = keysWithRole(TRAIN_OPTIONS, 'forward');

/** The argv of a child `gelora train` run: the forwarded options as compare got them, then the run's own. */
export function compareChildArgv(o: CompareCli, run: ChildRun): string[] {
  const shared = Object.fromEntries(FORWARDED.map((k) => [k, (o as unknown as Record<string, unknown>)[k]]));
  const child: Partial<TrainCli> = { ...shared, model: o.model, ...run };
  return ['train', ...optionArgv(TRAIN_OPTIONS, child)];
}

export function registerCompare(program: Command): void {
  const cmd = program.command('compare')
    .description('train several methods at the same trainable-parameter budget over several seeds; write results.json, results.md, report.html')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--methods <list>', `comma-separated, of ${METHODS.join(', ')}`, 'gelora,lora,full')
    .option('--seeds <n>', 'seeds per method (0..n-1)', positiveInt, 3)
    .option('--lr-for <method=lr...>', 'learning rate of one method (e.g. full=5e-5); others use --lr')
    .option('--budget-curve <ranks>', 'where GeLoRA\'s allocation is uniform: also train uniform LoRA at these ranks (e.g. 1,2,4,8) and draw budget.svg', listOf(positiveInt))
    .requiredOption('--out <dir>', 'output folder');
  addOptions(addOptions(cmd, DATA_OPTIONS), TUNING_OPTIONS).action(async (o: CompareCli) => {
    for (const k of keysWithRole(TRAIN_OPTIONS, 'refuse')) {
      if (cmd.getOptionValueSource(k) === 'cli') throw new Error(`${longFlag(TRAIN_OPTIONS[k as keyof TrainCli])} is a train option compare does not take: compare runs its own analysis for every gelora run`);
    }
    console.log((await runCompare(o)).markdown);
  });
}

/** compare's flags checked and turned into the comparison's options; each run is a child `gelora train`. */
export async function runCompare(o: CompareCli): Promise<CompareOutcome> {
  const methods = o.methods.split(',').map((m) => m.trim()).filter(Boolean);
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new Error(`unknown method "${m}" (${METHODS.join(', ')})`);
  const lrs = new Map<string, number>();
  for (const e of o.lrFor ?? []) {
    const [m, v] = e.split('=');
    if (!methods.includes(m) || !(Number(v) > 0) || !Number.isFinite(Number(v))) throw new Error(`--lr-for ${e}: expected METHOD=LR for one of ${methods.join(', ')}`);
    lrs.set(m, Number(v));
  }
  checkWritable(o.out, '--out', 'dir');
  const cli = fileURLToPath(new URL('./main.js', import.meta.url));
  return runComparison({
    model: o.model, out: o.out, methods: methods as Method[], seeds: o.seeds, lr: o.lr, lrFor: lrs, r: o.r, alphaRatio: o.alphaRatio,
    budget: o.budget, budgetLikeRank: o.budgetLikeRank, budgetCurve: o.budgetCurve, samples: o.samples, maxLength: o.maxLength, targets: o.targets, task: taskOptions(o), causalLm: (await taskTypeOf(o)) === 'causal-lm',
    log: (line) => process.stderr.write(`${line}\n`), progress: progressBar,
    runTrain: (run) => spawnSync(process.execPath, [cli, ...compareChildArgv(o, run)], { stdio: ['ignore', 'inherit', 'inherit'] }).status,
  });
}
