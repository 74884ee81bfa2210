/**
 * PEFT adapter folders: adapter_config.json + adapter_model.safetensors, as peft's save_pretrained
 * writes them (peft 0.18), so that Python's PeftModel.from_pretrained loads ours and we load theirs.
 * Tensors: base_model.model.<module>.lora_A.weight (r, in), .lora_B.weight (out, r), and the full
 * parameters of modules_to_save under base_model.model.<param>. We write rank_pattern / alpha_pattern
 * keyed by full module names and target_modules as the exact list of adapted modules.
 *
 * Head weights that the loader initialised (a checkpoint without a classification pooler, a new
 * classifier) are saved too, listed in modules_to_save: the adapter folder alone reproduces our
 * predictions in PEFT, whose own random initialisation of those weights would differ. Every tensor read
 * is checked finite.
 */
import { existsSync } from 'node:fs';
import { readText } from '../io/files.js';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { Model } from '../models/model.js';
import { transpose } from '../models/modules.js';
import { Rng } from '../engine/random.js';
import { parameter, type Tensor } from '../engine/tensor.js';
import { defaultLoraConfig, defaultTargets, isTarget, savedModules, type InitLoraWeights, type LoraConfig } from './config.js';
import { applyLoraConfig, modulesToSaveParams, type LoraModel } from './lora.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_PICKLE_FILE, ADAPTER_WEIGHTS_FILE, PEFT_PREFIX as PREFIX, peftConfigDefaults, taskHeadModules, withTaskHeads, withoutTaskHeads } from './peft.js';

function mostCommon(xs: number[]): number {
  const n = new Map<number, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
}

/** A module LoRA adapts, with its rank and alpha. */
export interface AdaptedModule { name: string; r: number; alpha: number }

/**
 * adapter_config.json for the given adapted modules: target_modules is their exact list, r and
 * lora_alpha the most common values, rank_pattern / alpha_pattern (full module names) the rest.
 */
export function adapterConfigFor(c: LoraConfig, modules: AdaptedModule[], baseModel: string | null, extraSaved: string[] = []): Record<string, unknown> {
  const r = modules.length ? mostCommon(modules.map((m) => m.r)) : c.r;
  const alpha = modules.length ? mostCommon(modules.map((m) => m.alpha)) : c.lora_alpha;
  const rankPattern: Record<string, number> = {}, alphaPattern: Record<string, number> = {};
  for (const m of modules) {
    if (m.r !== r) rankPattern[m.name] = m.r;
    if (m.alpha !== alpha) alphaPattern[m.name] = m.alpha;
  }
  const modulesToSave = withTaskHeads([...(c.modules_to_save ?? []), ...extraSaved], c.task_type);
  return {
    ...peftConfigDefaults(),
    alpha_pattern: alphaPattern, base_model_name_or_path: baseModel, bias: c.bias, fan_in_fan_out: c.fan_in_fan_out,
    init_lora_weights: c.init_lora_weights, lora_alpha: alpha, lora_dropout: c.lora_dropout,
    modules_to_save: modulesToSave.length ? modulesToSave : null, r, rank_pattern: rankPattern,
    target_modules: modules.map((m) => m.name), task_type: c.task_type, use_rslora: c.use_rslora,
  };
}

/**
 * Modules whose weights the loader initialised (absent from the checkpoint) and that modules_to_save
 * does not already cover: saved in the adapter so that it does not depend on anyone's random init.
 */
export function initialisedHeadModules(model: Model, covered: string[]): string[] {
  const mods = new Set<string>();
  for (const n of model.params.initialised) {
    if (covered.some((m) => n.startsWith(`${m}.`))) continue;
    mods.add(n.slice(0, n.lastIndexOf('.')));
  }
  return [...mods];
}

/** The adapter_config.json object for a LoRA model. */
export function adapterConfigJson(lm: LoraModel, baseModel: string | null): Record<string, unknown> {
  return adapterConfigFor(lm.config, lm.resolution.modules.map((m) => ({ name: m.linear.name, r: m.r, alpha: m.alpha })), baseModel,
    initialisedHeadModules(lm.model, lm.resolution.modulesToSave));
}

/** The parameters an adapter of this model saves in full: modules_to_save and initialised head weights. */
export function savedParams(model: Model, modulesToSave: string[]): ReturnType<typeof modulesToSaveParams> {
  return modulesToSaveParams(model, [...modulesToSave, ...initialisedHeadModules(model, modulesToSave)]);
}

/**
 * The adapter tensors by PEFT key (float32). withInitialised: also the head weights the loader
 * initialised that modules_to_save does not cover (what saveAdapter writes).
 */
export function adapterTensors(lm: LoraModel, withInitialised = true): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const m of lm.resolution.modules) {
    const l = m.linear.lora!;
    out[`${PREFIX}${m.linear.name}.lora_A.weight`] = { shape: [...l.A.shape], data: l.A.toFloat32() };
    out[`${PREFIX}${m.linear.name}.lora_B.weight`] = { shape: [...l.B.shape], data: l.B.toFloat32() };
  }
  for (const p of withInitialised ? savedParams(lm.model, lm.resolution.modulesToSave) : modulesToSaveParams(lm.model, lm.resolution.modulesToSave)) {
    const transposed = lm.model.params.transposed.has(p.name);
    out[`${PREFIX}${p.name}`] = transposed ? { shape: [p.shape[1], p.shape[0]], data: transpose(p.toFloat32(), p.shape[0], p.shape[1]) } : { shape: [...p.shape], data: p.toFloat32() };
  }
  return out;
}


export function saveAdapter(dir: string, lm: LoraModel, baseModel: string | null): void {
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), adapterTensors(lm), { format: 'pt' });
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), adapterConfigJson(lm, baseModel));
}

/** A LoraConfig from an adapter_config.json object (PEFT's or ours). */
export function loraConfigFromJson(model: Model, j: Record<string, unknown>, file: string): LoraConfig {
  if (j.peft_type !== 'LORA') throw new Error(`${file}: peft_type ${JSON.stringify(j.peft_type)} is not LORA`);
  for (const [k, bad] of [['use_dora', true], ['lora_bias', true], ['use_qalora', true]] as const) {
    if (j[k] === bad) throw new Error(`${file}: ${k} is not supported`);
  }
  if (j.bias !== undefined && j.bias !== 'none') throw new Error(`${file}: bias "${String(j.bias)}" is not supported (only "none")`);
  if (j.layers_to_transform !== undefined && j.layers_to_transform !== null) throw new Error(`${file}: layers_to_transform is not supported; use rank_pattern`);
  const num = (k: string, d: number): number => (typeof j[k] === 'number' ? (j[k] as number) : d);
  const task = j.task_type === 'CAUSAL_LM' || j.task_type === 'SEQ_CLS' || j.task_type === 'QUESTION_ANS' ? j.task_type : null;
  return defaultLoraConfig(model, {
    r: num('r', 8), lora_alpha: num('lora_alpha', 8), lora_dropout: num('lora_dropout', 0),
    target_modules: (j.target_modules as string[] | string | null) ?? null,
    rank_pattern: (j.rank_pattern as Record<string, number>) ?? {}, alpha_pattern: (j.alpha_pattern as Record<string, number>) ?? {},
    // PEFT appends its task heads itself when it builds a task model; keep only the user's entries
    modules_to_save: withoutTaskHeads((j.modules_to_save as string[] | null) ?? [], task),
    use_rslora: Boolean(j.use_rslora), init_lora_weights: (j.init_lora_weights as InitLoraWeights) ?? true,
    ...(task ? { task_type: task } : {}),
  });
}

/** Applies an adapter folder (PEFT's or ours) to a model: LoRA weights and modules_to_save replaced. */
export function loadAdapter(model: Model, dir: string): LoraModel {
  const cfgFile = join(dir, ADAPTER_CONFIG_FILE), wFile = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(cfgFile)) throw new Error(`${dir}: no ${ADAPTER_CONFIG_FILE} (an adapter folder as PEFT's save_pretrained writes it)`);
  if (!existsSync(wFile)) throw new Error(`${dir}: no ${ADAPTER_WEIGHTS_FILE}${existsSync(join(dir, ADAPTER_PICKLE_FILE)) ? ` (only ${ADAPTER_PICKLE_FILE}: re-save with safe_serialization=True)` : ''}`);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readText(cfgFile)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${cfgFile}: not valid JSON (${(e as Error).message})`);
  }
  if (j.peft_type === 'ADALORA') return loadAdaLora(model, j, cfgFile, wFile);
  const lm = applyLoraConfig(model, loraConfigFromJson(model, j, cfgFile));
  const f = new SafetensorsFile(wFile);
  try {
    const expected = adapterTensors(lm, false);
    const have = new Set(f.names());
    const missing = Object.keys(expected).filter((k) => !have.has(k));
    const unexpected = [...have].filter((k) => !(k in expected));
    if (missing.length || unexpected.length) {
      throw new Error(`${wFile} does not fit ${cfgFile} and this model:${missing.length ? ` missing ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` (+${missing.length - 8})` : ''};` : ''}${unexpected.length ? ` unexpected ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ` (+${unexpected.length - 8})` : ''}` : ''}`);
    }
    const byKey = new Map<string, Tensor>();
    for (const m of lm.resolution.modules) {
      byKey.set(`${PREFIX}${m.linear.name}.lora_A.weight`, m.linear.lora!.A);
      byKey.set(`${PREFIX}${m.linear.name}.lora_B.weight`, m.linear.lora!.B);
    }
    for (const [key, want] of Object.entries(expected)) {
      const t = f.read(key);
      if (t.shape.length !== want.shape.length || t.shape.some((d, i) => d !== want.shape[i])) {
        throw new Error(`${wFile}: ${key} has shape [${t.shape}], the model needs [${want.shape}]`);
      }
      const values = t.data; // I/O boundary: the values read from the adapter file
      checkFiniteTensor(values, key, wFile);
      const target = byKey.get(key);
      if (target) target.assign(values);
      else {
        const p = model.params.get(key.slice(PREFIX.length));
        p.assign(model.params.transposed.has(p.name) ? transpose(values, t.shape[0], t.shape[1]) : values);
        model.params.initialised.delete(p.name);
      }
    }
  } finally {
    f.close();
  }
  return lm;
}

/**
 * A PEFT AdaLoRA adapter: per target module lora_A (r_active, in), lora_E (r_active, 1), lora_B
 * (out, r_active), scaled by lora_alpha / (init_r + 1e-5) as PEFT keeps ranknum = init_r on resize.
 */
function loadAdaLora(model: Model, j: Record<string, unknown>, cfgFile: string, wFile: string): LoraModel {
  const initR = Number(j.init_r), alpha = Number(j.lora_alpha);
  if (!(initR > 0)) throw new Error(`${cfgFile}: AdaLoRA config without init_r`);
  const targets = (j.target_modules as string[] | string | null) ?? defaultTargets(model);
  const task = j.task_type === 'SEQ_CLS' || j.task_type === 'CAUSAL_LM' || j.task_type === 'QUESTION_ANS' ? j.task_type : undefined;
  const c = defaultLoraConfig(model, { target_modules: targets, ...(task ? { task_type: task } : {}) });
  const f = new SafetensorsFile(wFile);
  try {
    const modules = [];
    const scale = (alpha > 0 ? alpha : initR) / (initR + 1e-5);
    for (const lin of model.linears()) {
      if (!isTarget(lin.name, targets)) continue;
      const key = (part: string): string => `${PREFIX}${lin.name}.${part}`;
      if (!f.tensors.has(key('lora_A'))) throw new Error(`${wFile}: no ${key('lora_A')} for target module ${lin.name}`);
      const A = f.read(key('lora_A')), E = f.read(key('lora_E')), B = f.read(key('lora_B'));
      for (const [part, t] of [['lora_A', A], ['lora_E', E], ['lora_B', B]] as const) checkFiniteTensor(t.data, key(part), wFile); // I/O boundary: values read from the adapter file
      const r = A.shape[0];
      if (A.shape[1] !== lin.inFeatures || B.shape[0] !== lin.outFeatures || B.shape[1] !== r || E.shape[0] !== r) {
        throw new Error(`${wFile}: AdaLoRA tensors of ${lin.name} ([${A.shape}], [${E.shape}], [${B.shape}]) do not fit [${lin.outFeatures}, ${lin.inFeatures}]`);
      }
      if (r === 0) continue;
      lin.lora = {
        A: parameter(A.data, [r, lin.inFeatures], true, `${lin.name}.lora_A`), B: parameter(B.data, [lin.outFeatures, r], true, `${lin.name}.lora_B`), // I/O boundary: the arrays read from the file become the parameters' storage
        E: parameter(E.data, [r, 1], true, `${lin.name}.lora_E`), scale, dropout: 0, rng: new Rng(0), // I/O boundary: file array
      };
      modules.push({ linear: lin, r, alpha, scale });
    }
    const saved = withoutTaskHeads((j.modules_to_save as string[] | null) ?? [], c.task_type);
    const heads = taskHeadModules(c.task_type);
    const resolution = { modules, skipped: [], unusedPatterns: [], modulesToSave: [...saved, ...heads].length ? savedModules(model, [...saved, ...heads]) : [] };
    for (const p of modulesToSaveParams(model, resolution.modulesToSave)) {
      const k = `${PREFIX}${p.name}`;
      if (!f.tensors.has(k)) throw new Error(`${wFile}: missing ${k}`);
      const t = f.read(k).data; // I/O boundary: the values read from the adapter file
      checkFiniteTensor(t, k, wFile);
      p.assign(t);
      model.params.initialised.delete(p.name);
    }
    return { model, config: c, resolution, trainable: modules.flatMap((m) => [m.linear.lora!.A, m.linear.lora!.E!, m.linear.lora!.B]) };
  } finally {
    f.close();
  }
}

/** A NaN or infinite adapter value is refused, naming the tensor and the file. */
function checkFiniteTensor(d: ArrayLike<number>, key: string, file: string): void {
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v - v !== 0) throw new Error(`${file}: tensor ${key} holds ${v} at index ${i}; the adapter is damaged (a diverged run or a broken write): retrain or re-save it`);
  }
}

/**
 * Head weights still at the loader's random initialisation: in neither the checkpoint nor a loaded
 * adapter. Predictions then depend on the init seed (`eval`/`forward --adapter` warn about these).
 * Meaningful before training or right after loadAdapter.
 */
export function randomHeadWeights(model: Model): string[] {
  return [...model.params.initialised];
}

/**
 * The warning for head weights still random after loading (null when there are none): in neither the
 * checkpoint nor the adapter, so predictions depend on the init seed and do not reproduce elsewhere.
 */
export function randomHeadWarning(model: Model, modelDir: string, adapterDir?: string): string | null {
  const names = randomHeadWeights(model);
  if (!names.length) return null;
  return adapterDir
    ? `gelora: head weights in neither ${modelDir} nor the adapter ${adapterDir}, initialised randomly (predictions depend on the seed; re-save the adapter with gelora to include them): ${names.join(', ')}\n`
    : `gelora: ${modelDir}: head weights not in the checkpoint, initialised randomly: ${names.join(', ')}\n`;
}
