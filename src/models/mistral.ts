/**
 * Mistral (transformers' MistralForCausalLM / MistralForSequenceClassification): the Llama-like
 * decoder without biases, head_dim from the config (null means hidden / heads), untied LM head, and
 * sliding-window attention on every layer when sliding_window is set (Mistral-7B-v0.1: 4096; the
 * window only changes anything for sequences longer than it).
 */
import { DecoderModel, commonShape, ropeFromParams, ropeParams, decoderFamily } from './decoder.js';
import type { HfConfig, ModelTask } from './model.js';

export class MistralModel extends DecoderModel {
  constructor(config: HfConfig, task?: ModelTask) {
    const { r, headDim, layers } = commonShape(config);
    const rope = ropeFromParams(ropeParams(config), headDim);
    const window = config.sliding_window === null || config.sliding_window === undefined ? null : r.int('sliding_window');
    super(config, {
      type: 'mistral', fusedQkv: false, qkvBias: false, oBias: false, qkNorm: false, fusedGateUp: false, mlpBias: false,
      normPlusOne: false, sandwichNorms: false, embedScale: null, attnScale: 1 / Math.sqrt(headDim), rotaryDim: headDim,
      layers: Array.from({ length: layers }, () => ({ window, rope })),
      act: r.str('hidden_act', 'silu'), finalLogitSoftcap: null, tieDefault: false, defaultLoraTargets: ['q_proj', 'v_proj'],
    }, task);
  }
}

export const MISTRAL_FAMILY = decoderFamily('mistral', ['q_proj', 'v_proj'], (c, task) => new MistralModel(c, task));
