/**
 * LoRA configuration with PEFT's semantics, field for field (peft.LoraConfig; the fields, their defaults
 * and meaning are in peft.ts), so that what users know of PEFT carries over and our adapter_config.json
 * loads in Python:
 *  - target_modules: a list (a module matches when its name equals an entry or ends with "." + entry),
 *    a regex string (full match), or "all-linear" (every Linear except the output layer);
 *  - rank_pattern / alpha_pattern: key K applies to module N when /(.*\.)?(K)$/ matches N, first key wins;
 *  - modules_to_save: modules whose name ends with an entry are trained in full (a task type adds its
 *    head modules, as PEFT does: TASK_HEAD_MODULES);
 *  - scaling alpha / r, or alpha / sqrt(r) with use_rslora.
 */
import type { Model } from '../models/model.js';
import type { Linear } from '../models/modules.js';
import { findFamily } from '../models/registry.js';
import { LM_HEAD, LORA_DEFAULTS, TASK_HEAD_MODULES, withTaskHeads, type LoraConfig } from './peft.js';

export type { InitLoraWeights, LoraConfig } from './peft.js';

/**
 * PEFT's defaults for a model_type: fan_in_fan_out from the family (GPT-2's Conv1D), task_type from the
 * family (decoders: CAUSAL_LM) unless given. An unknown type (a module list of any runtime) gets SEQ_CLS.
 */
export function loraConfigForType(modelType: string | null, over: Partial<LoraConfig> = {}, task?: Model['task']): LoraConfig {
  const family = modelType ? findFamily(modelType) : null;
  const causal = task ? task === 'causal-lm' : Boolean(family?.decoder);
  return {
    ...LORA_DEFAULTS, rank_pattern: {}, alpha_pattern: {}, fan_in_fan_out: family?.fanInFanOut ?? false,
    task_type: causal ? 'CAUSAL_LM' : task === 'qa' ? 'QUESTION_ANS' : 'SEQ_CLS', ...over,
  };
}

/** PEFT's defaults for this model (its family and task), with overrides. */
export function defaultLoraConfig(model: Model, over: Partial<LoraConfig> = {}): LoraConfig {
  return loraConfigForType(model.type, over, model.task);
}

/** peft.utils.other.get_pattern_key: the first key K with /(.*\.)?(K)$/ matching the module name. */
export function patternKey(keys: string[], name: string): string | null {
  for (const k of keys) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${k})$`);
    } catch {
      throw new Error(`rank_pattern/alpha_pattern key "${k}" is not a valid regular expression`);
    }
    if (re.test(name)) return k;
  }
  return null;
}

/** PEFT's check_target_module_exists for a list or a regex string. */
export function isTarget(name: string, targets: string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** The module paths that target_modules "all-linear" selects (PEFT's _maybe_include_all_linear_layers). */
export function allLinearTargets(model: Model): string[] {
  const names = model.linears().map((l) => l.name);
  const exclude = model.task === 'causal-lm' ? LM_HEAD : model.task === 'qa' ? TASK_HEAD_MODULES.QUESTION_ANS[0] : TASK_HEAD_MODULES.SEQ_CLS.find((h) => names.includes(h)) ?? TASK_HEAD_MODULES.SEQ_CLS[0];
  return names.filter((n) => n !== exclude);
}

export interface ResolvedModule { linear: Linear; r: number; alpha: number; scale: number }

export interface Resolution {
  modules: ResolvedModule[];
  /** modules a rank of 0 leaves unadapted */
  skipped: string[];
  /** pattern keys that matched no targeted module (PEFT warns about these) */
  unusedPatterns: string[];
  /** names of modules trained in full (modules_to_save) */
  modulesToSave: string[];
}

/** Which modules get LoRA, with which rank and alpha; which are trained in full. */
export function resolveLora(model: Model, c: LoraConfig): Resolution {
  let targets = c.target_modules ?? defaultTargets(model);
  if (typeof targets === 'string' && targets.toLowerCase() === 'all-linear') targets = allLinearTargets(model);
  if (Array.isArray(targets) && targets.length === 0) throw new Error('target_modules is empty');
  const rankKeys = Object.keys(c.rank_pattern), alphaKeys = Object.keys(c.alpha_pattern);
  const usedKeys = new Set<string>();
  const modules: ResolvedModule[] = [], skipped: string[] = [];
  for (const linear of model.linears()) {
    if (!isTarget(linear.name, targets)) continue;
    const rk = patternKey(rankKeys, linear.name), ak = patternKey(alphaKeys, linear.name);
    if (rk !== null) usedKeys.add(`r:${rk}`);
    if (ak !== null) usedKeys.add(`a:${ak}`);
    const r = rk !== null ? c.rank_pattern[rk] : c.r;
    const alpha = ak !== null ? c.alpha_pattern[ak] : c.lora_alpha;
    if (!Number.isInteger(r) || r < 0) throw new Error(`rank for ${linear.name} must be a non-negative integer, got ${r}`);
    if (r === 0) { skipped.push(linear.name); continue; }
    modules.push({ linear, r, alpha, scale: c.use_rslora ? alpha / Math.sqrt(r) : alpha / r });
  }
  if (modules.length === 0 && skipped.length === 0) {
    throw new Error(`target_modules ${JSON.stringify(targets)} match no Linear of this ${model.type} model (its linears are named like ${model.linears()[0]?.name})`);
  }
  const unusedPatterns = [...rankKeys.filter((k) => !usedKeys.has(`r:${k}`)), ...alphaKeys.filter((k) => !usedKeys.has(`a:${k}`))];
  const save = withTaskHeads(c.modules_to_save, c.task_type);
  const modulesToSave = save.length ? savedModules(model, save) : [];
  return { modules, skipped, unusedPatterns: [...new Set(unusedPatterns)], modulesToSave };
}

/** Module paths (of the model's parameters) that some modules_to_save entry matches by name suffix, outermost only. */
export function savedModules(model: Model, keys: string[]): string[] {
  const paths = new Set<string>();
  for (const name of model.params.names()) {
    const parts = name.split('.').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('.');
      if (keys.some((k) => path.endsWith(k))) { paths.add(path); break; }
    }
  }
  return [...paths];
}

/** target_modules null: PEFT's default targets for the model's family. */
export function defaultTargets(model: Model): string[] {
  return [...(findFamily(model.type)?.loraTargets ?? model.defaultLoraTargets)];
}

/** Parameter names of the modules a task type trains in full by default (PEFT's task heads). */
export function taskHeadParams(model: Model): string[] {
  if (model.task === 'causal-lm') return [];
  const mods = savedModules(model, [...TASK_HEAD_MODULES[model.task === 'qa' ? 'QUESTION_ANS' : 'SEQ_CLS']]);
  return model.params.names().filter((n) => mods.some((m) => n.startsWith(`${m}.`)));
}
