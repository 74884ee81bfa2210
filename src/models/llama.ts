/**
 * LLaMA family (transformers' LlamaForCausalLM / LlamaForSequenceClassification, Llama 2 and 3.x):
 * the plain Llama-like decoder of decoder.ts. Quirks: optional attention_bias / mlp_bias; rope
 * parameters from `rope_parameters` (transformers 5) or top-level rope_theta / rope_scaling (older
 * configs), rope types default, linear and llama3 (Llama 3.1+'s wavelength-dependent scaling);
 * tie_word_embeddings (Llama 3.2 1B/3B tie the LM head to the embeddings).
 */
import { DecoderModel, commonShape, ropeFromParams, ropeParams, decoderFamily } from './decoder.js';
import type { HfConfig, ModelTask } from './model.js';

export class LlamaModel extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, headDim, layers } = commonShape(config);
    const bias = r.bool('attention_bias', false), rope = ropeFromParams(ropeParams(config), headDim);
    super(config, {
      type: 'llama', fusedQkv: false, qkvBias: bias, oBias: bias, qkNorm: false, fusedGateUp: false, mlpBias: r.bool('mlp_bias', false),
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim: headDim,
      layers: Array.from({ length: layers }, () => ({ window: null, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}

export const LLAMA_FAMILY = decoderFamily('llama', ['q_proj', 'v_proj'], (c, task) => new LlamaModel(c, task));
