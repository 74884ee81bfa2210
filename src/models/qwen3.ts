/**
 * Qwen3 (transformers' Qwen3ForCausalLM / Qwen3ForSequenceClassification): the Llama-like decoder
 * with RMSNorm over each head's queries and keys (self_attn.q_norm / k_norm, size head_dim, before
 * rope) and an explicit head_dim that need not be hidden_size / num_attention_heads (Qwen3-0.6B:
 * 1024 hidden, 16 heads of 128). No q/k/v biases unless attention_bias. Sliding layers as in Qwen2.
 */
import { DecoderModel, commonShape, layerWindows, ropeFromParams, ropeParams } from './decoder.js';
import type { HfConfig, Task } from './model.js';

export class Qwen3Model extends DecoderModel {
  constructor(config: HfConfig, task?: Task) {
    const { r, headDim, layers } = commonShape(config);
    const rope = ropeFromParams(ropeParams(config), headDim), bias = r.bool('attention_bias', false);
    const window = r.bool('use_sliding_window', false) ? r.int('sliding_window') : null;
    const types = Array.isArray(config.layer_types) ? config.layer_types
      : Array.from({ length: layers }, (_, i) => (window !== null && i >= r.int('max_window_layers', layers) ? 'sliding_attention' : 'full_attention'));
    super(config, {
      type: 'qwen3', fusedQkv: false, qkvBias: bias, oBias: bias, qkNorm: true, fusedGateUp: false, mlpBias: false,
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim: headDim,
      layers: layerWindows({ ...config, layer_types: types }, layers, window).map((w) => ({ window: w, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}
