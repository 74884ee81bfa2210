import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crossEntropy } from '../src/engine/ops.js';
import { backward, noGrad, scope, type Tensor } from '../src/engine/tensor.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig } from '../src/lora/lora.js';
import { loadAdapter } from '../src/lora/adapter.js';
import { Checkpoint, SafetensorsFile } from '../src/io/safetensors.js';
import { DecoderModel } from '../src/models/decoder.js';
import { Rng } from '../src/engine/random.js';
import { generate, pickToken, readGenerationConfig } from '../src/models/generation.js';
import { loadModel } from '../src/models/load.js';
import type { Model, ModelInputs } from '../src/models/model.js';
import { readConfig } from '../src/models/registry.js';
import { TextTokenizer, wordPieceTokenizerJson } from '../src/io/tokenizer.js';
import { HF, fixtureInputs, maxDiff } from './hf-fixtures.js';

export const HF_LLM = new URL('../../test/data/hf-llm/', import.meta.url).pathname;
const FAMILIES = ['llama3', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma3'];

/** Every hidden state and the logits against transformers' (all positions, padding included). */
function compare(modelDir: string, expectedDir = modelDir): number {
  const { model } = loadModel(modelDir);
  const x = fixtureInputs(expectedDir.replace(/\/(bf16|sharded)$/, ''));
  const exp = new SafetensorsFile(`${expectedDir}/expected.safetensors`);
  try {
    const out = noGrad(() => scope(() => {
      const o = model.forward(x);
      return { hidden: o.hiddenStates.map((h) => h.toFloat32()), logits: o.logits.toFloat32() };
    }));
    assert.equal(out.hidden.length, model.numLayers + 1);
    let worst = 0;
    out.hidden.forEach((h, i) => {
      const d = maxDiff(h, exp.read(`hidden_states.${i}`).data);
      assert.ok(d <= 1e-4, `${modelDir} hidden_states.${i}: max abs diff ${d.toExponential(2)}`);
      worst = Math.max(worst, d);
    });
    const e = exp.read('logits');
    assert.deepEqual(out.logits.length, e.data.length);
    const d = maxDiff(out.logits, e.data);
    assert.ok(d <= 1e-4, `${modelDir} logits: max abs diff ${d.toExponential(2)}`);
    return Math.max(worst, d);
  } finally {
    exp.close();
  }
}

describe('decoder LLM families match transformers (every hidden state and the logits, 1e-4)', () => {
  for (const f of FAMILIES) {
    it(`${f} fp32`, () => { compare(HF_LLM + f); });
    it(`${f} bf16 weights`, () => { compare(`${HF_LLM}${f}/bf16`); });
    it(`${f} sharded (model.safetensors.index.json)`, () => { compare(`${HF_LLM}${f}/sharded`, HF_LLM + f); });
  }
  it('qwen2-seqcls: the score head reads the last non-pad token', () => {
    const { model } = loadModel(HF_LLM + 'qwen2-seqcls');
    assert.equal(model.task, 'seq-cls');
    compare(HF_LLM + 'qwen2-seqcls');
  });
});

describe('sharded checkpoints: the index is validated', () => {
  const shardedCopy = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-shards-'));
    for (const f of readdirSync(`${HF_LLM}llama3/sharded`)) copyFileSync(`${HF_LLM}llama3/sharded/${f}`, join(d, f));
    return d;
  };
  const editIndex = (d: string, edit: (m: Record<string, unknown>) => void): void => {
    const p = join(d, 'model.safetensors.index.json'), j = JSON.parse(readFileSync(p, 'utf8')) as { weight_map: Record<string, unknown> };
    edit(j.weight_map);
    writeFileSync(p, JSON.stringify(j));
  };
  it('reads every tensor of transformers\' five shards through the index', () => {
    const c = new Checkpoint(`${HF_LLM}llama3/sharded`), single = new SafetensorsFile(`${HF_LLM}llama3/model.safetensors`);
    try {
      assert.deepEqual(c.names().sort(), single.names().sort());
      assert.equal(new Set(c.names().map((n) => c.info(n).file)).size, 5);
      for (const n of single.names()) assert.deepEqual(c.read(n).data, single.read(n).data, n);
    } finally { c.close(); single.close(); }
  });
  it('a non-string entry is an error naming model.safetensors.index.json and the tensor', () => {
    const d = shardedCopy();
    try {
      editIndex(d, (m) => { m['model.norm.weight'] = 3; });
      assert.throws(() => loadModel(d), /model\.safetensors\.index\.json: weight_map entry "model\.norm\.weight" is 3, not a shard file name/);
    } finally { rmSync(d, { recursive: true }); }
  });
  it('a missing shard is an error naming the index and the shard', () => {
    const d = shardedCopy();
    try {
      rmSync(join(d, 'model-00004-of-00005.safetensors'));
      assert.throws(() => loadModel(d), /model\.safetensors\.index\.json: lists shard model-00004-of-00005\.safetensors \(for [^)]+\), which is missing/);
    } finally { rmSync(d, { recursive: true }); }
  });
  it('an entry outside the folder, a missing weight_map and a tensor the shard lacks are errors', () => {
    const d = shardedCopy();
    try {
      editIndex(d, (m) => { m['model.norm.weight'] = '../model-00001-of-00005.safetensors'; });
      assert.throws(() => new Checkpoint(d), /index\.json: weight_map entry "model\.norm\.weight" names "\.\.\/model-00001-of-00005\.safetensors", which is not a file in the checkpoint folder/);
      editIndex(d, (m) => { m['model.norm.weight'] = 'model-00001-of-00005.safetensors'; m['model.extra.weight'] = 'model-00002-of-00005.safetensors'; });
      assert.throws(() => new Checkpoint(d), /index\.json says model\.(norm|extra)\.weight is in model-0000[12]-of-00005\.safetensors, but that shard does not hold it/);
      writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {} }));
      assert.throws(() => new Checkpoint(d), /index\.json: has no "weight_map" object/);
      writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": ');
      assert.throws(() => new Checkpoint(d), /index\.json: not a valid shard index/);
    } finally { rmSync(d, { recursive: true }); }
  });
});

describe('generation_config.json', () => {
  it('is read with config.json and transformers\' defaults behind it', () => {
    const dir = HF_LLM + 'llama3', g = readGenerationConfig(dir, readConfig(dir));
    assert.equal(g.file, join(dir, 'generation_config.json'));
    assert.deepEqual([g.bosTokenId, g.eosTokenIds, g.padTokenId], [1, [2], 0]);
    assert.deepEqual([g.doSample, g.temperature, g.topK, g.topP, g.maxNewTokens], [false, 1, 50, 1, null]);
  });
  it('a list of eos ids, sampling fields, no file, bad values', () => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-gen-'));
    try {
      const config = readConfig(HF_LLM + 'llama3');
      assert.deepEqual(readGenerationConfig(d, config).eosTokenIds, [2], 'falls back to config.json');
      assert.equal(readGenerationConfig(d, config).file, null);
      writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: [128001, 128008, 128009], do_sample: true, temperature: 0.6, top_p: 0.9, max_new_tokens: 64 }));
      const g = readGenerationConfig(d, config);
      assert.deepEqual([g.eosTokenIds, g.doSample, g.temperature, g.topP, g.topK, g.maxNewTokens, g.bosTokenId], [[128001, 128008, 128009], true, 0.6, 0.9, 50, 64, 1]);
      writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ eos_token_id: ['</s>'] }));
      assert.throws(() => readGenerationConfig(d, config), /generation_config\.json: "eos_token_id" must be a token id/);
      writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ top_p: 1.5 }));
      assert.throws(() => readGenerationConfig(d, config), /generation_config\.json: "top_p" must be in \(0, 1\], got 1\.5/);
      writeFileSync(join(d, 'generation_config.json'), '{');
      assert.throws(() => readGenerationConfig(d, config), /generation_config\.json: not valid JSON/);
    } finally { rmSync(d, { recursive: true }); }
  });
});

const PEFT_NAMES: Record<string, string[]> = {
  llama3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen2: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  mistral: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  phi3: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
  gemma3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
};

describe('every family: PEFT module names, sequence classification, LoRA gradients', () => {
  for (const f of FAMILIES) {
    it(`${f}: Linears under PEFT's names, blocks 1..L`, () => {
      const { model } = loadModel(HF_LLM + f);
      const mods = (l: string): string => (/^(q|k|v|o|qkv)_proj$/.test(l) ? `self_attn.${l}` : `mlp.${l}`);
      const want = [0, 1].flatMap((i) => PEFT_NAMES[f].map((n) => `model.layers.${i}.${mods(n)}`));
      const got = model.linears().map((l) => l.name);
      assert.deepEqual(got.slice(0, -1).sort(), want.sort());
      assert.equal(got[got.length - 1], 'lm_head');
      assert.equal(model.blockOf('model.layers.1.self_attn.o_proj'), 2);
      assert.equal(model.blockOf('lm_head'), null);
    });
    it(`${f}: seq-cls reads the last non-pad token through a score head`, () => {
      const { model, report } = loadModel(HF_LLM + f, { task: 'seq-cls', numLabels: 3, seed: 1 });
      assert.deepEqual(report.initialised, ['score.weight']);
      assert.ok(report.ignored.includes('lm_head.weight') || readConfig(HF_LLM + f).tie_word_embeddings === true);
      const { model: lm } = loadModel(HF_LLM + f);
      const x = fixtureInputs(HF_LLM + f);
      const [cls, last] = noGrad(() => scope(() => [model.forward(x).logits.toFloat32(), lm.forward(x).hiddenStates[lm.numLayers].toFloat32()]));
      // logits = score(h_last at the last non-pad token), by hand from the causal model's final hidden state
      const W = model.params.get('score.weight').data, H = model.hiddenSize, lens = [13, 8, 5];
      for (let b = 0; b < 3; b++) for (let k = 0; k < 3; k++) {
        let s = 0;
        for (let j = 0; j < H; j++) s += W[k * H + j] * last[(b * x.seq + lens[b] - 1) * H + j];
        assert.ok(Math.abs(s - cls[b * 3 + k]) < 1e-4, `${f} row ${b} label ${k}: ${cls[b * 3 + k]} vs ${s}`);
      }
    });
  }
  for (const f of ['gemma3', 'phi3', 'qwen3']) {
    it(`${f}: LoRA gradients through the whole decoder match finite differences`, () => {
      const { model } = loadModel(HF_LLM + f);
      const targets = f === 'phi3' ? ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'down_proj'];
      const lm = applyLoraConfig(model, defaultLoraConfig(model, { r: 2, lora_alpha: 4, target_modules: targets, init_lora_weights: false }), 3);
      checkLoraGrads(model, lm.trainable, fixtureInputs(HF_LLM + f));
    });
  }
});

/** Next-token loss over the unpadded tokens (the causal-LM objective), analytic gradients against central differences. */
function checkLoraGrads(model: Model, trainable: Tensor[], x: ModelInputs): void {
  const labels = new Int32Array(x.batch * x.seq).fill(-100);
  for (let b = 0; b < x.batch; b++) for (let t = 0; t + 1 < x.seq; t++) {
    if (x.attentionMask[b * x.seq + t + 1]) labels[b * x.seq + t] = x.inputIds[b * x.seq + t + 1];
  }
  const loss = (): number => noGrad(() => scope(() => crossEntropy(model.forward(x, { keepHidden: false }).logits, labels).item()));
  scope(() => backward(crossEntropy(model.forward(x, { keepHidden: false }).logits, labels)));
  let checked = 0;
  for (const t of trainable.filter((_, i) => i % 5 === 0)) {
    const g = t.grad!;
    let gmax = 0;
    for (let i = 0; i < g.length; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    for (const i of [0, Math.floor(t.size / 2), t.size - 1]) {
      const keep = t.data[i], h = 1e-2;
      t.data[i] = keep + h; const fp = loss();
      t.data[i] = keep - h; const fm = loss();
      t.data[i] = keep;
      const num = (fp - fm) / (2 * h);
      assert.ok(Math.abs(num - g[i]) <= 2e-2 * gmax + 2e-4, `${t.name}[${i}]: analytic ${g[i]} vs finite difference ${num}`);
      checked++;
    }
  }
  assert.ok(checked >= 6);
}

describe('generation with a KV cache', () => {
  for (const f of FAMILIES) {
    it(`${f}: cached steps give the full forward's logits at every new position (gemma3 past its window of 8)`, () => {
      const { model } = loadModel(HF_LLM + f);
      assert.ok(model instanceof DecoderModel);
      const x = fixtureInputs(HF_LLM + f), prompt = Array.from(x.inputIds.subarray(0, 5));
      const res = generate(model, prompt, { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 8, eosTokenIds: [] });
      assert.equal(res.tokens.length, 8);
      assert.equal(res.stop, 'length');
      // the same sequence in one uncached pass: logits at positions 4..11 must agree, and greedy picks their argmax
      const seq = [...prompt, ...res.tokens], T = seq.length, V = model.outputSize;
      const full = noGrad(() => scope(() => model.forward({ inputIds: Int32Array.from(seq), attentionMask: new Float32Array(T).fill(1), batch: 1, seq: T }, { keepHidden: false }).logits.toFloat32()));
      const cache = model.newCache();
      const stepped = noGrad(() => scope(() => [model.step(Int32Array.from(prompt), cache).toFloat32(),
        ...res.tokens.slice(0, -1).map((id) => model.step(Int32Array.of(id), cache).toFloat32())]));
      const flat = new Float32Array(stepped.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of stepped) { flat.set(p, at); at += p.length; }
      assert.ok(maxDiff(flat, full.subarray(0, (T - 1) * V)) <= 1e-4, `${f}: cached vs full logits ${maxDiff(flat, full.subarray(0, (T - 1) * V)).toExponential(2)}`);
      for (let i = 0; i < 8; i++) assert.equal(res.tokens[i], pickToken(full.subarray((4 + i) * V, (5 + i) * V), { doSample: false, temperature: 1, topK: 0, topP: 1 }, new Rng(0)));
    });
  }
  it('stops on an eos id; sampling is seeded and honours top-k / top-p', () => {
    const { model } = loadModel(HF_LLM + 'llama3');
    assert.ok(model instanceof DecoderModel);
    const greedy = generate(model, [1, 502, 54], { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 5, eosTokenIds: [] });
    const stopped = generate(model, [1, 502, 54], { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 5, eosTokenIds: [greedy.tokens[1]] });
    assert.deepEqual([stopped.tokens, stopped.stop], [greedy.tokens.slice(0, greedy.tokens.indexOf(greedy.tokens[1]) + 1), 'eos']);
    const opts = { doSample: true, temperature: 0.8, topK: 20, topP: 0.9, maxNewTokens: 6, eosTokenIds: [], seed: 5 };
    assert.deepEqual(generate(model, [1, 502, 54], opts).tokens, generate(model, [1, 502, 54], opts).tokens);
    const logits = Float32Array.from({ length: 10 }, (_, j) => j); // token 9 most likely
    const rng = new Rng(1), seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(pickToken(logits, { doSample: true, temperature: 1, topK: 3, topP: 1 }, rng));
    assert.deepEqual([...seen].sort(), [7, 8, 9]);
    seen.clear();
    // softmax of 0..9: p(9) = 0.632, p(8) = 0.233: top_p 0.8 keeps exactly 9 and 8
    for (let i = 0; i < 200; i++) seen.add(pickToken(logits, { doSample: true, temperature: 1, topK: 0, topP: 0.8 }, rng));
    assert.deepEqual([...seen].sort(), [8, 9]);
  });
});

describe('gelora generate', () => {
  it('greedy text from a sharded checkpoint, the ids of the library call, tokens per second reported', () => {
    const d = mkdtempSync(join(tmpdir(), 'gelora-generate-'));
    try {
      for (const f of readdirSync(`${HF_LLM}llama3/sharded`)) copyFileSync(`${HF_LLM}llama3/sharded/${f}`, join(d, f));
      copyFileSync(`${HF_LLM}llama3/generation_config.json`, join(d, 'generation_config.json'));
      // a 1000-word WordPiece vocabulary to give the random model a tokenizer of its vocabulary size
      const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...Array.from({ length: 995 }, (_, i) => `w${i}`)];
      writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(words, {})));
      const root = new URL('../../', import.meta.url).pathname;
      const r = spawnSync(process.execPath, [root + 'dist/src/cli/main.js', 'generate', '--model', d, '--prompt', 'w7 w300 w12', '--max-new-tokens', '6', '--json'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { tokens: number[]; stop: string; prompt_tokens: number; tokens_per_second: number; text: string };
      const { model } = loadModel(d);
      assert.ok(model instanceof DecoderModel);
      const ids = TextTokenizer.fromDir(d).encode('w7 w300 w12').ids;
      assert.deepEqual(ids, [2, 12, 305, 17, 3]);
      const lib = generate(model, ids, { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, eosTokenIds: [2] });
      assert.deepEqual([out.tokens, out.stop, out.prompt_tokens], [lib.tokens, lib.stop, 5]);
      assert.ok(out.tokens_per_second === null || out.tokens_per_second > 0);
      assert.match(r.stderr, /tokens \(stop: (eos|length)\), prompt 5 tokens in [\d.]+ s, ([\d.]+|n\/a) tokens\/s after the first/);
      const bad = spawnSync(process.execPath, [root + 'dist/src/cli/main.js', 'generate', '--model', HF + 'bert', '--prompt', 'x'], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /model_type bert is not a decoder with KV-cached generation/);
    } finally { rmSync(d, { recursive: true }); }
  });
});

describe('config quirks: sliding layers and rope per layer kind', () => {
  const base = { vocab_size: 8, hidden_size: 8, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 8 };
  it('qwen2 without layer_types: sliding from max_window_layers on, only with use_sliding_window', async () => {
    const { createModel } = await import('../src/models/load.js');
    const m = createModel({ model_type: 'qwen2', ...base, use_sliding_window: true, sliding_window: 4, max_window_layers: 1 }) as DecoderModel;
    assert.deepEqual(m.spec.layers.map((l) => l.window), [null, 4, 4]);
    const off = createModel({ model_type: 'qwen2', ...base, use_sliding_window: false, sliding_window: 4, max_window_layers: 1 }) as DecoderModel;
    assert.deepEqual(off.spec.layers.map((l) => l.window), [null, null, null]);
  });
  it('gemma3 older configs: sliding_window_pattern, rope_local_base_freq for sliding layers, rope_theta for full ones', async () => {
    const { createModel } = await import('../src/models/load.js');
    const m = createModel({ model_type: 'gemma3_text', ...base, head_dim: 4, sliding_window: 5, sliding_window_pattern: 3, rope_theta: 1e6, rope_local_base_freq: 1e4 }) as DecoderModel;
    assert.deepEqual(m.spec.layers.map((l) => l.window), [5, 5, null]);
    // inv_freq[1] = 1 / theta^(2/4)
    assert.ok(Math.abs(m.spec.layers[0].rope.invFreq[1] - 1e-2) < 1e-9);
    assert.ok(Math.abs(m.spec.layers[2].rope.invFreq[1] - 1e-3) < 1e-9);
    assert.throws(() => createModel({ model_type: 'gemma3_text', ...base, attn_logit_softcapping: 50 }), /attn_logit_softcapping 50 is not supported/);
    assert.throws(() => createModel({ model_type: 'llama', ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }), /rope type "yarn" is not supported \(default, linear, llama3\)/);
  });
});

describe('generation with a PEFT CAUSAL_LM adapter', () => {
  it('the adapted llama3 matches peft (hidden states, logits), and gelora generate --adapter decodes with it', () => {
    const dir = `${HF_LLM}llama3/lora-causal`;
    const { model } = loadModel(HF_LLM + 'llama3');
    assert.ok(model instanceof DecoderModel);
    loadAdapter(model, `${dir}/adapter`);
    const x = fixtureInputs(dir), exp = new SafetensorsFile(`${dir}/expected.safetensors`);
    try {
      const out = noGrad(() => scope(() => { const o = model.forward(x); return { h: o.hiddenStates.map((t) => t.toFloat32()), l: o.logits.toFloat32() }; }));
      out.h.forEach((h, i) => assert.ok(maxDiff(h, exp.read(`hidden_states.${i}`).data) <= 1e-4, `hidden_states.${i}`));
      assert.ok(maxDiff(out.l, exp.read('logits').data) <= 1e-4, 'logits');
    } finally { exp.close(); }
    const d = mkdtempSync(join(tmpdir(), 'gelora-generate-'));
    try {
      for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) copyFileSync(`${HF_LLM}llama3/${f}`, join(d, f));
      const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...Array.from({ length: 995 }, (_, i) => `w${i}`)];
      writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(words, {})));
      const root = new URL('../../', import.meta.url).pathname;
      const run = (...extra: string[]) => spawnSync(process.execPath, [root + 'dist/src/cli/main.js', 'generate', '--model', d, '--prompt', 'w40 w41', '--max-new-tokens', '8', '--json', ...extra], { encoding: 'utf8' });
      const withA = run('--adapter', `${dir}/adapter`), without = run();
      assert.equal(withA.status, 0, withA.stderr);
      const ids = TextTokenizer.fromDir(d).encode('w40 w41').ids;
      const lib = generate(model, ids, { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 8, eosTokenIds: [2] });
      assert.deepEqual((JSON.parse(withA.stdout) as { tokens: number[] }).tokens, lib.tokens);
      assert.notDeepEqual((JSON.parse(without.stdout) as { tokens: number[] }).tokens, lib.tokens, 'the adapter changes what is generated');
      const both = run('--sample', '--greedy');
      assert.notEqual(both.status, 0);
      assert.match(both.stderr, /give --sample or --greedy, not both/);
    } finally { rmSync(d, { recursive: true }); }
  });
});
