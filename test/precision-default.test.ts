/**
 * The `--precision` default the CLI ships (src/engine/precision.ts, DEFAULT_PRECISION, chosen in
 * experiments/precision): auto for training, eval, forward, compare and the training/forward benches,
 * fp32 for the analysis; and what auto resolves to with and without bf16 matrix units (DNNL_MAX_CPU_ISA=AVX2
 * caps oneDNN below AMX and AVX512-BF16, as a CPU without them would be), in the run's log and its files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command, Option } from 'commander';
import { kernels } from '../src/engine/backend.js';
import { bf16Available } from '../src/engine/backends/dnnl.js';
import { ANALYSIS_PRECISION, DEFAULT_PRECISION } from '../src/engine/precision.js';
import { buildProgram } from '../src/cli/program.js';
import { optionDefaults, TRAIN_OPTIONS } from '../src/cli/train-options.js';
import { dogTask } from './dog-task.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ROOT + 'dist/src/cli/main.js';
/** what auto runs on this machine: bf16 only on the native backend with bf16 matrix units */
const AUTO = bf16Available().available && kernels().name === 'native' ? 'bf16' : 'fp32';
const NO_BF16_UNITS = { DNNL_MAX_CPU_ISA: 'AVX2' };

const gelora = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

/** "train", "bench lora-step", ... -> the default of its --precision, for every command that has the flag. */
function precisionDefaults(c: Command, path: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of c.commands) {
    const p = [...path, s.name()], o = (s.options as (Option & { long: string; defaultValue?: unknown })[]).find((x) => x.long === '--precision');
    if (o) out[p.join(' ')] = o.defaultValue;
    Object.assign(out, precisionDefaults(s, p));
  }
  return out;
}

test('--precision defaults: auto where the CLI trains, evaluates or runs a forward (and the demo), fp32 for the analysis and for pretraining (mixed precision is asked for)', () => {
  assert.equal(DEFAULT_PRECISION, 'auto');
  assert.equal(ANALYSIS_PRECISION, 'fp32');
  assert.deepEqual(precisionDefaults(buildProgram()), {
    'train': 'auto', 'eval': 'auto', 'compare': 'auto', 'forward': 'auto', 'analyze': 'fp32',
    'bench lora-step': 'auto', 'bench forward': 'auto', 'bench memory': 'auto', 'bench analyze': 'fp32', 'bench analyze-scale': 'fp32',
    'pretrain': 'fp32',
  });
  // gelora demo trains with train's defaults (src/cli/demo.ts)
  assert.equal((optionDefaults(TRAIN_OPTIONS) as { precision?: string }).precision, 'auto');
});

test('no --precision: train, eval and compare run what auto picks here and record it; without bf16 units auto runs fp32 and says why', () => {
  const t = dogTask(40, 3, 'gelora-precision-default-');
  const train = (out: string, env: NodeJS.ProcessEnv = {}) => gelora(['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--max-steps', '2', '--out', out], env);
  for (const [env, want] of [[{}, AUTO], [NO_BF16_UNITS, 'fp32']] as const) {
    const out = join(t.dir, `train-${Object.keys(env).length}`), r = train(out, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readJson<{ precision: string }>(join(out, 'metrics.json')).precision, want);
    assert.equal(readJson<{ precision_info: { requested: string } }>(join(out, 'metrics.json')).precision_info.requested, 'auto');
    assert.equal(readJson<{ precision: string }>(join(out, 'train_config.json')).precision, want);
    assert.match(r.stderr, want === 'bf16' ? /gelora: precision bf16 \(\d+ frozen Linear weights in bf16 on oneDNN/ : /gelora: precision fp32 \(auto: .+\)/);
    const ev = gelora(['eval', '--model', t.model, '--adapter', join(out, 'adapter'), '--train', t.data], env);
    assert.equal(ev.status, 0, ev.stderr);
    assert.equal(JSON.parse(ev.stdout).precision, want);
  }
  // compare forwards the default to its runs, and results.json says which precision each ran
  const cmp = join(t.dir, 'compare');
  const c = gelora(['compare', '--model', t.model, '--train', t.data, '--methods', 'lora', '--r', '2', '--seeds', '1', '--max-steps', '2', '--out', cmp]);
  assert.equal(c.status, 0, c.stderr);
  assert.deepEqual(readJson<{ runs: { precision: string }[] }>(join(cmp, 'results.json')).runs.map((r) => r.precision), [AUTO]);
});

test('no --precision: gelora analyze runs fp32 even where bf16 units are present, and gelora.json says so', () => {
  const t = dogTask(60, 4, 'gelora-precision-analyze-'), out = join(t.dir, 'analysis');
  const r = gelora(['analyze', '--model', t.model, '--train', t.data, '--out', out, '--bootstrap', '0']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /gelora: precision fp32 \(as asked\)/);
  assert.equal(readJson<{ data: { precision: string } }>(join(out, 'gelora.json')).data.precision, 'fp32');
});
