/**
 * Phi-3 (transformers' Phi3ForCausalLM / Phi3ForSequenceClassification): the Llama-like decoder with
 * fused projections under PEFT's module names: self_attn.qkv_proj (output q | k | v, heads*d +
 * 2*kv_heads*d) and mlp.gate_up_proj (output gate | up, 2*intermediate; transformers' chunk(2)),
 * so LoRA targets qkv_proj, gate_up_proj, o_proj, down_proj. partial_rotary_factor rotates only the
 * first part of each head (Phi-4-mini: 0.75). Sliding-window attention on every layer when
 * sliding_window is set (Phi-3-mini-4k: 2047). Rope scaling "longrope" (the 128k models) is not
 * supported yet and is refused by name.
 */
import { DecoderModel, commonShape, ropeFromParams, ropeParams, decoderFamily } from './decoder.js';
import type { HfConfig, ModelTask } from './model.js';

export class Phi3Model extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, headDim, layers } = commonShape(config);
    const rp = ropeParams(config);
    const partial = Number(rp.partial_rotary_factor ?? config.partial_rotary_factor ?? 1);
    const rotaryDim = Math.floor(headDim * partial);
    const rope = ropeFromParams(rp, rotaryDim);
    const window = config.sliding_window === null || config.sliding_window === undefined ? null : r.int('sliding_window');
    super(config, {
      type: 'phi3', fusedQkv: true, qkvBias: false, oBias: false, qkNorm: false, fusedGateUp: true, mlpBias: false,
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim,
      layers: Array.from({ length: layers }, () => ({ window, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['qkv_proj'],
    }, task);
  }
}

export const PHI3_FAMILY = decoderFamily('phi3', ['qkv_proj'], (c, task) => new Phi3Model(c, task));
