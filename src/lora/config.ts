/**
 * LoRA configuration with PEFT's semantics, field for field (peft.LoraConfig), so that what users know
 * of PEFT carries over and our adapter_config.json loads in Python:
 *  - target_modules: a list (a module matches when its name equals an entry or ends with "." + entry),
 *    a regex string (full match), or "all-linear" (every Linear except the output layer);
 *  - rank_pattern / alpha_pattern: key K applies to module N when /(.*\.)?(K)$/ matches N, first key wins;
 *  - modules_to_save: modules whose name ends with an entry are trained in full (SEQ_CLS adds
 *    "classifier" and "score", as PEFT does);
 *  - scaling alpha / r, or alpha / sqrt(r) with use_rslora.
 */
import type { Model } from '../models/model.js';
import type { Linear } from '../models/modules.js';

export type InitLoraWeights = boolean | 'gaussian' | 'pissa';

export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string | null;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  modules_to_save: string[] | null;
  use_rslora: boolean;
  init_lora_weights: InitLoraWeights;
  bias: 'none';
  fan_in_fan_out: boolean;
  task_type: 'SEQ_CLS' | 'CAUSAL_LM';
}

export function defaultLoraConfig(model: Model, over: Partial<LoraConfig> = {}): LoraConfig {
  return {
    r: 8, lora_alpha: 8, lora_dropout: 0, target_modules: null, rank_pattern: {}, alpha_pattern: {}, modules_to_save: null,
    use_rslora: false, init_lora_weights: true, bias: 'none', fan_in_fan_out: model.type === 'gpt2',
    task_type: model.task === 'seq-cls' ? 'SEQ_CLS' : 'CAUSAL_LM', ...over,
  };
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
  const exclude = model.task === 'causal-lm' ? 'lm_head' : model.linears().some((l) => l.name === 'score') ? 'score' : 'classifier';
  return model.linears().map((l) => l.name).filter((n) => n !== exclude);
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
  let targets = c.target_modules ?? model.defaultLoraTargets;
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
  const save = [...(c.modules_to_save ?? []), ...(c.task_type === 'SEQ_CLS' ? ['classifier', 'score'] : [])];
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
