import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noGrad, scope } from '../src/engine/tensor.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { loadModel } from '../src/models/load.js';
import { fixtureInputs, maxDiff } from './hf-fixtures.js';

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
