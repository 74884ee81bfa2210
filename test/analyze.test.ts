import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/engine/random.js';
import { gaussian } from '../src/id/synthetic.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { loadModel } from '../src/models/load.js';
import { HF } from './hf-fixtures.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT });

/** The bert fixture with a WordPiece vocabulary, and a text file of sentences from that vocabulary. */
function fixtureTask(): { dir: string; train: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gelora-analyze-'));
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(`${HF}bert/${f}`, join(dir, f));
  copyFileSync(ROOT + 'test/data/tokenizers/wordpiece/vocab.txt', join(dir, 'vocab.txt'));
  const words = ['the', 'cat', 'cats', 'sat', 'on', 'mat', '.', 'a', 'dog', 'ran'], rng = new Rng(3);
  const lines = Array.from({ length: 200 }, () => Array.from({ length: 3 + rng.int(10) }, () => words[rng.int(words.length)]).join(' '));
  writeFileSync(join(dir, 'train.txt'), lines.join('\n'));
  return { dir, train: join(dir, 'train.txt') };
}

describe('gelora analyze', () => {
  it('runs end to end on a model folder and a text file; rank_pattern keys are real module names', () => {
    const { dir, train } = fixtureTask(), out = join(dir, 'out');
    const r = gelora('analyze', '--model', dir, '--train', train, '--out', out, '--bootstrap', '20', '--budget-like-rank', '2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layer +d +± err/);
    const report = JSON.parse(readFileSync(join(out, 'gelora.json'), 'utf8')) as { profile: { id: number; low: number; high: number }[]; ranks: number[]; budget: { exact: boolean; reached: number }; trainable_params: number; modules: Record<string, { r: number }> };
    assert.equal(report.profile.length, 4);
    for (const p of report.profile) assert.ok(p.low <= p.id && p.id <= p.high);
    assert.equal(report.ranks.length, 3);
    assert.ok(report.budget.exact);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { target_modules: string[]; rank_pattern: Record<string, number>; alpha_pattern: Record<string, number>; r: number; lora_alpha: number; peft_type: string };
    assert.equal(cfg.peft_type, 'LORA');
    const { model } = loadModel(dir);
    const names = new Set(model.linears().map((l) => l.name));
    for (const k of [...cfg.target_modules, ...Object.keys(cfg.rank_pattern), ...Object.keys(cfg.alpha_pattern)]) assert.ok(names.has(k), `${k} is not a module of the model`);
    assert.equal(cfg.target_modules.length, 18);
    // every module's rank and alpha as PEFT would resolve them, alpha/r constant
    for (const m of cfg.target_modules) {
      const r = cfg.rank_pattern[m] ?? cfg.r, a = cfg.alpha_pattern[m] ?? cfg.lora_alpha;
      assert.equal(r, report.modules[m].r);
      assert.equal(a / r, 2);
    }
    assert.ok(readFileSync(join(out, 'profile.svg'), 'utf8').startsWith('<svg'));
  });

  it('from hidden states of any runtime, with standard module names of a model type', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-hs-'));
    const f = join(dir, 'hidden.safetensors');
    // intrinsic dimension 2, 4, 9: blocks should get ranks 3 and 6
    const layers = [gaussian(600, 2, 24, 1), gaussian(600, 4, 24, 2), gaussian(600, 9, 24, 3)];
    writeSafetensors(f, Object.fromEntries(layers.map((p, i) => [`hidden_states.${i}`, { shape: [p.n, p.dim], data: Float32Array.from(p.data) }])));
    const out = join(dir, 'out');
    const r = gelora('analyze', '--hidden-states', f, '--model-type', 'llama', '--num-layers', '2', '--out', out, '--bootstrap', '0', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ranks: number[]; profile: { id: number }[] };
    const expected = [Math.max(Math.ceil(report.profile[1].id - report.profile[0].id), 0) + 1, Math.max(Math.ceil(report.profile[2].id - report.profile[1].id), 0) + 1];
    assert.deepEqual(report.ranks, expected);
    assert.ok(report.ranks[1] > report.ranks[0]);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { target_modules: string[]; task_type: string };
    assert.equal(cfg.target_modules.length, 14);
    assert.ok(cfg.target_modules.includes('model.layers.1.mlp.down_proj'));
    assert.equal(cfg.task_type, 'CAUSAL_LM');
  });

  it('budget mode without module sizes is refused with the reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-hs-'));
    const f = join(dir, 'h.safetensors');
    writeSafetensors(f, Object.fromEntries([0, 1].map((i) => [`hidden_states.${i}`, { shape: [100, 8], data: Float32Array.from(gaussian(100, 3, 8, i).data) }])));
    const r = gelora('analyze', '--hidden-states', f, '--model-type', 'gpt2', '--num-layers', '1', '--out', join(dir, 'o'), '--budget', '1000');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /budget mode needs the sizes of the adapted modules/);
  });
});

describe('gelora forward --adapter', () => {
  it('applies a PEFT adapter: logits match peft', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gelora-fa-')), 'o.safetensors');
    const r = gelora('forward', '--model', HF + 'bert', '--adapter', HF + 'bert/lora/adapter', '--inputs', HF + 'bert/lora/inputs.json', '--out', out, '--precision', 'fp32');
    assert.equal(r.status, 0, r.stderr);
    const got = new SafetensorsFile(out).read('logits').data, want = new SafetensorsFile(HF + 'bert/lora/expected.safetensors').read('logits').data;
    assert.ok(got.every((v, i) => Math.abs(v - want[i]) <= 1e-4));
  });
  it('warns when a head weight is in neither the base nor the adapter', () => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-nopooler-'));
    copyFileSync(HF + 'bert/config.json', join(d, 'config.json'));
    const f = new SafetensorsFile(HF + 'bert/model.safetensors');
    const w: Record<string, TensorToWrite> = {};
    for (const n of f.names()) if (!n.includes('pooler')) w[n] = { shape: f.info(n).shape, data: f.read(n).data };
    f.close();
    writeSafetensors(join(d, 'model.safetensors'), w);
    const args = ['--inputs', HF + 'bert/lora/inputs.json', '--out', join(d, 'o.safetensors')];
    const r = gelora('forward', '--model', d, '--adapter', HF + 'bert/lora/adapter', ...args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /head weights in neither .* nor the adapter .*initialised randomly .*: bert\.pooler\.dense\.weight, bert\.pooler\.dense\.bias/);
    const full = gelora('forward', '--model', HF + 'bert', '--adapter', HF + 'bert/lora/adapter', ...args);
    assert.equal(full.status, 0, full.stderr);
    assert.doesNotMatch(full.stderr, /initialised randomly/);
  });
});
