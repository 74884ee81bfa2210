/**
 * Python PEFT's conventions, in one place: the key prefix and file names of an adapter folder, the head
 * modules PEFT trains in full per task type, and the LoraConfig fields with PEFT's defaults and meaning
 * (peft 0.18, src/peft/tuners/lora/config.py; the field comments paraphrase its docstring). Everything
 * that reads or writes an adapter, resolves a LoraConfig or counts trainable parameters takes these
 * names from here.
 */

/** Tensors in adapter_model.safetensors are keyed base_model.model.<module path>.<param> (adapter name removed). */
export const PEFT_PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** the pickle file older peft versions wrote; we do not read it */
export const ADAPTER_PICKLE_FILE = 'adapter_model.bin';
/** peft version whose adapter_config.json keys we write */
export const PEFT_VERSION = '0.18.1';

export type PeftTaskType = 'SEQ_CLS' | 'CAUSAL_LM' | 'QUESTION_ANS' | 'TOKEN_CLS';

/**
 * The head modules PEFT's task models add to modules_to_save themselves (PeftModelForSequenceClassification
 * and ...TokenClassification: classifier, score; ...QuestionAnswering: qa_outputs; causal LM: none).
 * A module matches when its path ends with an entry, so DistilBERT's pre_classifier is one too.
 */
export const TASK_HEAD_MODULES: Readonly<Record<PeftTaskType, readonly string[]>> = {
  SEQ_CLS: ['classifier', 'score'],
  TOKEN_CLS: ['classifier', 'score'],
  QUESTION_ANS: ['qa_outputs'],
  CAUSAL_LM: [],
};

/** Every head module name PEFT knows (the union over task types). */
export const HEAD_MODULE_NAMES: readonly string[] = [...new Set(Object.values(TASK_HEAD_MODULES).flat())];

/** The output layer "all-linear" leaves out (PEFT's _maybe_include_all_linear_layers). */
export const LM_HEAD = 'lm_head';

/** PEFT's head modules for a task type (empty for an unknown one). */
export function taskHeadModules(task: string | null | undefined): string[] {
  return task && task in TASK_HEAD_MODULES ? [...TASK_HEAD_MODULES[task as PeftTaskType]] : [];
}

/**
 * modules_to_save as PEFT resolves it: the user's entries, then the task's head modules appended (which
 * is why peft 0.18 writes ["classifier", "classifier", "score"] for a user's ["classifier"]).
 */
export function withTaskHeads(userModules: readonly string[] | null, task: string | null | undefined): string[] {
  return [...(userModules ?? []), ...taskHeadModules(task)];
}

/** The user's entries of a modules_to_save list read back from a file: the task heads PEFT adds itself removed. */
export function withoutTaskHeads(saved: readonly string[] | null, task: string | null | undefined): string[] {
  const heads = taskHeadModules(task);
  return (saved ?? []).filter((m) => !heads.includes(m));
}

export type InitLoraWeights = boolean | 'gaussian' | 'pissa';

/** The LoraConfig fields gelora implements, as PEFT names and means them. */
export interface LoraConfig {
  /** LoRA attention dimension (the rank) of every adapted module not listed in rank_pattern. Default 8. */
  r: number;
  /** The alpha parameter for LoRA scaling: scale = lora_alpha / r (or / sqrt(r) with use_rslora). Default 8. */
  lora_alpha: number;
  /** The dropout probability for LoRA layers (applied to the input of A, while training). Default 0. */
  lora_dropout: number;
  /**
   * The names of the modules to apply the adapter to. A list: a module matches when its name equals an
   * entry or ends with "." + entry. A string: a regex the whole module name must match. "all-linear":
   * every Linear except the output layer. null: chosen by model type (PEFT's
   * TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING; see src/models/registry.ts). Default null.
   */
  target_modules: string[] | string | null;
  /**
   * Layer names or regexes mapped to ranks different from r. Key K applies to module N when
   * /(.*\.)?(K)$/ matches N; the first matching key wins. Default {}.
   */
  rank_pattern: Record<string, number>;
  /** Layer names or regexes mapped to alphas different from lora_alpha, matched as rank_pattern. Default {}. */
  alpha_pattern: Record<string, number>;
  /**
   * Modules apart from LoRA layers to be set as trainable and saved in the final checkpoint, matched by
   * name suffix (e.g. the randomly initialised classifier/score of a classification task; PEFT appends its
   * task heads, TASK_HEAD_MODULES, itself). Default null.
   */
  modules_to_save: string[] | null;
  /** Rank-Stabilized LoRA: scale = lora_alpha / sqrt(r) instead of lora_alpha / r. Default false. */
  use_rslora: boolean;
  /**
   * How to initialise the LoRA weights: true (A kaiming-uniform, B zero: the reference implementation),
   * "gaussian" (A ~ N(0, 1/r), B zero), false (both random, B non-zero: discouraged), "pissa" (the top r
   * singular triplets of W moved into A and B). Default true.
   */
  init_lora_weights: InitLoraWeights;
  /** Bias type for LoRA ("none", "all" or "lora_only" in PEFT; gelora implements "none"). Default "none". */
  bias: 'none';
  /** Set to true if the layer to replace stores its weight as (fan_in, fan_out), as GPT-2's Conv1D. Default false. */
  fan_in_fan_out: boolean;
  /** The task type; decides which head modules PEFT trains in full. */
  task_type: 'SEQ_CLS' | 'CAUSAL_LM' | 'QUESTION_ANS';
}

/** PEFT's defaults for the fields above (task_type has none: it comes from the model). */
export const LORA_DEFAULTS: Readonly<Omit<LoraConfig, 'task_type'>> = {
  r: 8, lora_alpha: 8, lora_dropout: 0, target_modules: null, rank_pattern: {}, alpha_pattern: {}, modules_to_save: null,
  use_rslora: false, init_lora_weights: true, bias: 'none', fan_in_fan_out: false,
};

/**
 * Every key peft 0.18's LoraConfig writes to adapter_config.json, with its default, so users' tooling
 * sees the file it expects (fields gelora does not implement keep PEFT's default and are refused on read
 * when set: use_dora, lora_bias, use_qalora, layers_to_transform).
 */
export function peftConfigDefaults(): Record<string, unknown> {
  return {
    alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, base_model_name_or_path: null,
    bias: 'none', corda_config: null, ensure_weight_tying: false, eva_config: null, exclude_modules: null, fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
    loftq_config: {}, lora_alpha: LORA_DEFAULTS.lora_alpha, lora_bias: false, lora_dropout: LORA_DEFAULTS.lora_dropout, megatron_config: null,
    megatron_core: 'megatron.core', modules_to_save: null, peft_type: 'LORA', peft_version: PEFT_VERSION, qalora_group_size: 16,
    r: LORA_DEFAULTS.r, rank_pattern: {}, revision: null, target_modules: null, target_parameters: null, task_type: null,
    trainable_token_indices: null, use_dora: false, use_qalora: false, use_rslora: false,
  };
}

/** PEFT's key of a parameter (a LoRA factor "<module>.lora_A.weight" or a modules_to_save parameter). */
export function peftKey(paramName: string): string {
  return `${PEFT_PREFIX}${paramName}`;
}

/** The parameter name a PEFT key stands for, or null when the key lacks the prefix. */
export function paramOfPeftKey(key: string): string | null {
  return key.startsWith(PEFT_PREFIX) ? key.slice(PEFT_PREFIX.length) : null;
}
