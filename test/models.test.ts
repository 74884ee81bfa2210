import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { loadModel } from '../src/models/load.js';
import { HF, fixtureInputs, maxDiff } from './hf-fixtures.js';

function compare(name: string, weights = 'model.safetensors', expectedFile = 'expected.safetensors'): void {
  const dir = HF + name;
  const { model } = loadModel(dir, weights === 'model.safetensors' ? {} : { weightsFile: weights });
  const x = fixtureInputs(dir);
  const exp = new SafetensorsFile(`${dir}/${expectedFile}`);
  const out = noGrad(() => scope(() => {
    const o = model.forward(x);
    return { hidden: o.hiddenStates.map((h) => h.toFloat32()), logits: o.logits.toFloat32() };
  }));
  assert.equal(out.hidden.length, model.numLayers + 1);
  out.hidden.forEach((h, i) => {
    const d = maxDiff(h, exp.read(`hidden_states.${i}`).data);
    assert.ok(d <= 1e-4, `${name} hidden_states.${i}: max abs diff ${d.toExponential(2)}`);
  });
  const d = maxDiff(out.logits, exp.read('logits').data);
  assert.ok(d <= 1e-4, `${name} logits: max abs diff ${d.toExponential(2)}`);
  exp.close();
}

describe('forward matches Hugging Face transformers (every hidden state and the logits, 1e-4)', () => {
  for (const m of ['bert', 'roberta', 'distilbert', 'deberta-v2', 'gpt2', 'llama']) it(m, () => compare(m));
  it('bert from fp16 weights', () => compare('bert', 'model.fp16.safetensors', 'expected.fp16.safetensors'));
  it('bert from bf16 weights', () => compare('bert', 'model.bf16.safetensors', 'expected.bf16.safetensors'));
});

describe('loading errors name the file and what is wrong', () => {
  const copyModel = (name: string): string => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-model-'));
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(`${HF}${name}/${f}`, join(d, f));
    return d;
  };
  const weights = (d: string): Record<string, TensorToWrite> => {
    const f = new SafetensorsFile(join(d, 'model.safetensors'));
    const out: Record<string, TensorToWrite> = {};
    for (const n of f.names()) out[n] = { shape: f.info(n).shape, data: f.read(n).data };
    f.close();
    return out;
  };

  it('unsupported model_type lists the supported ones', () => {
    const d = copyModel('bert');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 't5' }));
    assert.throws(() => loadModel(d), /config\.json: model_type "t5" is not supported; supported: bert, roberta, distilbert, deberta-v2, gpt2, llama/);
  });
  it('missing config field', () => {
    const d = copyModel('bert');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'bert', vocab_size: 1000 }));
    assert.throws(() => loadModel(d), /config\.json: missing "hidden_size"/);
  });
  it('a truncated checkpoint', () => {
    const d = copyModel('bert'), f = join(d, 'model.safetensors');
    writeFileSync(f, readFileSync(f).subarray(0, 20000));
    assert.throws(() => loadModel(d), /model\.safetensors: tensor ".*" ends at byte \d+ past the \d+-byte data section \(truncated\?\)/);
  });
  it('missing backbone weights are listed', () => {
    const d = copyModel('bert'), w = weights(d);
    delete w['bert.encoder.layer.1.attention.self.key.weight'];
    delete w['bert.encoder.layer.2.output.dense.bias'];
    writeSafetensors(join(d, 'model.safetensors'), w);
    assert.throws(() => loadModel(d), /missing weights \(2\): bert\.encoder\.layer\.1\.attention\.self\.key\.weight, bert\.encoder\.layer\.2\.output\.dense\.bias/);
  });
  it('unexpected backbone weights are listed', () => {
    const d = copyModel('bert'), w = weights(d);
    w['bert.encoder.layer.3.output.dense.bias'] = { shape: [32], data: new Float32Array(32) };
    writeSafetensors(join(d, 'model.safetensors'), w);
    assert.throws(() => loadModel(d), /unexpected weights \(1\), does config\.json describe this checkpoint\? bert\.encoder\.layer\.3\.output\.dense\.bias/);
  });
  it('shape mismatch against config.json', () => {
    const d = copyModel('bert');
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...c, intermediate_size: 48 }));
    assert.throws(() => loadModel(d), /bert\.encoder\.layer\.0\.intermediate\.dense\.weight: \[64,32\] in .*model\.safetensors, but config\.json implies \[48,32\]/);
  });
  it('a missing classification head is initialised and reported; other heads are ignored and reported', () => {
    const d = copyModel('bert'), w = weights(d);
    delete w['classifier.weight']; delete w['classifier.bias'];
    w['cls.predictions.bias'] = { shape: [1000], data: new Float32Array(1000) };
    writeSafetensors(join(d, 'model.safetensors'), w);
    const { report } = loadModel(d);
    assert.deepEqual(report.initialised, ['classifier.weight', 'classifier.bias']);
    assert.deepEqual(report.ignored, ['cls.predictions.bias']);
  });
  it('a bare backbone checkpoint (no prefix) loads', () => {
    const d = copyModel('bert'), w = weights(d);
    const bare: Record<string, TensorToWrite> = {};
    for (const [n, t] of Object.entries(w)) bare[n.replace(/^bert\./, '')] = t;
    writeSafetensors(join(d, 'model.safetensors'), bare);
    const { model } = loadModel(d);
    const x = fixtureInputs(HF + 'bert');
    const exp = new SafetensorsFile(HF + 'bert/expected.safetensors');
    const h = noGrad(() => scope(() => model.forward(x).hiddenStates[3].toFloat32()));
    assert.ok(maxDiff(h, exp.read('hidden_states.3').data) < 1e-4);
    exp.close();
  });
  it('a missing weights file says how to get one', () => {
    const d = copyModel('bert');
    rmSync(join(d, 'model.safetensors'));
    assert.throws(() => loadModel(d), /no model\.safetensors or model\.safetensors\.index\.json/);
  });
});
