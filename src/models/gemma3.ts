/**
 * Gemma 3 text (transformers' Gemma3ForCausalLM, model_type gemma3_text): the Llama-like decoder with
 * Gemma's quirks, all named in the spec below:
 * - embeddings multiplied by sqrt(hidden_size), cast to the weights' dtype (float32 here);
 * - RMSNorm scaled by (1 + w), weights stored around 0;
 * - sandwich norms: post_attention_layernorm on the attention output before the residual add,
 *   pre_feedforward_layernorm / post_feedforward_layernorm around the MLP;
 * - q_norm / k_norm per head before rope;
 * - scores scaled by query_pre_attn_scalar^-0.5 instead of head_dim^-0.5;
 * - layer_types: sliding_attention layers (window sliding_window) and full_attention layers, each
 *   kind with its own rope: rope_parameters.{sliding_attention, full_attention} (transformers 5), or
 *   rope_local_base_freq for sliding layers and rope_theta + rope_scaling for full layers (older
 *   configs), whose layer pattern comes from sliding_window_pattern (every 6th layer full);
 * - final_logit_softcapping when set. attn_logit_softcapping (Gemma 2) is refused.
 */
import { DecoderModel, commonShape, layerWindows, ropeFromParams, type RopeSpec, decoderFamily } from './decoder.js';
import type { HfConfig, ModelTask } from './model.js';

export class Gemma3Model extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, h, headDim, layers } = commonShape(config);
    if (config.attn_logit_softcapping !== null && config.attn_logit_softcapping !== undefined) {
      throw new Error(`config.json: attn_logit_softcapping ${JSON.stringify(config.attn_logit_softcapping)} is not supported (Gemma 3 checkpoints leave it null)`);
    }
    const pattern = r.int('sliding_window_pattern', r.int('_sliding_window_pattern', 6));
    const types = Array.isArray(config.layer_types) ? config.layer_types
      : Array.from({ length: layers }, (_, i) => ((i + 1) % pattern ? 'sliding_attention' : 'full_attention'));
    const rp = (config.rope_parameters ?? null) as Record<string, Record<string, unknown>> | null;
    let ropes: Record<string, RopeSpec>;
    if (rp && typeof rp === 'object' && (rp.full_attention || rp.sliding_attention)) {
      ropes = {
        full_attention: ropeFromParams(rp.full_attention ?? {}, headDim),
        sliding_attention: ropeFromParams(rp.sliding_attention ?? {}, headDim),
      };
    } else {
      const scaling = (config.rope_scaling ?? {}) as Record<string, unknown>;
      ropes = {
        full_attention: ropeFromParams({ rope_theta: config.rope_theta ?? 1e6, ...scaling }, headDim),
        sliding_attention: ropeFromParams({ rope_theta: config.rope_local_base_freq ?? 1e4 }, headDim),
      };
    }
    const windows = layerWindows({ ...config, layer_types: types }, layers, r.int('sliding_window', 4096));
    const cap = config.final_logit_softcapping === null || config.final_logit_softcapping === undefined ? null : r.num('final_logit_softcapping');
    super(config, {
      type: 'gemma3_text', fusedQkv: false, qkvBias: r.bool('attention_bias', false), oBias: r.bool('attention_bias', false), qkNorm: true,
      fusedGateUp: false, mlpBias: false, normPlusOne: true, sandwichNorms: true, embedScale: Math.fround(Math.sqrt(h)),
      attnScale: 1 / Math.sqrt(r.num('query_pre_attn_scalar', headDim)), rotaryDim: headDim,
      layers: windows.map((w) => ({ window: w, rope: w === null ? ropes.full_attention : ropes.sliding_attention })),
      act: r.str('hidden_activation', r.str('hidden_act', 'gelu_pytorch_tanh')), finalLogitSoftcap: cap, tieDefault: true,
      defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}

export const GEMMA3_FAMILY = decoderFamily('gemma3_text', ['q_proj', 'v_proj'], (c, task) => new Gemma3Model(c, task));
