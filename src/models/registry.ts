/**
 * The architecture registry: one entry per model family (exported by the family's own file), looked
 * up by config.json's model_type. The loader builds models through it, `analyze --hidden-states
 * --model-type` takes module names from it, and the LoRA config its default targets. Adding a family:
 * see CONTRIBUTING.md (one file exporting a ModelFamily, one line in FAMILIES).
 */
import { existsSync, statSync } from 'node:fs';
import { readText } from '../io/files.js';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { BERT_FAMILY, ROBERTA_FAMILY } from './bert.js';
import { DEBERTA_V2_FAMILY } from './deberta.js';
import { DISTILBERT_FAMILY } from './distilbert.js';
import { GPT2_FAMILY } from './gpt2.js';
import { GEMMA3_FAMILY } from './gemma3.js';
import { LLAMA_FAMILY } from './llama.js';
import { MISTRAL_FAMILY } from './mistral.js';
import { PHI3_FAMILY } from './phi3.js';
import { QWEN2_FAMILY } from './qwen2.js';
import { QWEN3_FAMILY } from './qwen3.js';
import type { HfConfig, ModelFamily } from './model.js';

/** Every supported family, in the order errors list them. */
export const FAMILIES: readonly ModelFamily[] = [BERT_FAMILY, ROBERTA_FAMILY, DISTILBERT_FAMILY, DEBERTA_V2_FAMILY, GPT2_FAMILY, LLAMA_FAMILY,
  QWEN2_FAMILY, QWEN3_FAMILY, MISTRAL_FAMILY, PHI3_FAMILY, GEMMA3_FAMILY];

/** Every supported config.json model_type. */
export const MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

/** The family of a model_type, or null. */
export function findFamily(modelType: string): ModelFamily | null {
  return FAMILIES.find((f) => f.modelTypes.includes(modelType)) ?? null;
}

/** The family of a model_type; an unknown one is an error listing the supported types. */
export function familyFor(modelType: string, file = 'config.json'): ModelFamily {
  const f = findFamily(modelType);
  if (!f) throw new Error(`${file}: model_type "${modelType}" is not supported; supported: ${MODEL_TYPES.join(', ')} (DeBERTa-v3 checkpoints use deberta-v2)`);
  return f;
}

/**
 * Block containers as PEFT's COMMON_LAYERS_PATTERN names them (layers, h, block, blocks, layer): the
 * pattern for module lists of any runtime, whose family we may not know.
 */
export const COMMON_BLOCK_PATTERN = /\.(?:layer|layers|h|block|blocks)\.(\d+)\./;

/** config.json sizes that must be positive integers when present (any family). */
const SIZE_KEYS = ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'intermediate_size',
  'head_dim', 'attention_head_size', 'max_position_embeddings', 'n_embd', 'n_layer', 'n_head', 'n_inner', 'n_positions', 'dim', 'n_layers',
  'n_heads', 'hidden_dim', 'embedding_size', 'pooler_hidden_size', 'num_labels'];
/** config.json values that must be positive numbers when present: epsilons, rotary base, scale factors. */
const POSITIVE_KEYS = ['rope_theta', 'rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon'];
/** hidden size / heads pairs: attention splits the hidden size into equal heads unless head_dim is given. */
const HEAD_SPLITS: [string, string][] = [['hidden_size', 'num_attention_heads'], ['n_embd', 'n_head'], ['dim', 'n_heads']];

/**
 * Checks what every family reads alike, so that a bad value is a config error naming the file, not a
 * NaN at the first forward or "Invalid typed array length": sizes are positive integers, epsilons and
 * rope_theta (also inside rope_parameters / rope_scaling) positive numbers, the hidden size a multiple
 * of the number of heads, query heads a multiple of key/value heads.
 */
export function validateConfig(c: HfConfig, file = 'config.json'): void {
  const bad = (key: string, v: unknown, want: string): Error => new Error(`${file}: "${key}" must be ${want}, got ${JSON.stringify(v)}`);
  for (const k of SIZE_KEYS) {
    const v = c[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(k, v, 'a positive integer');
  }
  const positive = (obj: Record<string, unknown>, keys: string[], where: string): void => {
    for (const k of keys) {
      const v = obj[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(`${where}${k}`, v, 'a positive number');
    }
  };
  positive(c, POSITIVE_KEYS, '');
  for (const k of ['rope_parameters', 'rope_scaling']) {
    const rp = c[k];
    if (rp && typeof rp === 'object') positive(rp as Record<string, unknown>, ['rope_theta', 'factor'], `${k}.`);
  }
  const explicitHeadDim = typeof c.head_dim === 'number' || typeof c.attention_head_size === 'number';
  for (const [h, n] of HEAD_SPLITS) {
    const hv = c[h], nv = c[n];
    if (typeof hv === 'number' && typeof nv === 'number' && !explicitHeadDim && hv % nv !== 0) {
      throw new Error(`${file}: "${h}" ${hv} is not a multiple of "${n}" ${nv} (attention splits the hidden size into equal heads)`);
    }
  }
  // a lower bound of the weight count, before anything is allocated: 2 h^2 of attention and 2 h i of
  // feed-forward per block, plus the embeddings
  const first = (...keys: string[]): number => { for (const k of keys) if (typeof c[k] === 'number') return c[k] as number; return 0; };
  const L = first('num_hidden_layers', 'n_layer', 'n_layers'), h = first('hidden_size', 'n_embd', 'dim');
  const inter = first('intermediate_size', 'n_inner', 'hidden_dim') || 4 * h, V = first('vocab_size');
  const atLeast = L * (2 * h * h + 2 * h * inter) + V * h;
  if (atLeast * 4 > totalmem()) {
    throw new Error(`${file}: the sizes it gives (${L} layers, hidden ${h}, intermediate ${inter}, vocabulary ${V}) need at least ${(atLeast * 4 / 2 ** 30).toFixed(1)} GiB of float32 weights, more than this machine's ${(totalmem() / 2 ** 30).toFixed(1)} GiB; check config.json`);
  }
  const q = c.num_attention_heads, kv = c.num_key_value_heads;
  if (typeof q === 'number' && typeof kv === 'number' && q % kv !== 0) {
    throw new Error(`${file}: "num_attention_heads" ${q} is not a multiple of "num_key_value_heads" ${kv} (grouped-query attention shares each key/value head among equal groups)`);
  }
}

/** Reads and validates dir/config.json; an unknown model_type lists the supported ones. */
export function readConfig(dir: string): HfConfig {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) throw new Error(`${dir}: no config.json (a Hugging Face model folder has config.json, model.safetensors and tokenizer.json)`);
  if (!statSync(file).isFile()) throw new Error(`${file}: not a regular file (a Hugging Face model folder has config.json, model.safetensors and tokenizer.json)`);
  let c: unknown;
  try {
    c = JSON.parse(readText(file));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${file}: not a JSON object`);
  const cfg = c as HfConfig;
  if (typeof cfg.model_type !== 'string') throw new Error(`${file}: has no "model_type"; supported: ${MODEL_TYPES.join(', ')}`);
  familyFor(cfg.model_type, file);
  validateConfig(cfg, file);
  return cfg;
}
