import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { loadModel } from '../src/models/load.js';
import type { ModelInputs } from '../src/models/model.js';

export const HF = new URL('../../test/data/hf/', import.meta.url).pathname;

export function fixtureInputs(dir: string): ModelInputs {
  const j = JSON.parse(readFileSync(dir + '/inputs.json', 'utf8')) as { input_ids: number[][]; attention_mask: number[][] };
  const B = j.input_ids.length, T = j.input_ids[0].length;
  return { inputIds: Int32Array.from(j.input_ids.flat()), attentionMask: Float32Array.from(j.attention_mask.flat()), batch: B, seq: T };
}

/** max |a - b| over all positions, or only over unmasked token rows when mask and hidden size are given */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, mask?: ArrayLike<number>, H = 1): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) if (!mask || mask[Math.floor(i / H)]) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

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
