/** `gelora analyze`: intrinsic-dimension profile of a model on task inputs, and the GeLoRA ranks it gives. */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { POOLINGS, idProfile, type LayerEstimate, type Pooling } from '../id/pooling.js';
import type { IdMethod } from '../id/twonn.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { readExamples } from '../io/dataset.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { allocate, allocationConfig, blockModules, buildReport, collectLayerPoints, fixedTrainableParams, hiddenStatesLoraConfig, hiddenStatesProfile, readModuleList, standardModules, type AllocateOptions } from '../gelora/analyze.js';
import { loadModel } from '../models/load.js';
import { MODEL_TYPES } from '../models/registry.js';
import { profileSvg } from '../report/plots.js';
import { adapterConfigFor } from '../lora/adapter.js';
import { checkBudgetFits, checkRanksFit, targetBlockModules } from '../gelora/ranks.js';
import { checkWritable, fraction, nonNegInt, positive, positiveInt, refuseBoth, sampleCount, seedInt } from './flags.js';
import { progressBar } from './progress.js';
import { ANALYSIS_PRECISION, applyPrecision, setMatmulPrecision, type Precision } from '../engine/precision.js';
import { precisionOption } from './train-options.js';

interface AnalyzeCli {
  model?: string; train?: string; hiddenStates?: string; moduleNames?: string; modelType?: string; numLayers?: number;
  textCol?: string; pairCol?: string; samples: number; pooling: Pooling; keepSpecial?: boolean; maxTokens: number; maxLength: number;
  batchSize?: number; method: IdMethod; discard: number; bootstrap: number; offset: number; alphaRatio: number; errorAware?: boolean;
  budget?: number; budgetLikeRank?: number; maxRank?: number; targets?: string[]; seed: number; out: string; json?: boolean;
  precision: Precision;
}

function printTable(profile: LayerEstimate[], ranks: number[]): void {
  const rows = ['layer        d     ± err   [low, high]          block  rank'];
  profile.forEach((p, i) => {
    rows.push(`${String(p.layer).padStart(5)} ${p.id.toFixed(3).padStart(9)} ${p.error.toFixed(3).padStart(8)}   [${p.low.toFixed(2)}, ${p.high.toFixed(2)}]`.padEnd(46) +
      (i > 0 ? `${String(i).padStart(5)} ${String(ranks[i - 1]).padStart(5)}` : ''));
  });
  for (const p of profile) if (p.note) rows.push(`note: ${p.note}`);
  console.log(rows.join('\n'));
}

export function registerAnalyze(program: Command): void {
  program.command('analyze')
    .description('intrinsic-dimension profile of the frozen model on task inputs and the GeLoRA rank of every block')
    .option('--model <dir>', 'Hugging Face model folder')
    .option('--train <file>', 'task inputs: CSV/TSV/JSONL (column text, optional text_pair) or TXT (a text per line)')
    .option('--hidden-states <file>', 'instead of --model/--train: pooled hidden states hidden_states.0..L ([N, D] each) from any runtime')
    .option('--module-names <file>', 'with --hidden-states: Linear module names ("name" or "name in out" per line)')
    .addOption(new Option('--model-type <type>', 'with --hidden-states: standard module names of this type').choices([...MODEL_TYPES]))
    .option('--num-layers <n>', 'with --model-type: number of blocks', positiveInt)
    .option('--text-col <name>', 'text column')
    .option('--pair-col <name>', 'second-text column (sentence pairs)')
    .option('--samples <n>', 'examples to run (seeded sample)', sampleCount, 2000)
    .addOption(new Option('--pooling <p>', 'token states to points').choices(POOLINGS).default('mean'))
    .option('--keep-special', 'keep [CLS]/[SEP]/<s> tokens in mean and tokens pooling')
    .option('--max-tokens <n>', 'tokens pooling: about n points in total', positiveInt, 10000)
    .option('--max-length <n>', 'truncate inputs to n tokens', positiveInt, 128)
    .option('--batch-size <n>', 'sequences per forward pass (default 16, fewer for wide models: 2^23 values in the widest activation)', positiveInt)
    .addOption(new Option('--method <m>', 'TwoNN estimator').choices(['fit', 'ml', 'bayes']).default('fit'))
    .option('--discard <f>', 'fraction of largest ratios the fit leaves out', fraction, 0.1)
    .option('--bootstrap <n>', 'bootstrap resamples for each layer\'s interval', nonNegInt, 100)
    .option('--offset <k>', 'added to every block\'s lower bound', nonNegInt, 1)
    .option('--alpha-ratio <a>', 'lora_alpha = a * r in every block', positive, 2)
    .option('--error-aware', 'rank from the upper end of each block\'s interval of dimension growth')
    .option('--budget <n>', 'scale ranks to exactly n trainable parameters (LoRA + trained head, as PEFT counts)', positiveInt)
    .option('--budget-like-rank <k>', 'scale ranks to the budget of uniform LoRA at rank k on the same modules', positiveInt)
    .option('--max-rank <k>', 'cap every rank at k', positiveInt)
    .option('--targets <names...>', 'modules to adapt (PEFT target_modules; default: every Linear inside the blocks)')
    .option('--seed <s>', 'seed for sampling and bootstrap', seedInt, 0)
    .requiredOption('--out <dir>', 'output folder: gelora.json, adapter_config.json, profile.svg')
    .option('--json', 'print gelora.json instead of the table')
    .addOption(precisionOption(ANALYSIS_PRECISION))
    .action(async (o: AnalyzeCli) => {
      refuseBoth(o as unknown as Record<string, unknown>, ['budget', '--budget'], ['budgetLikeRank', '--budget-like-rank']);
      setMatmulPrecision(o.precision); // refused before any work where bf16 cannot run
      checkWritable(o.out, '--out', 'dir');
      const allocOpts: AllocateOptions = { offset: o.offset, alphaRatio: o.alphaRatio, errorAware: o.errorAware, budget: o.budget, budgetLikeRank: o.budgetLikeRank, maxRank: o.maxRank };
      const idOpts = { method: o.method, discard: o.discard, bootstrap: o.bootstrap, seed: o.seed };
      const idBar = progressBar('intrinsic dimension');
      let report, adapterConfig: Record<string, unknown>, title: string;
      if (o.hiddenStates) {
        if (o.model || o.train) throw new Error('--hidden-states replaces --model and --train');
        const modules = o.moduleNames ? readModuleList(o.moduleNames) : o.modelType && o.numLayers ? standardModules(o.modelType, o.numLayers) : null;
        if (!modules) throw new Error('--hidden-states needs --module-names FILE or --model-type TYPE --num-layers L');
        checkBudgetFits(o, modules);
        const { profile, points, dim } = hiddenStatesProfile(o.hiddenStates, { ...idOpts, onLayer: (l, total) => idBar.update(l + 1, total) });
        idBar.stop();
        const alloc = allocate(profile, modules, allocOpts);
        checkRanksFit(alloc.ranks, modules, 'the allocation gave rank');
        const type = o.modelType ?? 'custom';
        adapterConfig = adapterConfigFor(hiddenStatesLoraConfig(o.modelType ?? null), alloc.modules, null);
        report = buildReport({ modelPath: null, modelType: type, hidden: dim, profile, alloc, modules, data: { hidden_states: o.hiddenStates, points }, ...idOpts, allocOpts, fixed: null });
        title = `GeLoRA profile: ${o.hiddenStates}`;
      } else {
        if (!o.model || !o.train) throw new Error('give --model DIR and --train FILE (or --hidden-states FILE)');
        const { model } = loadModel(o.model);
        // the forward passes' products (the TwoNN distances stay fp32)
        const { precision } = applyPrecision(model, o.precision);
        // the modules and the budget are checked before the forward passes
        const modules = targetBlockModules(model, o.targets);
        const fixed = fixedTrainableParams(model);
        checkBudgetFits(o, modules, fixed);
        const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
        const { examples } = await readExamples(o.train, { textCol: o.textCol, pairCol: o.pairCol });
        const fwdBar = progressBar('hidden states');
        const { layers, sequences } = collectLayerPoints(model, tok, examples, {
          samples: o.samples, pooling: o.pooling, excludeSpecial: !o.keepSpecial, maxTokens: o.maxTokens, maxLength: o.maxLength,
          batchSize: o.batchSize, seed: o.seed, onBatch: (d, t) => fwdBar.update(d, t),
        });
        fwdBar.stop();
        const profile = idProfile(layers, { ...idOpts, onLayer: (l) => idBar.update(l + 1, layers.length) });
        idBar.stop();
        const alloc = allocate(profile, modules, { ...allocOpts, fixedParams: fixed });
        checkRanksFit(alloc.ranks, modules, 'the allocation gave rank');
        adapterConfig = adapterConfigFor(allocationConfig(model, alloc), alloc.modules, o.model);
        report = buildReport({
          modelPath: o.model, modelType: model.type, hidden: model.hiddenSize, profile, alloc, modules,
          data: { file: o.train, examples: examples.length, sequences, points: layers[0].n, pooling: o.pooling, exclude_special: !o.keepSpecial, max_length: o.maxLength, seed: o.seed, precision },
          ...idOpts, allocOpts, fixed,
        });
        title = `GeLoRA profile: ${o.model} on ${o.train}`;
      }
      writeJsonAtomic(join(o.out, 'gelora.json'), report);
      writeJsonAtomic(join(o.out, 'adapter_config.json'), adapterConfig);
      writeFileAtomic(join(o.out, 'profile.svg'), profileSvg(report.profile, report.ranks, title));
      if (o.json) { console.log(JSON.stringify(report)); return; }
      printTable(report.profile, report.ranks);
      const b = report.budget;
      if (b) console.log(`budget: ${b.reached} of ${b.target} parameters${b.exact ? ' (exact)' : ` — ${b.note}`}${b.likeRank ? ` (uniform rank ${b.likeRank})` : ''}`);
      if (report.trainable_params !== null) console.log(`trainable parameters (PEFT count): ${report.trainable_params}`);
      console.log(`wrote ${join(o.out, 'gelora.json')}, adapter_config.json, profile.svg`);
    });
}
