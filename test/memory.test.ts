import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { kernels } from '../src/engine/backend.js';
import { bf16Available } from '../src/engine/backends/dnnl.js';
import { crossEntropy, setHalfSlicing } from '../src/engine/ops.js';
import { applyPrecision, bf16Operand, setMatmulPrecision } from '../src/engine/precision.js';
import { Rng } from '../src/engine/random.js';
import { backward, noGrad, poolStats, resetPoolPeak, scope, type Tensor } from '../src/engine/tensor.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig, mergeAll } from '../src/lora/lora.js';
import { createModel, loadModel } from '../src/models/load.js';
import type { HfConfig, Model, ModelInputs } from '../src/models/model.js';
import { readConfig } from '../src/models/registry.js';
import { DEFAULT_TRAIN, train } from '../src/train/loop.js';
import { prepareMethod } from '../src/train/methods.js';
import { causalLmObjective, evaluateLm, IGNORE_INDEX, type LmEncoded } from '../src/train/objectives/causal-lm.js';
import { HF, fixtureInputs, maxDiff } from './hf-fixtures.js';

const LLM = new URL('../../test/data/hf-llm/', import.meta.url).pathname;
const BF16 = LLM + 'llama3/bf16', F32 = LLM + 'llama3';
const support = bf16Available();
const native = kernels().name === 'native';

/** Every hidden state and the logits of a forward, as host arrays. */
const outputs = (model: Model, x: ModelInputs): Float32Array[] => noGrad(() => scope(() => {
  const o = model.forward(x);
  return [...o.hiddenStates.map((h) => h.toFloat32()), o.logits.toFloat32()];
}));

/** The bytes held by a model's weights, tied weights counted once. */
const weightBytes = (model: Model): number => {
  const byStorage = new Map<unknown, number>();
  for (const t of model.params.byName.values()) byStorage.set(t.storage, t.storageBytes);
  return [...byStorage.values()].reduce((a, b) => a + b, 0);
};

/** Next-token labels over the unpadded tokens. */
function nextTokenLabels(x: ModelInputs): Int32Array {
  const labels = new Int32Array(x.batch * x.seq).fill(-100);
  for (let b = 0; b < x.batch; b++) for (let t = 0; t + 1 < x.seq; t++) {
    if (x.attentionMask[b * x.seq + t + 1]) labels[b * x.seq + t] = x.inputIds[b * x.seq + t + 1];
  }
  return labels;
}

describe('memory: half-precision checkpoints stay half precision', () => {
  it('building a model allocates no weight memory (a 21M-parameter llama: 84 MB if its f32 zeros were allocated)', () => {
    const c = { ...readConfig(F32), hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 64, vocab_size: 8000 } as HfConfig;
    const before = process.memoryUsage().arrayBuffers;
    const model = createModel(c);
    const grew = process.memoryUsage().arrayBuffers - before;
    const values = [...model.params.byName.values()].reduce((s, t) => s + t.size, 0);
    assert.ok(values > 20e6, `${values} values`);
    assert.equal(weightBytes(model), 0, 'no weight holds memory before it is loaded or used');
    assert.ok(grew < 4 * 2 ** 20, `createModel grew ArrayBuffers by ${grew} bytes`);
    // a weight that is used gets its zeros then (a head the loader initialises, a weight read)
    const t = model.params.get('model.norm.weight');
    assert.deepEqual(t.toFloat32(), new Float32Array(512));
    assert.equal(t.storageBytes, 512 * 4);
  });

  it('a bf16 checkpoint loads as bf16 by default: 2 bytes a weight, exactly the file\'s tensor bytes, outputs match the golden (1e-4)', () => {
    const { model, report } = loadModel(BF16);
    assert.deepEqual(report.dtypes, ['BF16']);
    for (const [name, t] of model.params.byName) {
      assert.equal(t.dtype, 'bf16', name);
      assert.equal(t.storageBytes, 2 * t.size, name);
    }
    const f = new SafetensorsFile(join(BF16, 'model.safetensors'));
    const fileBytes = f.names().reduce((s, n) => s + f.info(n).end - f.info(n).begin, 0);
    f.close();
    assert.equal(weightBytes(model), fileBytes, 'the weights hold the checkpoint\'s bytes and nothing more (tied head shares the embedding)');
    const exp = new SafetensorsFile(join(BF16, 'expected.safetensors'));
    try {
      const out = outputs(model, fixtureInputs(F32));
      out.forEach((o, i) => {
        const want = exp.read(i < out.length - 1 ? `hidden_states.${i}` : 'logits').data;
        assert.ok(maxDiff(o, want) <= 1e-4, `output ${i}: ${maxDiff(o, want)}`);
      });
    } finally { exp.close(); }
    // and still half after the forward: no op widened a weight in place
    for (const [name, t] of model.params.byName) assert.equal(t.storageBytes, 2 * t.size, name);
    assert.ok(weightBytes(loadModel(BF16, { halfWeights: false }).model) === 2 * fileBytes, 'halfWeights false: f32');
  });

  it('a half weight larger than the whole-widening limit is multiplied slice by slice: no f32 copy of it, same outputs to rounding', () => {
    // a tiny llama with a vocab-sized head: 50000 x 64 bf16 (12.8 MB if widened to f32)
    const dir = mkdtempSync(join(tmpdir(), 'gelora-mem-'));
    try {
      const c = { ...readConfig(F32), vocab_size: 50000 } as HfConfig;
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
      const rng = new Rng(3), tensors: Record<string, TensorToWrite> = {};
      for (const [name, t] of createModel(c).params.byName) {
        if (name === 'lm_head.weight') continue; // tied
        const data = new Float32Array(t.size);
        if (t.ndim === 1) data.fill(1); else rng.fillNormal(data, 0.05);
        tensors[name] = { shape: [...t.shape], data, dtype: 'BF16' };
      }
      writeSafetensors(join(dir, 'model.safetensors'), tensors);
      const { model } = loadModel(dir);
      const head = model.params.get('model.embed_tokens.weight');
      assert.equal(head.dtype, 'bf16');
      const x: ModelInputs = { inputIds: Int32Array.of(1, 4000, 49999, 7), attentionMask: new Float32Array(4).fill(1), batch: 1, seq: 4 };
      const peakOf = (fn: () => Float32Array[]): { peak: number; out: Float32Array[] } => {
        resetPoolPeak();
        const base = poolStats().live, out = fn();
        return { peak: poolStats().peak - base, out };
      };
      const whole = peakOf(() => outputs(model, x));
      const f32Head = head.size * 4;
      assert.ok(whole.peak >= f32Head, `widened whole: ${whole.peak} bytes at the peak (the f32 head is ${f32Head})`);
      const prev = setHalfSlicing(1 << 16, 1 << 12);
      try {
        const sliced = peakOf(() => outputs(model, x));
        assert.ok(sliced.peak < f32Head / 2, `sliced: ${sliced.peak} bytes at the peak, the f32 head is ${f32Head}`);
        sliced.out.forEach((o, i) => assert.ok(maxDiff(o, whole.out[i]) <= 1e-5, `output ${i}: ${maxDiff(o, whole.out[i])}`));
      } finally { setHalfSlicing(...prev); }
      // the analysis skips a causal LM's head: its logits output is the last hidden state
      const noHead = noGrad(() => scope(() => { const o = model.forward(x, { logits: false }); return { shape: o.logits.shape, last: o.logits.toFloat32() }; }));
      assert.deepEqual(noHead.shape, [1, 4, 64]);
      assert.deepEqual(noHead.last, whole.out[model.numLayers]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('LoRA on a half checkpoint: the base stays bf16, gradients equal an f32 load\'s bit for bit (sliced: to rounding), training lowers the loss', () => {
    const x = fixtureInputs(F32), labels = nextTokenLabels(x);
    const grads = (halfWeights: boolean): { model: Model; g: Float32Array[] } => {
      const { model } = loadModel(BF16, { halfWeights });
      const lm = applyLoraConfig(model, defaultLoraConfig(model, { r: 2, lora_alpha: 4, init_lora_weights: false }), 3);
      scope(() => backward(crossEntropy(model.forward(x, { keepHidden: false }).logits, labels)));
      return { model, g: lm.trainable.map((t: Tensor) => Float32Array.from(t.grad!)) };
    };
    const half = grads(true), full = grads(false);
    assert.ok(half.g.length > 0);
    half.g.forEach((g, i) => assert.deepEqual(g, full.g[i], `gradient ${i}`));
    for (const l of half.model.linears()) assert.equal(l.weight.dtype, 'bf16', l.name);
    const prev = setHalfSlicing(0, 64); // every weight sliced, 1 row at a time
    try {
      const sliced = grads(true);
      sliced.g.forEach((g, i) => assert.ok(maxDiff(g, full.g[i]) <= 1e-5, `sliced gradient ${i}: ${maxDiff(g, full.g[i])}`));
    } finally { setHalfSlicing(...prev); }
    // a short training run through the loop
    const rows = (n: number, seed: number): LmEncoded[] => Array.from({ length: n }, (_, i) => {
      const a = 10 + ((i * 7 + seed) % 40), ids = [1, a, a + 1, a + 2, a + 1, a + 2];
      return { ids, labels: ids.map((v, t) => (t < 3 ? IGNORE_INDEX : v)) };
    });
    const { model } = loadModel(BF16, { seed: 0 });
    const prepared = prepareMethod(model, 'lora', { r: 4, baseModel: BF16, seed: 0, saved: { info: { kind: 'causal-lm' } } });
    const objective = causalLmObjective({ train: rows(24, 0), dev: rows(8, 3), padId: 0, batchSize: 8, seed: 0 });
    const dev = rows(8, 3), before = evaluateLm(model, dev, 0, 8).loss;
    const dir = mkdtempSync(join(tmpdir(), 'gelora-mem-lora-'));
    try {
      train({ model, params: prepared.params, objective, config: { ...DEFAULT_TRAIN, epochs: 6, lr: 5e-3, warmupRatio: 0, batchSize: 8 }, outDir: dir, hooks: prepared.hooks });
    } finally { rmSync(dir, { recursive: true, force: true }); }
    const after = evaluateLm(model, dev, 0, 8).loss;
    assert.ok(after < before - 0.1, `dev loss ${before} -> ${after}`);
    for (const [name, t] of model.params.byName) assert.equal(t.dtype, 'bf16', `${name} stayed frozen and bf16`);
  });

  it('trained or written weights are widened to f32, those only: full fine-tuning, modules_to_save (a tied head takes its embedding along), merging', () => {
    const { model: full } = loadModel(BF16);
    prepareMethod(full, 'full', { baseModel: BF16, saved: { info: { kind: 'causal-lm' } } });
    for (const [name, t] of full.params.byName) assert.equal(t.dtype, 'f32', `full fine-tuning: ${name}`);
    const { model: f32 } = loadModel(BF16, { halfWeights: false });
    assert.deepEqual(full.params.get('model.layers.0.mlp.up_proj.weight').toFloat32(), f32.params.get('model.layers.0.mlp.up_proj.weight').toFloat32(), 'the exact upcast');

    const { model } = loadModel(BF16);
    applyLoraConfig(model, defaultLoraConfig(model, { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], modules_to_save: ['lm_head'], init_lora_weights: false }), 1);
    assert.equal(model.params.get('lm_head.weight').dtype, 'f32');
    assert.equal(model.params.get('model.embed_tokens.weight').dtype, 'f32', 'tied to lm_head: the same storage');
    assert.equal(model.params.get('model.layers.0.mlp.up_proj.weight').dtype, 'bf16');
    const x = fixtureInputs(F32), before = outputs(model, x);
    mergeAll(model);
    for (const l of model.linears()) assert.equal(l.weight.dtype, /\.(q|v)_proj$/.test(l.name) || l.name === 'lm_head' ? 'f32' : 'bf16', l.name);
    const after = outputs(model, x);
    assert.ok(maxDiff(after[after.length - 1], before[before.length - 1]) <= 1e-4, `merged logits moved by ${maxDiff(after[after.length - 1], before[before.length - 1])}`);
  });

  it('--precision bf16 with half weights: bf16 ones go to oneDNN as loaded (a bf16 head keeps fp32 products); f16 ones are rounded to bf16 once, the bits an f32 load gave', { skip: (!support.available && support.reason) || (!native && 'js backend') }, () => {
    const x = fixtureInputs(F32);
    const { model } = loadModel(BF16);
    const fp32 = outputs(model, x);
    try {
      const info = applyPrecision(model, 'bf16', () => {});
      assert.equal(info.precision, 'bf16');
      assert.equal(info.converted_weights, 0, 'already bf16: nothing to convert');
      assert.equal(info.bf16_weights, model.linears().length - 1, 'the block Linears');
      // the tied LM head is stored bf16 but, a head, keeps its products fp32 as an f32 head does
      assert.equal(bf16Operand(model.linears().find((l) => l.name === 'lm_head')!.weight), null);
      assert.ok(bf16Operand(model.linears()[0].weight) !== null);
      const bf = outputs(model, x);
      const d = maxDiff(bf[bf.length - 1], fp32[fp32.length - 1]);
      assert.ok(d > 0 && d < 0.1, `bf16 logits differ from fp32 by ${d}`);
      // f16 (the embedded model's dtype): converted once, exactly as when it was loaded as f32
      const bx = fixtureInputs(HF + 'bert'), opts = { weightsFile: 'model.fp16.safetensors' };
      const { model: f16 } = loadModel(HF + 'bert', opts), { model: wide } = loadModel(HF + 'bert', { ...opts, halfWeights: false });
      const blocks = f16.linears().filter((l) => f16.blockOf(l.name) !== null);
      assert.ok(blocks.every((l) => l.weight.dtype === 'f16'));
      const i16 = applyPrecision(f16, 'bf16', () => {}), i32 = applyPrecision(wide, 'bf16', () => {});
      assert.equal(i16.precision, 'bf16');
      assert.equal(i16.converted_weights, blocks.length);
      assert.equal(i32.converted_weights, blocks.length);
      blocks.forEach((l) => assert.deepEqual(l.weight.toFloat32(), wide.params.get(l.weight.name).toFloat32(), l.name));
      outputs(f16, bx).forEach((o, i) => assert.deepEqual(o, outputs(wide, bx)[i], `output ${i}`));
    } finally { setMatmulPrecision('fp32'); }
  });

  it('the checkpoint is read a tensor at a time into the weights\' own storage (safetensors readInto)', () => {
    const f = new SafetensorsFile(join(BF16, 'model.safetensors'));
    try {
      const name = 'model.layers.0.mlp.up_proj.weight', info = f.info(name);
      const bits = new Uint16Array((info.end - info.begin) / 2);
      f.readInto(name, bits);
      assert.deepEqual(Buffer.from(bits.buffer), f.readBytes(name));
      assert.throws(() => f.readInto(name, new Uint16Array(3)), /holds \d+ bytes, not 6/);
      assert.ok(statSync(join(BF16, 'model.safetensors')).size > info.end);
    } finally { f.close(); }
  });
});

describe('streamed hidden states (Model.forward onHidden)', () => {
  for (const [name, dir] of [['llama3 (final norm)', F32], ['bert', HF + 'bert'], ['gpt2 (final norm)', HF + 'gpt2']] as const) {
    it(`${name}: the same states as keepHidden, in order, each released after the next block`, () => {
      const { model } = loadModel(dir);
      const x = fixtureInputs(dir);
      const kept = outputs(model, x).slice(0, model.numLayers + 1);
      const seen: number[] = [], streamed: Float32Array[] = [], tensors: Tensor[] = [];
      noGrad(() => scope(() => {
        const o = model.forward(x, { onHidden: (k, h) => { seen.push(k); streamed.push(h.toFloat32()); tensors.push(h); } });
        assert.equal(o.hiddenStates.length, 0);
        // every state but the last is given back to the pool before the forward returns
        assert.deepEqual(tensors.map((t) => t.released), tensors.map((_, k) => k < model.numLayers));
      }));
      assert.deepEqual(seen, [...Array(model.numLayers + 1).keys()]);
      streamed.forEach((s, k) => assert.deepEqual(s, kept[k], `hidden_states.${k}`));
    });
  }
});
