import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { createModel, loadModel } from '../src/models/load.js';
import { FAMILIES, MODEL_TYPES, familyFor } from '../src/models/registry.js';
import { standardModules } from '../src/gelora/analyze.js';
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

describe('architecture registry', () => {
  it('every family builds from its tiny config; its block pattern finds every block Linear; module names renumber', () => {
    for (const f of FAMILIES) {
      const m = createModel(f.tinyConfig);
      assert.equal(m.type, f.modelTypes[0]);
      assert.equal(familyFor(m.type), f);
      const inBlocks = m.linears().filter((l) => m.blockOf(l.name) !== null);
      assert.ok(inBlocks.length > 0, `${m.type}: no Linear inside a block`);
      assert.ok(inBlocks.every((l) => f.blockPattern.test(l.name)), m.type);
      for (const t of f.loraTargets) assert.ok(m.linears().some((l) => l.name.endsWith(`.${t}`)), `${m.type}: default LoRA target ${t} names no module`);
      const mods = standardModules(m.type, 3);
      assert.equal(mods.length, 3 * inBlocks.length);
      assert.ok(mods.filter((x) => x.block === 3).every((x) => f.blockPattern.exec(x.name)![1] === '2'), `${m.type}: block 3 is index 2`);
    }
    assert.deepEqual([...MODEL_TYPES], ['bert', 'roberta', 'distilbert', 'deberta-v2', 'gpt2', 'llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma3_text']);
  });
  it('standard module names match the real checkpoints\' (llama, gpt2, deberta-v2)', () => {
    for (const t of ['llama', 'gpt2', 'deberta-v2']) {
      const { model } = loadModel(HF + t);
      const real = model.linears().filter((l) => model.blockOf(l.name) !== null).map((l) => l.name);
      assert.deepEqual(standardModules(t, model.numLayers).map((m) => m.name), real);
    }
  });
});

describe('bad config.json values are errors naming config.json', () => {
  const withConfig = (name: string, change: (c: Record<string, unknown>) => void): string => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-cfg-'));
    copyFileSync(`${HF}${name}/model.safetensors`, join(d, 'model.safetensors'));
    const c = JSON.parse(readFileSync(`${HF}${name}/config.json`, 'utf8')) as Record<string, unknown>;
    change(c);
    writeFileSync(join(d, 'config.json'), JSON.stringify(c));
    return d;
  };
  const cases: [string, string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['llama', 'negative rope_theta', (c) => { c.rope_theta = -1; delete c.rope_parameters; }, /config\.json: "rope_theta" must be a positive number, got -1/],
    ['llama', 'non-numeric rope_theta in rope_parameters', (c) => { c.rope_parameters = { rope_type: 'default', rope_theta: 'abc' }; }, /config\.json: "rope_parameters\.rope_theta" must be a positive number, got "abc"/],
    ['llama', 'negative rms_norm_eps', (c) => { c.rms_norm_eps = -1e-6; }, /config\.json: "rms_norm_eps" must be a positive number/],
    ['bert', 'non-numeric layer_norm_eps', (c) => { c.layer_norm_eps = 'small'; }, /config\.json: "layer_norm_eps" must be a positive number, got "small"/],
    ['gpt2', 'zero layer_norm_epsilon', (c) => { c.layer_norm_epsilon = 0; }, /config\.json: "layer_norm_epsilon" must be a positive number/],
    ['bert', 'hidden_size not a multiple of the heads', (c) => { c.num_attention_heads = 5; }, /config\.json: "hidden_size" 32 is not a multiple of "num_attention_heads" 5/],
    ['gpt2', 'n_embd not a multiple of n_head', (c) => { c.n_head = 3; }, /config\.json: "n_embd" \d+ is not a multiple of "n_head" 3/],
    ['llama', 'heads not a multiple of key/value heads', (c) => { c.num_key_value_heads = 3; }, /config\.json: "num_attention_heads" \d+ is not a multiple of "num_key_value_heads" 3/],
    ['bert', 'a negative size', (c) => { c.intermediate_size = -64; }, /config\.json: "intermediate_size" must be a positive integer, got -64/],
    ['bert', 'an absurd vocabulary', (c) => { c.vocab_size = 1e12; }, /config\.json: the sizes it gives .*vocabulary 1000000000000\) need at least/],
    ['bert', 'an absurd position table', (c) => { c.max_position_embeddings = 1e11; }, /config\.json: the sizes it gives cannot be built: weight bert\.embeddings\.position_embeddings\.weight would have shape \[100000000000,32\], 3200000000000 values, more than 2\^31 - 1/],
    ['llama', 'a model larger than memory', (c) => { c.num_hidden_layers = 1e6; }, /config\.json: the sizes it gives \(1000000 layers, hidden 64, intermediate 128, vocabulary 1000\) need at least \d+\.\d GiB/],
  ];
  for (const [name, what, change, re] of cases) it(`${name}: ${what}`, () => assert.throws(() => loadModel(withConfig(name, change)), re));
});

describe('no NaN passes silently: non-finite hidden states and logits name the layer', () => {
  const huge = (name: string, tensor: string): string => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-huge-'));
    copyFileSync(`${HF}${name}/config.json`, join(d, 'config.json'));
    const f = new SafetensorsFile(`${HF}${name}/model.safetensors`);
    const w: Record<string, TensorToWrite> = {};
    for (const n of f.names()) w[n] = { shape: f.info(n).shape, data: Float32Array.from(f.read(n).data) };
    f.close();
    w[tensor].data = (w[tensor].data as Float32Array).map(() => 3e38); // finite, but overflows in a product
    writeSafetensors(join(d, 'model.safetensors'), w);
    return d;
  };
  const run = (d: string, keepHidden = true) => {
    const { model } = loadModel(d);
    return noGrad(() => scope(() => { model.forward(fixtureInputs(HF + 'bert'), { keepHidden }); }));
  };
  it('a block whose weights overflow: the error names hidden_states.2 and bert.encoder.layer.1 (with or without keepHidden)', () => {
    const d = huge('bert', 'bert.encoder.layer.1.intermediate.dense.weight');
    assert.throws(() => run(d), /hidden_states\.2 \(output of bert\.encoder\.layer\.1\) holds (NaN|-?Infinity)/);
    assert.throws(() => run(d, false), /hidden_states\.2 \(output of bert\.encoder\.layer\.1\)/);
  });
  it('overflowing embeddings name hidden_states.0; an overflowing head names the logits', () => {
    assert.throws(() => run(huge('bert', 'bert.embeddings.word_embeddings.weight')), /hidden_states\.0 \(the embedding output\) holds/);
    assert.throws(() => run(huge('bert', 'classifier.weight')), /^Error: logits holds/);
  });
  it('a decoder: the final norm state is checked as hidden_states.L', () => {
    const { model } = loadModel(huge('llama', 'model.layers.1.mlp.down_proj.weight'));
    const x = fixtureInputs(HF + 'llama');
    assert.throws(() => noGrad(() => scope(() => { model.forward(x); })), /hidden_states\.2 \(output of model\.layers\.1\)/);
  });
});

describe('halfWeights (the default): BF16/F16 checkpoint weights kept as half, outputs identical to widening them', () => {
  const HF_LLM = new URL('../../test/data/hf-llm/', import.meta.url).pathname;
  const run = (dir: string, inputsDir: string, opts: Parameters<typeof loadModel>[1]) => {
    const { model } = loadModel(dir, opts);
    const x = fixtureInputs(inputsDir);
    const out = noGrad(() => scope(() => {
      const o = model.forward(x);
      return { hidden: o.hiddenStates.map((h) => h.toFloat32()), logits: o.logits.toFloat32() };
    }));
    return { model, out };
  };
  const check = (dir: string, inputsDir: string, weightsFile: string | undefined, dtype: 'bf16' | 'f16', halfDtype: string): void => {
    const base = run(dir, inputsDir, { ...(weightsFile ? { weightsFile } : {}), halfWeights: false });
    const half = run(dir, inputsDir, weightsFile ? { weightsFile } : {}); // half by default
    assert.equal(half.out.hidden.length, base.out.hidden.length);
    half.out.hidden.forEach((h, i) => assert.deepEqual(h, base.out.hidden[i], `hidden_states.${i} differs`));
    assert.deepEqual(half.out.logits, base.out.logits, 'logits differ');
    // every weight the checkpoint stores as half reports that dtype (2 bytes a value); with halfWeights false all are f32
    const f = new SafetensorsFile(join(dir, weightsFile ?? 'model.safetensors'));
    const stored = new Set(f.names().filter((n) => f.info(n).dtype === halfDtype));
    f.close();
    let n = 0;
    for (const [name, t] of half.model.params.byName) {
      assert.equal(base.model.params.get(name).dtype, 'f32', name);
      if (stored.has(name) || stored.has(name.slice(half.model.backbonePrefix.length + 1))) {
        assert.equal(t.dtype, dtype, name);
        assert.equal(t.storageBytes, 2 * t.size, `${name}: 16-bit storage only`);
        n++;
      }
    }
    assert.ok(n > 0 && n >= stored.size - 4, `${n} of ${stored.size} half tensors kept as ${dtype}`);
  };
  it('bert bf16', () => check(HF + 'bert', HF + 'bert', 'model.bf16.safetensors', 'bf16', 'BF16'));
  it('bert f16', () => check(HF + 'bert', HF + 'bert', 'model.fp16.safetensors', 'f16', 'F16'));
  for (const fam of ['llama3', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma3']) {
    it(`${fam} bf16`, () => check(`${HF_LLM}${fam}/bf16`, HF_LLM + fam, undefined, 'bf16', 'BF16'));
  }
  it('gpt2 bf16 (Conv1D weights transposed as 16-bit values)', () => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-half-'));
    try {
      copyFileSync(`${HF}gpt2/config.json`, join(d, 'config.json'));
      const f = new SafetensorsFile(`${HF}gpt2/model.safetensors`);
      const out: Record<string, TensorToWrite> = {};
      for (const n of f.names()) out[n] = { shape: f.info(n).shape, data: f.read(n).data, dtype: f.info(n).dtype === 'F32' ? 'BF16' : undefined };
      f.close();
      writeSafetensors(join(d, 'model.safetensors'), out);
      check(d, HF + 'gpt2', undefined, 'bf16', 'BF16');
      const { model } = loadModel(d, { halfWeights: true });
      assert.ok([...model.params.transposed].some((n) => model.params.get(n).dtype === 'bf16'), 'a transposed Conv1D weight kept as bf16');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
