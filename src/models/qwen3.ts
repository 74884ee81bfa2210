/**
 * Qwen3 (transformers' Qwen3ForCausalLM / Qwen3ForSequenceClassification): the Llama-like decoder
 * with RMSNorm over each head's queries and keys (self_attn.q_norm / k_norm, size head_dim, before
 * rope) and an explicit head_dim that need not be hidden_size / num_attention_heads (Qwen3-0.6B:
 * 1024 hidden, 16 heads of 128). No q/k/v biases unless attention_bias. Sliding layers as in Qwen2.
 */
import { DecoderModel, commonShape, ropeFromParams, ropeParams, decoderFamily } from './decoder.js';
import { qwenLayerWindows } from './qwen2.js';
import type { HfConfig, ModelTask } from './model.js';

export class Qwen3Model extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, headDim, layers } = commonShape(config);
    const rope = ropeFromParams(ropeParams(config), headDim), bias = r.bool('attention_bias', false);
    super(config, {
      type: 'qwen3', fusedQkv: false, qkvBias: bias, oBias: bias, qkNorm: true, fusedGateUp: false, mlpBias: false,
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim: headDim,
      layers: qwenLayerWindows(config, r, layers).map((w) => ({ window: w, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}

export const QWEN3_FAMILY = decoderFamily('qwen3', ['q_proj', 'v_proj'], (c, task) => new Qwen3Model(c, task));
