/**
 * The comparison `gelora compare` runs: every method at the same trainable-parameter budget, over
 * several seeds. The GeLoRA analysis runs once; each (method, seed) run is handed to `runTrain` (the CLI
 * runs a child `gelora train` process, so its wall time and peak memory are its own) and a finished
 * run (metrics.json present) is skipped when compare runs again. Writes results.json, results.md and
 * report.html.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { allocate, allocationConfig, analyzeTask, fixedTrainableParams } from '../gelora/analyze.js';
import { checkBudgetFits, checkRanksFit, targetBlockModules } from '../gelora/ranks.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { adapterConfigFor } from '../lora/adapter.js';
import { exampleText, loadChatTemplate, readLmData } from '../io/chat.js';
import { loadModel } from '../models/load.js';
import type { Model } from '../models/model.js';
import { budgetCurveSvg, type BudgetSeries } from '../report/budget.js';
import { compareReportHtml, markdownTable, type SummaryRow } from '../report/compare.js';
import { readLogCurves } from '../report/curves.js';
import { profileSvg } from '../report/plots.js';
import { compareMethods, comparisonsMarkdown, type MethodComparison } from '../report/significance.js';
import { PREDICTIONS_FILE, readPredictions } from '../train/predictions.js';
import { evaluate, type MetricName } from '../train/metrics.js';
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
  /** what the run's frozen products ran in (its metrics.json's precision); absent for runs finished before it was recorded */
  precision?: 'fp32' | 'bf16';
  /** not trained: the same adapter as this method's run of the same seed (GeLoRA's allocation equal to uniform LoRA's, with a budget curve) */
  same_as?: string;
}

/** The folder of a run (a run that is the same adapter as another's lives in that one's folder). */
const runDir = (out: string, r: Pick<RunResult, 'method' | 'seed' | 'same_as'>): string => join(out, 'runs', `${r.same_as ?? r.method}-seed${r.seed}`);

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
  /**
   * uniform ranks for a budget curve, drawn when GeLoRA's allocation is uniform (its rows would equal
   * LoRA's): uniform LoRA at each rank (same seeds) and GeLoRA scaled to each budget, trained only
   * where its scaled ranks are not uniform (otherwise it is the same adapter as LoRA's)
   */
  budgetCurve?: number[];
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

/**
 * One (method, seed) run under root/runs/METHOD-seedS: reused when its metrics.json exists, resumed
 * from its checkpoint when it has one, trained otherwise (o.runTrain); its results as results.json lists them.
 */
function runOrReuse(o: CompareOptions, root: string, label: string, run: Omit<ChildRun, 'out' | 'lr' | 'resume'>): RunResult {
  const { method, seed } = run, log = o.log ?? (() => {});
  const dir = join(root, 'runs', `${method}-seed${seed}`);
  const lr = o.lrFor?.get(method) ?? o.lr;
  if (existsSync(join(dir, 'metrics.json'))) {
    log(`${label}: finished earlier, reusing ${dir}`);
  } else {
    log(label);
    const t0 = performance.now();
    const status = o.runTrain({ ...run, out: dir, lr, resume: existsSync(join(dir, 'latest.json')) });
    if (status !== 0) throw new Error(`${method} seed ${seed} failed (exit ${status}); see above. Fix and run compare again: finished runs are kept`);
    writeJsonAtomic(join(dir, 'wall.json'), { wall_seconds: (performance.now() - t0) / 1000 });
  }
  const wall = existsSync(join(dir, 'wall.json')) ? (JSON.parse(readFileSync(join(dir, 'wall.json'), 'utf8')) as { wall_seconds: number }).wall_seconds : null;
  const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { best: { primary: number; metrics: Record<string, number> }; trainable_params: number; initial_trainable_params: number; train_seconds: number; peak_rss_mb: number; saved: string; ranks: number[] | null; precision?: 'fp32' | 'bf16' };
  return { method, seed, metric_value: m.best.primary, trainable_params: m.trainable_params, train_seconds: m.train_seconds, peak_rss_mb: m.peak_rss_mb, adapter_dir: relative(o.out, m.saved), ranks: m.ranks, lr, wall_seconds: wall, metrics: m.best.metrics, initial_trainable_params: m.initial_trainable_params, ...(m.precision ? { precision: m.precision } : {}) };
}

/** The whole comparison: the analysis once, every run, the three outputs. */
export interface CompareOutcome {
  markdown: string; resultsFile: string; reportFile: string;
  /** GeLoRA's ranks where its allocation is uniform (every block the same rank), else null */
  uniformRanks: number[] | null;
  /** what the uniform allocation means for the rows, and the budget curve's table ('' when neither applies) */
  uniformNote: string; budgetMarkdown: string;
}

export async function runCompare(o: CompareOptions): Promise<CompareOutcome> {
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
    const g = JSON.parse(readFileSync(join(analysisDir, 'gelora.json'), 'utf8')) as { trainable_params: number; ranks: number[]; profile: { id: number; low: number; high: number }[]; rule: { offset: number; error_aware: boolean } };
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
  // with a budget curve asked for, a GeLoRA allocation equal to uniform LoRA's (the ranks its runs would
  // train, as train computes them from the analysis) is not trained twice: its rows are LoRA's runs
  const shareGelora = Boolean(o.budgetCurve?.length) && methods.includes('gelora') && methods.includes('lora') && o.budget === undefined
    && geloraScaled(o, analysisDir, modules, fixed, o.budgetLikeRank).every((k) => k === loraR);
  const runs: RunResult[] = [];
  const total = methods.filter((m) => !(shareGelora && m === 'gelora')).length * o.seeds;
  let done = 0;
  for (const method of methods) {
    if (shareGelora && method === 'gelora') continue;
    for (let seed = 0; seed < o.seeds; seed++) {
      done++;
      runs.push(runOrReuse(o, o.out, `[${done}/${total}] ${method} seed ${seed}`, {
        method, seed, ...(['lora', 'adalora', 'sora'].includes(method) ? { r: loraR } : {}), ...(method === 'gelora' ? geloraRun : {}),
      }));
    }
  }
  if (shareGelora) runs.splice(0, 0, ...runs.filter((r) => r.method === 'lora').map((r) => ({ ...r, method: 'gelora', same_as: 'lora' })));
  // GeLoRA's allocation uniform: its rows and LoRA's are the same adapter; a budget curve says what the data support
  const gRanks = runs.find((r) => r.method === 'gelora' && r.ranks)?.ranks ?? null;
  const uniformRanks = gRanks && new Set(gRanks).size === 1 ? gRanks : null;
  const sameRows = uniformRanks !== null && runs.some((r) => r.method === 'lora' && JSON.stringify(r.ranks) === JSON.stringify(uniformRanks));
  const uniformNote = uniformRanks ? `GeLoRA's allocation is uniform: rank ${uniformRanks[0]} in every block (the intrinsic dimension does not grow from one layer to the next by more than the offset).${sameRows ? ` At this budget GeLoRA trains the same adapter as uniform LoRA, so its runs are LoRA's${shareGelora ? ' (trained once, not twice)' : ', identical by construction'} and the two rows say nothing about allocation.` : ''}` : '';
  const curve = uniformRanks && o.budgetCurve?.length && methods.includes('lora') ? budgetCurveRuns(o, runs, { analysisDir, modules, fixed, loraR }) : null;
  const preds = collectPredictions(o.out, runs);
  const comparisons = methodComparisons(runs, preds);
  const summary = summarise(runs, methods);
  // the training settings every run shares (from the first run's train_config.json; the learning rate is per run)
  const first = JSON.parse(readFileSync(join(runDir(o.out, runs[0]), 'train_config.json'), 'utf8')) as { model: string; config: Record<string, unknown> };
  const results = {
    task: task.name, metric: task.metric, model: first.model, train_config: first.config, runs, summary, budget: budgetNote || null, data: task.source, significance: comparisons,
    ...(uniformRanks ? { uniform_allocation: uniformRanks } : {}), ...(curve ? { budget_curve: curve.series } : {}),
  };
  writeJsonAtomic(join(o.out, 'results.json'), results);
  // QA: exact match next to F1 (the selection metric), as SQuAD results are reported
  const emTable = !o.causalLm && resolveTaskType(o.task) === 'qa' ? `\n${markdownTable(`${task.name}: exact match`, 'exact', summarise(runs.map((r) => ({ ...r, metric_value: r.metrics.exact })), methods))}` : '';
  const sig = comparisons.length ? `\nPaired differences (same seeds, same data order; bootstrap over the dev examples where every run saved its predictions; an interval holding 0 is a tie):\n\n${comparisonsMarkdown(comparisons)}` : '';
  const budgetMarkdown = curve ? budgetCurveMarkdown(curve.series, task.metric) : '';
  const tables = markdownTable(task.name, task.metric, summary) + emTable;
  const md = tables + (budgetNote ? `\nBudget: ${budgetNote}.\n` : '') + (uniformNote ? `\n${uniformNote}\n` : '') + (budgetMarkdown ? `\n${budgetMarkdown}` : '') + sig;
  const budgetSvg = curve ? budgetCurveSvg(curve.series, { title: `${task.name}: dev ${task.metric} against trainable parameters`, metric: task.metric }) : '';
  if (curve) writeFileAtomic(join(o.out, 'budget.svg'), budgetSvg + '\n');
  writeFileAtomic(join(o.out, 'results.md'), md);
  const profile = existsSync(join(analysisDir, 'profile.svg')) ? readFileSync(join(analysisDir, 'profile.svg'), 'utf8') : '';
  const curves = Object.fromEntries(methods.map((m) => [m, runs.filter((r) => r.method === m).map((r) => ({ seed: r.seed, curves: readLogCurves(join(runDir(o.out, r), 'log.jsonl')) }))]));
  writeFileAtomic(join(o.out, 'report.html'), compareReportHtml({
    task: task.name, metric: task.metric, model: o.model, seeds: o.seeds, budgetNote, markdown: tables, methods, curves, profileSvg: profile,
    ranks: runs.filter((r) => r.seed === 0 && r.ranks).map((r) => ({ method: r.method, ranks: r.ranks! })),
    significance: sig, uniformNote, sameRows: sameRows ? ['gelora', 'lora'] : undefined, budgetSvg, budgetMarkdown,
  }));
  return { markdown: md, resultsFile: join(o.out, 'results.json'), reportFile: join(o.out, 'report.html'), uniformRanks, uniformNote, budgetMarkdown };
}

/** predictions.json of a comparison: every run's dev predictions and labels, in dev order. */
export interface ComparePredictions { kind: 'classification' | 'regression'; metric: string; runs: { method: string; seed: number; prediction: number[]; label: number[] }[] }

/**
 * The runs' predictions.jsonl gathered into <out>/predictions.json (run folders are not kept with
 * results); null when no run saved predictions (QA, causal LM, runs finished before they were saved).
 */
function collectPredictions(out: string, runs: RunResult[]): ComparePredictions | null {
  let kind: ComparePredictions['kind'] = 'classification', metric = '';
  const got: ComparePredictions['runs'] = [];
  for (const r of runs) {
    const dir = runDir(out, r), file = join(dir, PREDICTIONS_FILE);
    if (!existsSync(file)) continue;
    const p = readPredictions(file);
    if (got.length === 0) {
      const m = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { kind: string; metric: string };
      kind = m.kind === 'regression' ? 'regression' : 'classification'; metric = m.metric;
    }
    got.push({ method: r.method, seed: r.seed, prediction: p.prediction, label: p.label });
  }
  if (got.length === 0) return null;
  const preds: ComparePredictions = { kind, metric, runs: got };
  writeJsonAtomic(join(out, 'predictions.json'), preds);
  return preds;
}

/** The metric a predictions.json was scored with, as a function of (predictions, gold). */
export function predictionsMetric(p: Pick<ComparePredictions, 'kind' | 'metric'>): (pred: ArrayLike<number>, gold: ArrayLike<number>) => number {
  return (pred, gold) => evaluate(p.kind, pred, gold, p.metric as MetricName).primary;
}

/** Every adapter method against uniform LoRA (gelora − lora, ...), paired by seed; none without lora. */
export function methodComparisons(runs: Pick<RunResult, 'method' | 'seed' | 'metric_value' | 'ranks'>[], preds: ComparePredictions | null, samples = 1000): MethodComparison[] {
  const methods = [...new Set(runs.map((r) => r.method))];
  if (!methods.includes('lora')) return [];
  const paired = runs.map((r) => {
    const p = preds?.runs.find((x) => x.method === r.method && x.seed === r.seed);
    return { ...r, prediction: p?.prediction, label: p?.label };
  });
  return methods.filter((m) => m !== 'lora' && m !== 'full')
    .map((m) => compareMethods(paired, m, 'lora', preds ? predictionsMetric(preds) : null, samples))
    .filter((c): c is MethodComparison => c !== null && (c.overSeeds !== null || c.overExamples !== null));
}

/**
 * The budget curve of a comparison whose GeLoRA allocation is uniform: uniform LoRA at every rank of
 * o.budgetCurve (the comparison's own rank reuses its runs; others go under out/budget/rR/), and
 * GeLoRA scaled to each of those budgets. Where the scaled allocation is uniform too it is the same
 * adapter as LoRA's, so it shares LoRA's runs (marked same_as_lora) rather than training them twice.
 */
function budgetCurveRuns(o: CompareOptions, runs: RunResult[], c: { analysisDir: string; modules: ReturnType<typeof targetBlockModules>; fixed: number; loraR: number }): { series: (BudgetSeries & { points: (BudgetSeries['points'][number] & { r: number; same_as_lora?: boolean })[] })[] } {
  const point = (rs: RunResult[], r: number): BudgetSeries['points'][number] & { r: number } => {
    const { mean, std } = meanStd(rs.map((x) => x.metric_value));
    return { r, params: rs[0].trainable_params, mean, std, runs: rs.length, label: `r=${r}` };
  };
  const lora: ReturnType<typeof point>[] = [], gelora: (ReturnType<typeof point> & { same_as_lora?: boolean })[] = [];
  for (const r of [...new Set(o.budgetCurve)].sort((a, b) => a - b)) {
    const root = join(o.out, 'budget', `r${r}`);
    const seeds = Array.from({ length: o.seeds }, (_, s) => s);
    const lr = r === c.loraR ? runs.filter((x) => x.method === 'lora') : seeds.map((seed) => runOrReuse(o, root, `budget curve: lora r=${r} seed ${seed}`, { method: 'lora', seed, r }));
    lora.push(point(lr, r));
    if (geloraScaled(o, c.analysisDir, c.modules, c.fixed, r).every((k) => k === r)) gelora.push({ ...point(lr, r), same_as_lora: true });
    else gelora.push(point(seeds.map((seed) => runOrReuse(o, root, `budget curve: gelora at the budget of r=${r} seed ${seed}`, { method: 'gelora', seed, geloraDir: c.analysisDir, budgetLikeRank: r })), r));
  }
  return { series: [{ method: 'lora', points: lora }, { method: 'gelora', points: gelora }] };
}

/** The budget curve as a table: per rank, the parameters and both methods' dev score (mean ± std over seeds). */
function budgetCurveMarkdown(series: { method: string; points: { r: number; params: number; mean: number; std: number; runs: number; same_as_lora?: boolean }[] }[], metric: string): string {
  const [lora, gelora] = series;
  const rows = lora.points.map((p, i) => {
    const q = gelora.points[i];
    return `| ${p.r} | ${p.params} | ${p.mean.toFixed(4)} ± ${p.std.toFixed(4)} | ${p.runs} | ${q.same_as_lora ? 'same ranks as LoRA (same runs)' : `${q.mean.toFixed(4)} ± ${q.std.toFixed(4)} (${q.params} params)`} |`;
  });
  return `Budget curve (budget.svg): uniform LoRA at each rank, and GeLoRA scaled to the same budget:\n\n| rank r | trainable params | lora ${metric} (mean ± std) | runs | gelora at that budget |\n|---|---|---|---|---|\n${rows.join('\n')}\n`;
}

/** The ranks a gelora run trains from the analysis in analysisDir, at the budget of uniform rank r (GeLoRA's own budget without r), as train computes them. */
function geloraScaled(o: Pick<CompareOptions, 'alphaRatio'>, analysisDir: string, modules: ReturnType<typeof targetBlockModules>, fixed: number, r: number | undefined): number[] {
  const g = JSON.parse(readFileSync(join(analysisDir, 'gelora.json'), 'utf8')) as { profile: { id: number; low: number; high: number }[]; rule: { offset: number; error_aware: boolean } };
  const a = allocate(g.profile, modules, { alphaRatio: o.alphaRatio, budgetLikeRank: r, fixedParams: fixed, offset: g.rule.offset, errorAware: g.rule.error_aware });
  checkRanksFit(a.ranks, modules, `GeLoRA${r ? ` scaled to the budget of rank ${r}` : ''}: rank`);
  return a.ranks;
}
