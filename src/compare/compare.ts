/**
 * The comparison `gelora compare` runs: every method at the same trainable-parameter budget, over
 * several seeds. The GeLoRA analysis runs once; each (method, seed) run is handed to `runTrain` (the CLI
 * runs a child `gelora train` process, so its wall time and peak memory are its own) and a finished
 * run (metrics.json present) is skipped when compare runs again. Writes results.json, results.md and
 * report.html.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { allocationConfig, analyzeTask, fixedTrainableParams } from '../gelora/analyze.js';
import { checkBudgetFits, checkRanksFit, targetBlockModules } from '../gelora/ranks.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { adapterConfigFor } from '../lora/adapter.js';
import { exampleText, loadChatTemplate, readLmData } from '../io/chat.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { compareReportHtml, markdownTable, type SummaryRow } from '../report/compare.js';
import { readLogCurves } from '../report/curves.js';
import { profileSvg } from '../report/plots.js';
import type { Method } from '../train/methods.js';
import { meanStd } from '../train/metrics.js';
import { loadTask, type TaskOptions } from '../train/task.js';
import { loadQaTask, resolveTaskType } from '../train/objectives/qa.js';

export type { SummaryRow } from '../report/compare.js';

export interface RunResult {
  method: string; seed: number; metric_value: number; trainable_params: number; train_seconds: number; peak_rss_mb: number; adapter_dir: string; ranks: number[] | null; lr: number;
  /** the child process' wall time (loading, training, saving), kept in its folder's wall.json; null for runs finished before it was recorded */
  wall_seconds: number | null;
  /** every dev metric at the selected evaluation, and the PEFT count while training (AdaLoRA and SoRA train more than they keep) */
  metrics: Record<string, number>; initial_trainable_params: number;
}

/** Mean ± std of the selection metric per method, with the costs of its runs. */
export function summarise(runs: RunResult[], methods: string[]): SummaryRow[] {
  return methods.map((m) => {
    const rs = runs.filter((r) => r.method === m), { mean, std } = meanStd(rs.map((r) => r.metric_value));
    return {
      method: m, mean, std, trainable_params: rs[0].trainable_params, runs: rs.length,
      train_seconds: rs.reduce((a, r) => a + r.train_seconds, 0) / rs.length, peak_rss_mb: Math.max(...rs.map((r) => r.peak_rss_mb)),
    };
  });
}

/** What compare decides for one run; the caller adds the options every run shares. */
export interface ChildRun {
  method: Method; seed: number; out: string; lr: number; resume: boolean;
  /** the uniform rank of lora, adalora (target_r) and sora (r_max); unset for gelora and full */
  r?: number;
  /** gelora: the shared analysis folder, and the budget options as given */
  geloraDir?: string; budget?: number; budgetLikeRank?: number;
}

export interface CompareOptions {
  model: string; out: string; methods: Method[]; seeds: number;
  /** the learning rate of every method without its own in lrFor */
  lr: number; lrFor?: Map<string, number>;
  /** the uniform rank when no gelora run sets the budget */
  r: number;
  alphaRatio: number; budget?: number; budgetLikeRank?: number; samples: number; maxLength: number; targets?: string[];
  task: TaskOptions;
  /** a causal-LM task (prompt/completion or messages data): token accuracy selects, the analysis reads whole examples */
  causalLm?: boolean;
  /** runs one training; returns its exit status (0: done) */
  runTrain: (run: ChildRun) => number | null;
  /** progress lines (stderr in the CLI) */
  log?: (line: string) => void;
  /** a progress bar for the analysis' forward passes */
  progress?: (label: string) => { update(done: number, total: number): void; stop(): void };
}

/**
 * What the comparison needs of its task: the name and selection metric, the texts the analysis
 * reads, where the data came from, and the model with the task's head (a causal-LM task: the
 * prompt + completion or the rendered conversation of each training example).
 */
async function compareTask(o: CompareOptions): Promise<{ task: { name: string; metric: string; train: { text: string; pair?: string }[]; source: Record<string, unknown> }; model: Model }> {
  if (o.causalLm) {
    if (!o.task.train) throw new Error('causal-lm: give --train FILE (JSONL or parquet with prompt/completion or messages)');
    const { model } = loadModel(o.model, { task: 'causal-lm', seed: 0 });
    const d = await readLmData({ train: o.task.train, dev: o.task.dev, maxTrain: o.task.maxTrain, maxDev: o.task.maxDev, seed: o.task.seed });
    const template = loadChatTemplate(o.model);
    return { task: { name: o.task.task ?? o.task.train, metric: 'token_accuracy', train: d.train.map((x) => ({ text: exampleText(x, template) })), source: d.source }, model };
  }
  // extractive QA: the analysis reads (question, context) pairs, the model has its qa_outputs head
  if (resolveTaskType(o.task) === 'qa') return { task: (await loadQaTask(o.task)).analysis, model: loadModel(o.model, { task: 'qa', seed: 0 }).model };
  const task = await loadTask(o.task);
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  return { task, model: loadModel(o.model, { numLabels, task: 'seq-cls', seed: 0 }).model };
}

/** The whole comparison: the analysis once, every run, the three outputs. */
export async function runCompare(o: CompareOptions): Promise<{ markdown: string; resultsFile: string; reportFile: string }> {
  const log = o.log ?? (() => {});
  const methods = o.methods;
  if (o.budget !== undefined && o.budgetLikeRank !== undefined) throw new Error('give --budget or --budget-like-rank, not both');
  const { task, model } = await compareTask(o);
  const modules = targetBlockModules(model, o.targets);
  const unit = modules.reduce((s, m) => s + m.inF! + m.outF!, 0), fixed = fixedTrainableParams(model);
  if (methods.includes('gelora')) checkBudgetFits(o, modules, fixed);
  // the budget: given, or GeLoRA's own
  let geloraRun: Pick<ChildRun, 'geloraDir' | 'budget' | 'budgetLikeRank'> = {}, loraR = o.r, budgetNote = '';
  const analysisDir = join(o.out, 'analysis');
  if (methods.includes('gelora')) {
    if (!existsSync(join(analysisDir, 'gelora.json'))) {
      const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
      const allocOpts = { alphaRatio: o.alphaRatio, budget: o.budget, budgetLikeRank: o.budgetLikeRank, fixedParams: fixed };
      const bar = o.progress?.('hidden states');
      const { report, alloc } = analyzeTask(model, tok, task.train, { modelPath: o.model, taskName: task.name, modules, allocOpts, samples: o.samples, maxLength: o.maxLength, seed: 0, onBatch: (d, t) => bar?.update(d, t) });
      bar?.stop();
      checkRanksFit(alloc.ranks, modules, 'the analysis gave rank');
      writeJsonAtomic(join(analysisDir, 'gelora.json'), report);
      writeJsonAtomic(join(analysisDir, 'adapter_config.json'), adapterConfigFor(allocationConfig(model, alloc), alloc.modules, o.model));
      writeFileAtomic(join(analysisDir, 'profile.svg'), profileSvg(report.profile, alloc.ranks, `GeLoRA profile: ${task.name}`));
    }
    const g = JSON.parse(readFileSync(join(analysisDir, 'gelora.json'), 'utf8')) as { trainable_params: number; ranks: number[] };
    geloraRun = { geloraDir: analysisDir, budget: o.budget, budgetLikeRank: o.budgetLikeRank };
    const target = g.trainable_params;
    if (!o.budgetLikeRank) {
      loraR = Math.max(1, Math.round((target - fixed) / unit));
      budgetNote = `uniform LoRA at rank ${loraR} (${loraR * unit + fixed} parameters) is the closest to GeLoRA's ${target}`;
    } else {
      loraR = o.budgetLikeRank;
      budgetNote = `GeLoRA scaled to the budget of uniform rank ${loraR} (${loraR * unit + fixed} parameters)`;
    }
  } else if (o.budgetLikeRank) loraR = o.budgetLikeRank;
  const adaptive = methods.filter((m) => m === 'adalora' || m === 'sora');
  if (adaptive.length && loraR !== undefined) budgetNote += `${budgetNote ? '; ' : ''}${adaptive.map((m) => (m === 'adalora' ? `AdaLoRA with target_r ${loraR} (init_r ${Math.round(1.5 * loraR)})` : `SoRA with r_max ${loraR}, pruned by its gates`)).join(', ')}`;
  const runs: RunResult[] = [];
  const total = methods.length * o.seeds;
  let done = 0;
  for (const method of methods) {
    for (let seed = 0; seed < o.seeds; seed++) {
      const dir = join(o.out, 'runs', `${method}-seed${seed}`);
      const lr = o.lrFor?.get(method) ?? o.lr;
      done++;
      if (existsSync(join(dir, 'metrics.json'))) {
        log(`[${done}/${total}] ${method} seed ${seed}: finished earlier, reusing ${dir}`);
      } else {
        log(`[${done}/${total}] ${method} seed ${seed}`);
        const run: ChildRun = {
          method, seed, out: dir, lr, resume: existsSync(join(dir, 'latest.json')),
          ...(['lora', 'adalora', 'sora'].includes(method) ? { r: loraR } : {}), ...(method === 'gelora' ? geloraRun : {}),
        };
        const t0 = performance.now();
        const status = o.runTrain(run);
        if (status !== 0) throw new Error(`${method} seed ${seed} failed (exit ${status}); see above. Fix and run compare again: finished runs are kept`);
        writeJsonAtomic(join(dir, 'wall.json'), { wall_seconds: (performance.now() - t0) / 1000 });
      }
      const wall = existsSync(join(dir, 'wall.json')) ? (JSON.parse(readFileSync(join(dir, 'wall.json'), 'utf8')) as { wall_seconds: number }).wall_seconds : null;
      const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { best: { primary: number; metrics: Record<string, number> }; trainable_params: number; initial_trainable_params: number; train_seconds: number; peak_rss_mb: number; saved: string; ranks: number[] | null };
      runs.push({ method, seed, metric_value: m.best.primary, trainable_params: m.trainable_params, train_seconds: m.train_seconds, peak_rss_mb: m.peak_rss_mb, adapter_dir: relative(o.out, m.saved), ranks: m.ranks, lr, wall_seconds: wall, metrics: m.best.metrics, initial_trainable_params: m.initial_trainable_params });
    }
  }
  const summary = summarise(runs, methods);
  // the training settings every run shares (from the first run's train_config.json; the learning rate is per run)
  const first = JSON.parse(readFileSync(join(o.out, 'runs', `${runs[0].method}-seed${runs[0].seed}`, 'train_config.json'), 'utf8')) as { model: string; config: Record<string, unknown> };
  const results = { task: task.name, metric: task.metric, model: first.model, train_config: first.config, runs, summary, budget: budgetNote || null, data: task.source };
  writeJsonAtomic(join(o.out, 'results.json'), results);
  // QA: exact match next to F1 (the selection metric), as SQuAD results are reported
  const emTable = !o.causalLm && resolveTaskType(o.task) === 'qa' ? `\n${markdownTable(`${task.name}: exact match`, 'exact', summarise(runs.map((r) => ({ ...r, metric_value: r.metrics.exact })), methods))}` : '';
  const md = markdownTable(task.name, task.metric, summary) + emTable + (budgetNote ? `\nBudget: ${budgetNote}.\n` : '');
  writeFileAtomic(join(o.out, 'results.md'), md);
  const profile = existsSync(join(analysisDir, 'profile.svg')) ? readFileSync(join(analysisDir, 'profile.svg'), 'utf8') : '';
  const curves = Object.fromEntries(methods.map((m) => [m, runs.filter((r) => r.method === m).map((r) => ({ seed: r.seed, curves: readLogCurves(join(o.out, 'runs', `${m}-seed${r.seed}`, 'log.jsonl')) }))]));
  writeFileAtomic(join(o.out, 'report.html'), compareReportHtml({
    task: task.name, metric: task.metric, model: o.model, seeds: o.seeds, budgetNote, markdown: md, methods, curves, profileSvg: profile,
    ranks: runs.filter((r) => r.seed === 0 && r.ranks).map((r) => ({ method: r.method, ranks: r.ranks! })),
  }));
  return { markdown: md, resultsFile: join(o.out, 'results.json'), reportFile: join(o.out, 'report.html') };
}
