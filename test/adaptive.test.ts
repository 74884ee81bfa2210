import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as op from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { fromArray, noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import { loadAdapter } from '../src/lora/adapter.js';
import { AdaLoraModel, ADALORA_DEFAULTS, budgetSchedule } from '../src/lora/adalora.js';
import { SoraModel, softThreshold } from '../src/lora/sora.js';
import { loadModel } from '../src/models/load.js';
import { checkOp } from './gradcheck.js';
import { HF, fixtureInputs, maxDiff } from './hf-fixtures.js';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('AdaLoRA', () => {
  const cfg = { ...ADALORA_DEFAULTS, init_r: 12, target_r: 8, tinit: 10, tfinal: 20, deltaT: 5, total_step: 100 };
  it('budget schedule: init budget until tinit, cubic decrease, target budget in the final phase', () => {
    const init = 12 * 10, target = 8 * 10;
    assert.deepEqual(budgetSchedule(cfg, init, target, 10), { budget: 120, mask: false });
    // step 45: mul = 1 - 35/70 = 0.5 -> int(40 * 0.125 + 80) = 85, masked (45 % 5 == 0)
    assert.deepEqual(budgetSchedule(cfg, init, target, 45), { budget: 85, mask: true });
    // step 23: mul = 1 - 13/70 -> int(40 * (57/70)^3 + 80)
    assert.deepEqual(budgetSchedule(cfg, init, target, 23), { budget: Math.trunc(40 * (57 / 70) ** 3 + 80), mask: false });
    assert.deepEqual(budgetSchedule(cfg, init, target, 81), { budget: 80, mask: true });
    for (let s = 11; s <= 80; s++) assert.ok(budgetSchedule(cfg, init, target, s).budget <= budgetSchedule(cfg, init, target, s - 1).budget);
  });

  it('masking sets exactly the k lowest-scoring triplets to zero', () => {
    const { model } = loadModel(HF + 'bert');
    const targets = model.linears().filter((l) => /layer\.0\.attention\.self\.(query|value)$/.test(l.name));
    const ada = new AdaLoraModel(model, { ...cfg, init_r: 4, target_r: 2, total_step: 100 }, targets, 3);
    // known importances: grad = 1/p for A and B (|p * grad| = 1), and for E a distinct value per triplet
    const rng = new Rng(1);
    for (const l of targets) {
      const { A, B, E } = l.lora!;
      A.grad = Float32Array.from(A.data, (v) => 1 / v);
      B.grad = Float32Array.from(B.data, (v) => 1 / v);
      E!.data.set([1, 1, 1, 1]);
      E!.grad = Float32Array.from({ length: 4 }, () => rng.next() * 10);
    }
    // 8 triplets; budget at step 45 (deltaT 5): int((8 - 4) * 0.5^3 + 4) = 4, so 4 are masked
    const budget = ada.updateAndAllocate(45);
    assert.equal(budget, 4);
    const scores = ada.tripletScores();
    const all = [...scores.values()].flatMap((s) => Array.from(s)).sort((a, b) => a - b);
    let masked = 0;
    for (const [l, s] of scores) s.forEach((v, i) => {
      const isMasked = l.lora!.E!.data[i] === 0;
      assert.equal(isMasked, v <= all[3], `${l.name} triplet ${i}`);
      if (isMasked) masked++;
    });
    assert.equal(masked, 4);
    assert.equal(ada.activeTriplets(), 4);
  });

  it('orthogonal regularisation: gradient of ||P P^T - I||_F matches finite differences', () => {
    checkOp(([P]) => {
      const r = P.shape[0], eye = new Float64Array(r * r);
      for (let i = 0; i < r; i++) eye[i * r + i] = 1;
      return op.frobenius(op.sub(op.matmul(P, P, { transB: true }), fromArray(eye, [r, r])));
    }, [{ shape: [3, 5] }]);
    checkOp(([Q]) => op.frobenius(op.sub(op.matmul(Q, Q, { transA: true }), fromArray([1, 0, 0, 1], [2, 2]))), [{ shape: [4, 2] }]);
  });

  it('trained on a fixture task: ends at exactly target_r x matrices active triplets, saved with PEFT AdaLoRA keys and shapes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-ada-'));
    const model = join(dir, 'model');
    mkdirSync(model);
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(`${HF}bert/${f}`, join(model, f));
    copyFileSync(ROOT + 'test/data/tokenizers/wordpiece/vocab.txt', join(model, 'vocab.txt'));
    const words = ['the', 'cat', 'sat', 'on', 'mat', 'a', 'dog', 'ran'], rng = new Rng(4);
    const rows = ['text,label', ...Array.from({ length: 160 }, () => { const t = Array.from({ length: 3 + rng.int(6) }, () => words[rng.int(8)]); return `${t.join(' ')},${t.includes('dog') ? 1 : 0}`; })];
    writeFileSync(join(dir, 'task.csv'), rows.join('\n'));
    const out = join(dir, 'ada');
    const r = spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', 'train', '--model', model, '--train', join(dir, 'task.csv'), '--method', 'adalora', '--r', '2', '--epochs', '3', '--lr', '2e-3', '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const cfgJson = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as { peft_type: string; init_r: number; target_r: number; rank_pattern: Record<string, boolean[]>; tinit: number; tfinal: number; deltaT: number; beta1: number; beta2: number; orth_reg_weight: number; total_step: number };
    assert.equal(cfgJson.peft_type, 'ADALORA');
    for (const k of ['init_r', 'target_r', 'tinit', 'tfinal', 'deltaT', 'beta1', 'beta2', 'orth_reg_weight', 'total_step'] as const) assert.equal(typeof cfgJson[k], 'number', k);
    const patterns = Object.entries(cfgJson.rank_pattern);
    assert.equal(patterns.length, 18);
    assert.equal(patterns.reduce((s, [, v]) => s + v.filter(Boolean).length, 0), cfgJson.target_r * 18);
    const f = new SafetensorsFile(join(out, 'adapter', 'adapter_model.safetensors'));
    for (const [key, keep] of patterns) {
      const mod = key.replace(/\.lora_E$/, ''), n = keep.filter(Boolean).length;
      const [inF, outF] = mod.endsWith('intermediate.dense') ? [32, 64] : mod.endsWith('output.dense') && !mod.includes('attention') ? [64, 32] : [32, 32];
      assert.deepEqual(f.info(`base_model.model.${mod}.lora_A`).shape, [n, inF]);
      assert.deepEqual(f.info(`base_model.model.${mod}.lora_E`).shape, [n, 1]);
      assert.deepEqual(f.info(`base_model.model.${mod}.lora_B`).shape, [outF, n]);
    }
    assert.ok(f.tensors.has('base_model.model.classifier.weight'));
    f.close();
  });
});

describe('SoRA', () => {
  it('proximal step: soft-thresholding by lambda', () => {
    const g = Float64Array.from([0.5, -0.05, 0.25, -0.375, 0.125, -0.125]);
    softThreshold(g, 0.125);
    assert.deepEqual(Array.from(g), [0.375, 0, 0.125, -0.25, 0, 0]);
  });

  it('gates update with SparseAdamW, and the exported plain-LoRA adapter reproduces the gated model\'s logits', () => {
    const { model } = loadModel(HF + 'bert');
    const targets = model.linears().filter((l) => model.blockOf(l.name) !== null);
    const sora = new SoraModel(targets, { r: 4, lora_alpha: 8, lora_dropout: 0, sparse_lambda: 0.5, lr: 0.1, weight_decay: 0 }, 2);
    const rng = new Rng(9);
    for (const l of targets) rng.fillNormal(l.lora!.B.data, 0.1); // as after some training
    for (const g of sora.gates()) g.grad = new Float32Array(g.size);
    sora.updateGates(0.1); // zero gradients: only the threshold acts, so gates below 0.5 die
    const ranks = sora.ranks();
    assert.ok(ranks.some((r) => r < 4) && ranks.some((r) => r > 0), `ranks ${ranks}`);
    const x = fixtureInputs(HF + 'bert');
    const gated = noGrad(() => scope(() => model.forward(x).logits.toFloat32()));
    // export as a plain LoRA adapter folder and load it into a fresh model
    const dir = mkdtempSync(join(tmpdir(), 'gelora-sora-'));
    const exp = sora.exportLora(2);
    assert.deepEqual(exp.modules.map((m) => m.r), ranks.filter((r) => r > 0));
    const { model: fresh } = loadModel(HF + 'bert');
    const head = ['classifier.weight', 'classifier.bias'].map((n) => [`base_model.model.${n}`, { shape: [...model.params.get(n).shape], data: Float32Array.from(model.params.get(n).data) }]);
    writeSafetensors(join(dir, 'adapter_model.safetensors'), Object.fromEntries([...exp.modules.flatMap((m) => [
      [`base_model.model.${m.name}.lora_A.weight`, { shape: [m.r, m.inF], data: m.A }], [`base_model.model.${m.name}.lora_B.weight`, { shape: [m.outF, m.r], data: m.B }]]), ...head]), { format: 'pt' });
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({
      peft_type: 'LORA', task_type: 'SEQ_CLS', r: 1, lora_alpha: 2, target_modules: exp.modules.map((m) => m.name),
      rank_pattern: Object.fromEntries(exp.modules.map((m) => [m.name, m.r])), alpha_pattern: Object.fromEntries(exp.modules.map((m) => [m.name, m.alpha])),
    }));
    loadAdapter(fresh, dir);
    const plain = noGrad(() => scope(() => fresh.forward(x).logits.toFloat32()));
    assert.ok(maxDiff(plain, gated) < 1e-5, `exported LoRA differs by ${maxDiff(plain, gated)}`);
  });
});
