/**
 * `gelora compare`: every method at the same trainable-parameter budget, over several seeds.
 * The GeLoRA analysis runs once; each (method, seed) run is a child `gelora train` process, so its wall
 * time and peak memory are its own and a finished run (metrics.json present) is skipped when compare
 * runs again. Writes results.json, results.md and report.html.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { allocationConfig, analyzeTask, blockModules, fixedTrainableParams } from '../gelora/analyze.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { adapterConfigFor } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import { lineChartSvg, profileSvg, smooth } from '../report/plots.js';
import { METHODS, type Method } from '../train/methods.js';
import { meanStd } from '../train/metrics.js';
import { loadTask } from '../train/task.js';
import { addDataOptions, addTrainOptions, taskOptions, type TrainCli } from './train.js';
import { positiveInt } from './main.js';
import { progressBar } from './progress.js';

export interface RunResult {
  method: string; seed: number; metric_value: number; trainable_params: number; train_seconds: number; peak_rss_mb: number; adapter_dir: string; ranks: number[] | null; lr: number;
  /** the child process' wall time (loading, training, saving), kept in its folder's wall.json; null for runs finished before it was recorded */
  wall_seconds: number | null;
  /** every dev metric at the selected evaluation, and the PEFT count while training (AdaLoRA and SoRA train more than they keep) */
  metrics: Record<string, number>; initial_trainable_params: number;
}
export interface SummaryRow { method: string; mean: number; std: number; trainable_params: number; train_seconds: number; peak_rss_mb: number; runs: number }

export function summarise(runs: RunResult[], methods: string[]): SummaryRow[] {
  return methods.map((m) => {
    const rs = runs.filter((r) => r.method === m), { mean, std } = meanStd(rs.map((r) => r.metric_value));
    return {
      method: m, mean, std, trainable_params: rs[0].trainable_params, runs: rs.length,
      train_seconds: rs.reduce((a, r) => a + r.train_seconds, 0) / rs.length, peak_rss_mb: Math.max(...rs.map((r) => r.peak_rss_mb)),
    };
  });
}

/** The markdown table; every number is printed from the same values results.json holds. */
export function markdownTable(task: string, metric: string, rows: SummaryRow[]): string {
  const lines = [`| method | ${metric} (mean ± std) | runs | trainable params | train time (s, mean) | peak memory (MB) |`, '|---|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.method} | ${r.mean.toFixed(4)} ± ${r.std.toFixed(4)} | ${r.runs} | ${r.trainable_params} | ${r.train_seconds.toFixed(1)} | ${r.peak_rss_mb.toFixed(0)} |`);
  return `### ${task}\n\n${lines.join('\n')}\n`;
}

function htmlTable(md: string): string {
  const rows = md.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---'));
  return `<table>${rows.map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i ? `<td>${c.trim()}</td>` : `<th>${c.trim()}</th>`)).join('')}</tr>`).join('')}</table>`;
}

function curves(runDir: string): { loss: [number, number][]; metric: [number, number][] } {
  const f = join(runDir, 'log.jsonl');
  const lines = existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>) : [];
  return {
    loss: lines.filter((l) => typeof l.loss === 'number').map((l) => [l.step, l.loss]),
    metric: lines.filter((l) => typeof l.primary === 'number').map((l) => [l.step, l.primary]),
  };
}

/** Command-line flags of a train run, rebuilt from the parsed options. */
function trainArgs(o: TrainCli): string[] {
  const flags: [keyof TrainCli, string][] = [
    ['train', '--train'], ['dev', '--dev'], ['glue', '--glue'], ['task', '--task'], ['textCol', '--text-col'], ['pairCol', '--pair-col'], ['labelCol', '--label-col'],
    ['maxTrain', '--max-train'], ['maxDev', '--max-dev'], ['metric', '--metric'], ['epochs', '--epochs'], ['batchSize', '--batch-size'], ['lr', '--lr'],
    ['weightDecay', '--weight-decay'], ['warmup', '--warmup'], ['schedule', '--schedule'], ['maxGradNorm', '--max-grad-norm'], ['gradAccum', '--grad-accum'],
    ['evalEvery', '--eval-every'], ['patience', '--patience'], ['maxLength', '--max-length'], ['checkpointEvery', '--checkpoint-every'], ['maxSteps', '--max-steps'],
    ['alphaRatio', '--alpha-ratio'], ['loraDropout', '--lora-dropout'], ['samples', '--samples'],
  ];
  const out: string[] = [];
  for (const [k, f] of flags) if (o[k] !== undefined) out.push(f, String(o[k]));
  if (o.regression) out.push('--regression');
  if (o.targets) out.push('--targets', ...o.targets);
  return out;
}

export interface CompareCli extends TrainCli { methods: string; seeds: number; lrFor?: string[] }

export function registerCompare(program: Command): void {
  const cmd = program.command('compare')
    .description('train several methods at the same trainable-parameter budget over several seeds; write results.json, results.md, report.html')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--methods <list>', `comma-separated, of ${METHODS.join(', ')}`, 'gelora,lora,full')
    .option('--seeds <n>', 'seeds per method (0..n-1)', positiveInt, 3)
    .option('--lr-for <method=lr...>', 'learning rate of one method (e.g. full=5e-5); others use --lr')
    .requiredOption('--out <dir>', 'output folder');
  addTrainOptions(addDataOptions(cmd)).action(async (o: CompareCli) => {
    console.log((await runCompare(o)).markdown);
  });
}

/** The whole comparison: the analysis once, every run, the three outputs. */
export async function runCompare(o: CompareCli): Promise<{ markdown: string; resultsFile: string; reportFile: string }> {
  const methods = o.methods.split(',').map((m) => m.trim()).filter(Boolean);
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new Error(`unknown method "${m}" (${METHODS.join(', ')})`);
  const lrs = new Map<string, number>();
  for (const e of o.lrFor ?? []) {
    const [m, v] = e.split('=');
    if (!methods.includes(m) || !(Number(v) > 0)) throw new Error(`--lr-for ${e}: expected METHOD=LR for one of ${methods.join(', ')}`);
    lrs.set(m, Number(v));
  }
  const task = await loadTask(taskOptions(o));
  const numLabels = task.kind === 'regression' ? 1 : task.labels.length;
  const { model } = loadModel(o.model, { numLabels, task: 'seq-cls', seed: 0 });
  const modules = blockModules(model, o.targets ?? null);
  const unit = modules.reduce((s, m) => s + m.inF! + m.outF!, 0), fixed = fixedTrainableParams(model);
  // the budget: given, or GeLoRA's own
  let geloraArgs: string[] = [], loraR = o.r, budgetNote = '';
  const analysisDir = join(o.out, 'analysis');
  if (methods.includes('gelora')) {
    if (!existsSync(join(analysisDir, 'gelora.json'))) {
      const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
      const bar = progressBar('hidden states');
      const allocOpts = { alphaRatio: o.alphaRatio, budget: o.budget, budgetLikeRank: o.budgetLikeRank, fixedParams: fixed };
      const { report, alloc } = analyzeTask(model, tok, task.train, { modelPath: o.model, taskName: task.name, modules, allocOpts, samples: o.samples, maxLength: o.maxLength, seed: 0, onBatch: (d, t) => bar.update(d, t) });
      bar.stop();
      writeJsonAtomic(join(analysisDir, 'gelora.json'), report);
      writeJsonAtomic(join(analysisDir, 'adapter_config.json'), adapterConfigFor(allocationConfig(model, alloc), alloc.modules, o.model));
      writeFileAtomic(join(analysisDir, 'profile.svg'), profileSvg(report.profile, alloc.ranks, `GeLoRA profile: ${task.name}`));
    }
    const g = JSON.parse(readFileSync(join(analysisDir, 'gelora.json'), 'utf8')) as { trainable_params: number; ranks: number[] };
    geloraArgs = ['--gelora-dir', analysisDir, ...(o.budget ? ['--budget', String(o.budget)] : []), ...(o.budgetLikeRank ? ['--budget-like-rank', String(o.budgetLikeRank)] : [])];
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
  const cli = fileURLToPath(new URL('./main.js', import.meta.url));
  const runs: RunResult[] = [];
  const total = methods.length * o.seeds;
  let done = 0;
  for (const method of methods as Method[]) {
    for (let seed = 0; seed < o.seeds; seed++) {
      const dir = join(o.out, 'runs', `${method}-seed${seed}`);
      const lr = lrs.get(method) ?? o.lr;
      done++;
      if (existsSync(join(dir, 'metrics.json'))) {
        process.stderr.write(`[${done}/${total}] ${method} seed ${seed}: finished earlier, reusing ${dir}\n`);
      } else {
        process.stderr.write(`[${done}/${total}] ${method} seed ${seed}\n`);
        const args = [cli, 'train', '--model', o.model, '--method', method, '--seed', String(seed), '--out', dir, ...trainArgs({ ...o, lr }),
          ...(['lora', 'adalora', 'sora'].includes(method) ? ['--r', String(loraR)] : []), ...(method === 'gelora' ? geloraArgs : []),
          ...(existsSync(join(dir, 'latest.json')) ? ['--resume'] : [])];
        const t0 = performance.now();
        const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
        if (r.status !== 0) throw new Error(`${method} seed ${seed} failed (exit ${r.status}); see above. Fix and run compare again: finished runs are kept`);
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
  const md = markdownTable(task.name, task.metric, summary) + (budgetNote ? `\nBudget: ${budgetNote}.\n` : '');
  writeFileAtomic(join(o.out, 'results.md'), md);
  const profile = existsSync(join(analysisDir, 'profile.svg')) ? readFileSync(join(analysisDir, 'profile.svg'), 'utf8') : '';
  const curveSvgs = methods.map((m) => {
    const seeds = runs.filter((r) => r.method === m).map((r) => ({ seed: r.seed, c: curves(join(o.out, 'runs', `${m}-seed${r.seed}`)) }));
    return lineChartSvg(seeds.map((s) => ({ name: `seed ${s.seed}`, points: s.c.metric })), { title: `${m}: dev ${task.metric}`, xLabel: 'optimizer step', yLabel: task.metric, width: 560, height: 260 }) +
      lineChartSvg(seeds.map((s) => ({ name: `seed ${s.seed}`, points: smooth(s.c.loss) })), { title: `${m}: train loss (smoothed)`, xLabel: 'optimizer step', yLabel: 'loss', width: 560, height: 260 });
  });
  const ranksLine = runs.filter((r) => r.seed === 0 && r.ranks).map((r) => `<li><b>${r.method}</b>: ranks per block ${r.ranks!.join(', ')}</li>`).join('');
  writeFileAtomic(join(o.out, 'report.html'), `<!doctype html><html><head><meta charset="utf-8"><title>gelora compare: ${task.name}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}svg{margin:8px 8px 8px 0}</style></head><body>
<h1>gelora compare: ${task.name}</h1><p>Model <code>${o.model}</code>; selection metric <b>${task.metric}</b> on dev; ${o.seeds} seed(s); ${budgetNote}</p>
${htmlTable(md)}<ul>${ranksLine}</ul>${profile ? `<h2>Intrinsic-dimension profile and GeLoRA ranks</h2>${profile}` : ''}<h2>Learning curves</h2>${curveSvgs.map((s) => `<div>${s}</div>`).join('')}
</body></html>\n`);
  return { markdown: md, resultsFile: join(o.out, 'results.json'), reportFile: join(o.out, 'report.html') };
}
