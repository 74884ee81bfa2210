import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crossEntropy, mseLoss } from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { backward, noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { adapterConfigJson, loadAdapter, randomHeadWeights, saveAdapter } from '../src/lora/adapter.js';
import { allLinearTargets, defaultLoraConfig, isTarget, patternKey, resolveLora } from '../src/lora/config.js';
import { applyLoraConfig, countTrainable, mergeAll, unmergeAll } from '../src/lora/lora.js';
import { loadModel } from '../src/models/load.js';
import { HF, fixtureInputs, maxDiff } from './hf-fixtures.js';

function labelsOf(dir: string): number[] {
  return (JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as { labels: number[] }).labels;
}

function checkCase(caseDir: string, baseDir: string, regression: boolean): void {
  const { model } = loadModel(baseDir);
  const lm = loadAdapter(model, join(caseDir, 'adapter'));
  const x = fixtureInputs(caseDir), labels = labelsOf(caseDir);
  const exp = new SafetensorsFile(join(caseDir, 'expected.safetensors'));
  const grads = new SafetensorsFile(join(caseDir, 'expected_grads.safetensors'));
  const got = scope(() => {
    const o = model.forward(x);
    const loss = regression ? mseLoss(o.logits, labels) : crossEntropy(o.logits, Int32Array.from(labels));
    backward(loss);
    return { logits: o.logits.toFloat32(), hidden: o.hiddenStates.map((h) => h.toFloat32()), loss: loss.item() };
  });
  assert.ok(maxDiff(got.logits, exp.read('logits').data) <= 1e-4, 'logits');
  got.hidden.forEach((h, i) => assert.ok(maxDiff(h, exp.read(`hidden_states.${i}`).data) <= 1e-4, `hidden_states.${i}`));
  assert.ok(Math.abs(got.loss - exp.read('loss').data[0]) <= 1e-4, `loss ${got.loss} vs ${exp.read('loss').data[0]}`);
  const byName = new Map(lm.trainable.map((t) => [`base_model.model.${t.name}`, t]));
  assert.equal(byName.size, grads.names().length);
  for (const key of grads.names()) {
    const t = byName.get(key);
    assert.ok(t && t.grad, `no gradient for ${key}`);
    const want = grads.read(key).data;
    const scale = Math.max(...Array.from(want, Math.abs));
    assert.ok(maxDiff(t.grad, want) <= 1e-4 * scale, `${key}: gradient differs by ${maxDiff(t.grad, want)} (scale ${scale})`);
  }
  exp.close();
  grads.close();
}

describe('LoRA against PEFT fixtures', () => {
  it('classification: logits, loss and every adapter gradient match peft', () => checkCase(HF + 'bert/lora', HF + 'bert', false));
  it('regression (num_labels 1, MSE): logits, loss and gradients match peft', () =>
    checkCase(HF + 'bert/lora-regression', HF + 'bert/lora-regression/base', true));

  it('per-module ranks and alphas follow rank_pattern / alpha_pattern (scaling 2 everywhere)', () => {
    const { model } = loadModel(HF + 'bert');
    const lm = loadAdapter(model, HF + 'bert/lora/adapter');
    const ranks = Object.fromEntries(lm.resolution.modules.map((m) => [m.linear.name, [m.r, m.alpha, m.scale]]));
    assert.deepEqual(ranks['bert.encoder.layer.0.attention.self.query'], [1, 2, 2]);
    assert.deepEqual(ranks['bert.encoder.layer.1.output.dense'], [3, 6, 2]);
    assert.deepEqual(ranks['bert.encoder.layer.2.intermediate.dense'], [2, 4, 2]);
    assert.equal(lm.resolution.modules.length, 18);
    assert.deepEqual(lm.resolution.modulesToSave, ['classifier']);
    const f = new SafetensorsFile(HF + 'bert/lora/adapter/adapter_model.safetensors');
    assert.equal(countTrainable(lm), f.names().reduce((s, n) => s + f.info(n).shape.reduce((a, b) => a * b, 1), 0));
    f.close();
  });

  it('our saved adapter has PEFT\'s tensor keys, shapes, dtypes and config keys, and reloads to the same logits', () => {
    const { model } = loadModel(HF + 'bert');
    const lm = loadAdapter(model, HF + 'bert/lora/adapter');
    const dir = mkdtempSync(join(tmpdir(), 'gelora-adapter-'));
    saveAdapter(dir, lm, 'bert');
    const ours = new SafetensorsFile(join(dir, 'adapter_model.safetensors'));
    const theirs = new SafetensorsFile(HF + 'bert/lora/adapter/adapter_model.safetensors');
    assert.deepEqual(ours.names().sort(), theirs.names().sort());
    for (const n of theirs.names()) {
      assert.deepEqual([ours.info(n).dtype, ours.info(n).shape], [theirs.info(n).dtype, theirs.info(n).shape], n);
    }
    assert.deepEqual(ours.metadata, theirs.metadata);
    const cfgOurs = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const cfgTheirs = JSON.parse(readFileSync(HF + 'bert/lora/adapter/adapter_config.json', 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfgOurs).sort(), Object.keys(cfgTheirs).sort());
    assert.deepEqual(new Set(cfgOurs.modules_to_save as string[]), new Set(cfgTheirs.modules_to_save as string[]));
    const x = fixtureInputs(HF + 'bert/lora');
    const before = noGrad(() => scope(() => model.forward(x).logits.toFloat32()));
    const { model: fresh } = loadModel(HF + 'bert');
    loadAdapter(fresh, dir);
    const after = noGrad(() => scope(() => fresh.forward(x).logits.toFloat32()));
    assert.ok(maxDiff(before, after) === 0);
  });

  it('merge folds the adapters into the weights (same logits) and unmerge restores them', () => {
    const { model } = loadModel(HF + 'bert');
    loadAdapter(model, HF + 'bert/lora/adapter');
    const x = fixtureInputs(HF + 'bert/lora');
    const q = model.params.get('bert.encoder.layer.0.attention.self.query.weight');
    const w0 = Float32Array.from(q.data);
    const run = (): Float32Array => noGrad(() => scope(() => model.forward(x).logits.toFloat32()));
    const adapted = run();
    mergeAll(model);
    assert.ok(maxDiff(run(), adapted) < 5e-6);
    assert.ok(maxDiff(q.data, w0) > 1e-3, 'the weight changed');
    unmergeAll(model);
    assert.ok(maxDiff(q.data, w0) < 1e-6);
    assert.ok(maxDiff(run(), adapted) < 5e-6);
  });
});

describe('PEFT config semantics', () => {
  it('rank_pattern keys match /(.*\\.)?(KEY)$/ and the first matching key wins', () => {
    assert.equal(patternKey(['layer.0.*', 'layer.*'], 'bert.encoder.layer.0.attention.self.query'), 'layer.0.*');
    assert.equal(patternKey(['query', 'layer.0.*'], 'bert.encoder.layer.0.attention.self.query'), 'query');
    assert.equal(patternKey(['uery'], 'bert.encoder.layer.0.attention.self.query'), null, 'a key matches whole dotted components');
    assert.equal(patternKey(['bert.encoder.layer.1.output.dense'], 'bert.encoder.layer.11.output.dense'), null);
  });
  it('target_modules: exact name or dotted suffix; a string is a full-match regex', () => {
    assert.ok(isTarget('bert.encoder.layer.0.attention.output.dense', ['output.dense']));
    assert.ok(!isTarget('bert.encoder.layer.0.attention.output.dense', ['put.dense']));
    assert.ok(isTarget('model.layers.3.self_attn.q_proj', '.*\\.(q|v)_proj'));
    assert.ok(!isTarget('model.layers.3.self_attn.k_proj', '.*\\.(q|v)_proj'));
  });
  it('all-linear excludes the classification head or the LM head only', () => {
    const { model: bert } = loadModel(HF + 'bert');
    assert.ok(!allLinearTargets(bert).includes('classifier') && allLinearTargets(bert).includes('bert.pooler.dense'));
    const { model: llama } = loadModel(HF + 'llama');
    assert.ok(!allLinearTargets(llama).includes('lm_head'));
    assert.equal(allLinearTargets(llama).length, 14);
  });
  it('modules_to_save match by name suffix, as PEFT (DistilBERT\'s pre_classifier ends with "classifier")', () => {
    const { model } = loadModel(HF + 'distilbert');
    assert.deepEqual(resolveLora(model, defaultLoraConfig(model)).modulesToSave.sort(), ['classifier', 'pre_classifier']);
  });
  it('rank 0 leaves a module unadapted; unused pattern keys are reported', () => {
    const { model } = loadModel(HF + 'bert');
    const res = resolveLora(model, defaultLoraConfig(model, { rank_pattern: { 'layer.1.attention.self.query': 0, 'layer.9.*': 4 } }));
    assert.deepEqual(res.skipped, ['bert.encoder.layer.1.attention.self.query']);
    assert.deepEqual(res.unusedPatterns, ['layer.9.*']);
    assert.equal(res.modules.length, 5);
  });
  it('targets that match nothing say what the modules are called', () => {
    const { model } = loadModel(HF + 'llama');
    assert.throws(() => resolveLora(model, defaultLoraConfig(model, { target_modules: ['query'] })), /match no Linear .* named like model\.layers\.0\.self_attn\.q_proj/);
  });
});

describe('LoRA initialisation', () => {
  const setup = (init: boolean | 'gaussian' | 'pissa') => {
    const { model } = loadModel(HF + 'llama');
    const w0 = Float32Array.from(model.params.get('model.layers.0.self_attn.q_proj.weight').data);
    const lm = applyLoraConfig(model, defaultLoraConfig(model, { r: 4, lora_alpha: 8, init_lora_weights: init }), 1);
    return { model, lm, w0, lin: lm.resolution.modules[0].linear };
  };
  it('default: A kaiming-uniform within 1/sqrt(in), B zero, so the model is unchanged', () => {
    const { lin } = setup(true);
    assert.ok(lin.lora!.B.data.every((v) => v === 0));
    assert.ok(lin.lora!.A.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(64)));
    assert.ok(lin.lora!.A.data.some((v) => v !== 0));
  });
  it('gaussian: A ~ N(0, 1/r)', () => {
    const { lin } = setup('gaussian');
    const a = Array.from(lin.lora!.A.data), sd = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    assert.ok(Math.abs(sd - 0.25) < 0.03, `std ${sd}`);
  });
  it('false: B non-zero as well (nn.Linear init)', () => {
    assert.ok(setup(false).lin.lora!.B.data.some((v) => v !== 0));
  });
  it('pissa: residual + scale * B A reproduces W, and B A carries the top singular directions', () => {
    const { lin, w0 } = setup('pissa');
    const { A, B, scale } = lin.lora!, r = 4, inF = 64, outF = 64, W = lin.weight.data;
    let err = 0, deltaNorm = 0;
    for (let i = 0; i < outF; i++) for (let j = 0; j < inF; j++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += B.data[i * r + k] * A.data[k * inF + j];
      err = Math.max(err, Math.abs(W[i * inF + j] + scale * d - w0[i * inF + j]));
      deltaNorm += (scale * d) ** 2;
    }
    assert.ok(err < 1e-5, `reconstruction error ${err}`);
    let total = 0;
    for (const v of w0) total += v * v;
    assert.ok(deltaNorm / total > (4 / 64) * 1.2, 'the top-4 directions carry more than an average share of the energy');
    void Rng;
  });
});

describe('adapter config', () => {
  it('rank and alpha patterns are keyed by full module names', () => {
    const { model } = loadModel(HF + 'bert');
    const lm = loadAdapter(model, HF + 'bert/lora/adapter');
    const j = adapterConfigJson(lm, 'bert');
    assert.equal(j.r, 1);
    assert.ok(Object.keys(j.rank_pattern as object).every((k) => k.startsWith('bert.encoder.layer.')));
    assert.equal((j.target_modules as string[]).length, 18);
  });
});

/** A copy of a fixture model without some head weights (as checkpoints without a classification pooler). */
function withoutWeights(name: string, drop: RegExp): string {
  const d = mkdtempSync(join(tmpdir(), 'gelora-nohead-'));
  copyFileSync(`${HF}${name}/config.json`, join(d, 'config.json'));
  const f = new SafetensorsFile(`${HF}${name}/model.safetensors`);
  const w: Record<string, TensorToWrite> = {};
  for (const n of f.names()) if (!drop.test(n)) w[n] = { shape: f.info(n).shape, data: f.read(n).data };
  f.close();
  writeSafetensors(join(d, 'model.safetensors'), w);
  return d;
}

describe('head weights gelora initialises travel in the adapter (reverse interop with PEFT)', () => {
  for (const [name, pooler] of [['bert', 'bert.pooler.dense'], ['deberta-v2', 'pooler.dense']] as const) {
    it(`${name} without a pooler in the checkpoint: base reloaded with another init seed + the adapter gives identical logits`, () => {
      const base = withoutWeights(name, /pooler/);
      const { model, report } = loadModel(base, { seed: 1 });
      assert.deepEqual(report.initialised, [`${pooler}.weight`, `${pooler}.bias`]);
      const lm = applyLoraConfig(model, defaultLoraConfig(model, { r: 2, init_lora_weights: false }), 3); // B non-zero: a trained-like adapter
      const dir = mkdtempSync(join(tmpdir(), 'gelora-adapter-'));
      saveAdapter(dir, lm, base);
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as { modules_to_save: string[] };
      assert.deepEqual(cfg.modules_to_save, [pooler, 'classifier', 'score'], 'PEFT wraps the pooler as a module to save');
      const f = new SafetensorsFile(join(dir, 'adapter_model.safetensors'));
      assert.ok(f.names().includes(`base_model.model.${pooler}.weight`) && f.names().includes(`base_model.model.${pooler}.bias`));
      f.close();
      const x = fixtureInputs(HF + name);
      const run = (m: typeof model): Float32Array => noGrad(() => scope(() => m.forward(x).logits.toFloat32()));
      const want = run(model);
      const { model: other } = loadModel(base, { seed: 2 });
      assert.ok(maxDiff(run(other), want) > 1e-3, 'another init seed changes the predictions of the bare base (so the test can fail)');
      assert.deepEqual(randomHeadWeights(other), [`${pooler}.weight`, `${pooler}.bias`]);
      loadAdapter(other, dir);
      assert.equal(maxDiff(run(other), want), 0);
      assert.deepEqual(randomHeadWeights(other), [], 'every head weight now comes from the adapter');
    });
  }
  it('an adapter without the initialised pooler: the weights left random are listed (for eval/forward to warn)', () => {
    const { model } = loadModel(withoutWeights('bert', /pooler/));
    loadAdapter(model, HF + 'bert/lora/adapter');
    assert.deepEqual(randomHeadWeights(model), ['bert.pooler.dense.weight', 'bert.pooler.dense.bias']);
    const { model: full } = loadModel(HF + 'bert');
    loadAdapter(full, HF + 'bert/lora/adapter');
    assert.deepEqual(randomHeadWeights(full), []);
  });
  it('a checkpoint with every head weight writes the same adapter as before (PEFT fixture keys only)', () => {
    const { model } = loadModel(HF + 'bert');
    const lm = loadAdapter(model, HF + 'bert/lora/adapter');
    assert.deepEqual(adapterConfigJson(lm, 'bert').modules_to_save, ['classifier', 'score']);
  });
});

describe('damaged adapters are refused naming the tensor and the file', () => {
  const damaged = (key: string, v: number): string => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-bad-adapter-'));
    copyFileSync(HF + 'bert/lora/adapter/adapter_config.json', join(dir, 'adapter_config.json'));
    const f = new SafetensorsFile(HF + 'bert/lora/adapter/adapter_model.safetensors');
    const w: Record<string, TensorToWrite> = {};
    for (const n of f.names()) w[n] = { shape: f.info(n).shape, data: Float32Array.from(f.read(n).data) };
    f.close();
    (w[key].data as Float32Array)[1] = v;
    writeSafetensors(join(dir, 'adapter_model.safetensors'), w, { format: 'pt' });
    return dir;
  };
  for (const [key, v] of [['base_model.model.bert.encoder.layer.1.output.dense.lora_B.weight', NaN], ['base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight', Infinity], ['base_model.model.classifier.weight', -Infinity]] as const) {
    it(`${key.split('.').slice(-3).join('.')} = ${v}`, () => {
      const { model } = loadModel(HF + 'bert');
      const esc = key.replace(/\./g, '\\.');
      assert.throws(() => loadAdapter(model, damaged(key, v)), new RegExp(`adapter_model\\.safetensors: tensor ${esc} holds ${v} at index 1; the adapter is damaged`));
    });
  }
});

describe('AdaLoRA and SoRA adapters carry the head weights the loader initialised', () => {
  for (const method of ['adalora', 'sora'] as const) {
    it(`${method}: the pooler a checkpoint lacks is in modules_to_save and the adapter file`, async () => {
      const { prepareMethod } = await import('../src/train/methods.js');
      const base = withoutWeights('bert', /pooler/);
      const { model } = loadModel(base, { seed: 1 });
      const task = { name: 't', kind: 'classification' as const, labels: ['a', 'b'], train: [], dev: [], metric: 'accuracy' as const, source: {} };
      const prepared = prepareMethod(model, method, { r: 2, alphaRatio: 2, seed: 0, baseModel: base, task, totalSteps: 10, lr: 1e-3, targets: null });
      const out = mkdtempSync(join(tmpdir(), `gelora-${method}-`));
      prepared.save(out);
      const cfg = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as { modules_to_save: string[] };
      assert.ok(cfg.modules_to_save.includes('bert.pooler.dense'), JSON.stringify(cfg.modules_to_save));
      const f = new SafetensorsFile(join(out, 'adapter', 'adapter_model.safetensors'));
      assert.ok(f.names().includes('base_model.model.bert.pooler.dense.weight'), f.names().join(', '));
      f.close();
    });
  }
});
