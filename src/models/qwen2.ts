/**
 * Qwen2 / Qwen2.5 (transformers' Qwen2ForCausalLM / Qwen2ForSequenceClassification): the Llama-like
 * decoder with biases on q_proj, k_proj and v_proj (none on o_proj or the MLP). Sliding-window
 * attention only where config.layer_types says sliding_attention (transformers derives those from
 * use_sliding_window and max_window_layers; sliding_window is null when use_sliding_window is false).
 */
import { DecoderModel, commonShape, layerWindows, ropeFromParams, ropeParams, decoderFamily } from './decoder.js';
import type { ConfigReader, HfConfig, ModelTask } from './model.js';

/** Sliding window per layer, Qwen2/Qwen3's way: layer_types, else sliding from max_window_layers on when use_sliding_window. */
export function qwenLayerWindows(config: HfConfig, r: ConfigReader, layers: number): (number | null)[] {
  const window = r.bool('use_sliding_window', false) ? r.int('sliding_window') : null;
  const types = Array.isArray(config.layer_types) ? config.layer_types
    : Array.from({ length: layers }, (_, i) => (window !== null && i >= r.int('max_window_layers', layers) ? 'sliding_attention' : 'full_attention'));
  return layerWindows({ ...config, layer_types: types }, layers, window);
}

export class Qwen2Model extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, headDim, layers } = commonShape(config);
    const rope = ropeFromParams(ropeParams(config), headDim);
    super(config, {
      type: 'qwen2', fusedQkv: false, qkvBias: true, oBias: false, qkNorm: false, fusedGateUp: false, mlpBias: false,
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim: headDim,
      layers: qwenLayerWindows(config, r, layers).map((w) => ({ window: w, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}

export const QWEN2_FAMILY = decoderFamily('qwen2', ['q_proj', 'v_proj'], (c, task) => new Qwen2Model(c, task));
