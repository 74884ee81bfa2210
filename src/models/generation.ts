/**
 * generation_config.json (transformers' GenerationConfig as save_pretrained writes it): the token ids
 * that end generation and the sampling defaults a checkpoint ships with. Fields it leaves out fall
 * back to config.json's token ids, then to transformers' defaults (greedy, temperature 1, top_k 50,
 * top_p 1). eos_token_id may be one id or a list (Llama 3 Instruct stops on several).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HfConfig } from './model.js';

export interface GenerationConfig {
  bosTokenId: number | null;
  /** every id that ends a sequence; empty when neither file names one */
  eosTokenIds: number[];
  padTokenId: number | null;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  /** max_new_tokens, else null (max_length counts the prompt too and is kept apart) */
  maxNewTokens: number | null;
  maxLength: number | null;
  /** where the values came from: the generation_config.json path, or null when only config.json was read */
  file: string | null;
}

export function readGenerationConfig(dir: string, config: HfConfig): GenerationConfig {
  const file = join(dir, 'generation_config.json');
  let g: Record<string, unknown> = {};
  const has = existsSync(file);
  if (has) {
    let j: unknown;
    try {
      j = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${file}: not a JSON object`);
    g = j as Record<string, unknown>;
  }
  const where = has ? file : join(dir, 'config.json');
  const pick = (k: string): unknown => (g[k] !== undefined && g[k] !== null ? g[k] : config[k]);
  const tokenId = (k: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where}: "${k}" must be a token id (a non-negative integer) or a list of them, got ${JSON.stringify(v)}`);
    return v;
  };
  const optId = (k: string): number | null => { const v = pick(k); return v === undefined || v === null ? null : tokenId(k, v); };
  const eosRaw = pick('eos_token_id');
  const eosTokenIds = eosRaw === undefined || eosRaw === null ? [] : (Array.isArray(eosRaw) ? eosRaw : [eosRaw]).map((v) => tokenId('eos_token_id', v));
  const num = (k: string, dflt: number, ok: (v: number) => boolean, what: string): number => {
    const v = g[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`${file}: "${k}" must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const optInt = (k: string): number | null => {
    const v = g[k];
    if (v === undefined || v === null) return null;
    return num(k, 0, (x) => Number.isInteger(x) && x > 0, 'a positive integer');
  };
  return {
    bosTokenId: optId('bos_token_id'),
    eosTokenIds: [...new Set(eosTokenIds)],
    padTokenId: optId('pad_token_id'),
    doSample: g.do_sample === undefined || g.do_sample === null ? false : Boolean(g.do_sample),
    temperature: num('temperature', 1, (v) => v > 0, 'a positive number'),
    topK: num('top_k', 50, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer (0: no top-k)'),
    topP: num('top_p', 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    maxNewTokens: optInt('max_new_tokens'),
    maxLength: optInt('max_length'),
    file: has ? file : null,
  };
}
