/**
 * generation_config.json (transformers' GenerationConfig as save_pretrained writes it): the token ids
 * that end generation and the sampling defaults a checkpoint ships with. Fields it leaves out fall
 * back to config.json's token ids, then to transformers' defaults (greedy, temperature 1, top_k 50,
 * top_p 1). eos_token_id may be one id or a list (Llama 3 Instruct stops on several).
 * Also the sampling step and the KV-cached generation loop that use them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { slice } from '../engine/ops.js';
import { noGrad, scope } from '../engine/tensor.js';
import type { DecoderModel } from './decoder.js';
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

export interface SampleOptions {
  /** false: greedy (argmax); true: sample with temperature, top-k, top-p */
  doSample: boolean;
  temperature: number;
  /** keep the k most likely tokens (0: all) */
  topK: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (1: all) */
  topP: number;
}

/**
 * The next token from one row of logits, as transformers' logits processors order it: temperature,
 * then top-k, then top-p (nucleus), then a draw from the renormalised softmax; argmax when greedy.
 */
export function pickToken(logits: ArrayLike<number>, o: SampleOptions, rng: Rng): number {
  const V = logits.length;
  if (!o.doSample) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[j] > logits[best]) best = j;
    return best;
  }
  const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => logits[b] - logits[a]);
  const k = o.topK > 0 ? Math.min(o.topK, V) : V;
  const mx = logits[order[0]] / o.temperature;
  const p = new Float64Array(k);
  let s = 0;
  for (let i = 0; i < k; i++) { p[i] = Math.exp(logits[order[i]] / o.temperature - mx); s += p[i]; }
  // nucleus: the most likely tokens until their mass reaches top_p (at least one kept)
  let keep = k, acc = 0;
  if (o.topP < 1) {
    for (let i = 0; i < k; i++) { acc += p[i] / s; if (acc >= o.topP) { keep = i + 1; break; } }
  }
  let total = 0;
  for (let i = 0; i < keep; i++) total += p[i];
  let u = rng.next() * total;
  for (let i = 0; i < keep; i++) { u -= p[i]; if (u <= 0) return order[i]; }
  return order[keep - 1];
}

export interface GenerateResult {
  /** the new token ids (without the prompt; the stopping eos included) */
  tokens: number[];
  /** 'eos' when an eos id ended it, 'length' at maxNewTokens */
  stop: 'eos' | 'length';
  /** seconds for the prompt pass and for the new tokens after the first */
  promptSeconds: number;
  decodeSeconds: number;
}

/** Autoregressive generation with a KV cache: the prompt in one pass, then one token per step. */
export function generate(model: DecoderModel, prompt: number[], o: SampleOptions & { maxNewTokens: number; eosTokenIds: number[]; seed?: number },
  onToken?: (id: number) => void): GenerateResult {
  if (prompt.length === 0) throw new Error('generate: the prompt has no tokens');
  const rng = new Rng(o.seed ?? 0), eos = new Set(o.eosTokenIds), tokens: number[] = [];
  const cache = model.newCache(), V = model.outputSize;
  let stop: GenerateResult['stop'] = 'length', promptSeconds = 0;
  const t0 = performance.now();
  let next = Int32Array.from(prompt);
  noGrad(() => {
    while (tokens.length < o.maxNewTokens) {
      const row = scope(() => {
        const logits = model.step(next, cache);
        return slice(logits, 1, next.length - 1, next.length).toFloat32(); // the last position's [1, 1, V] row
      });
      if (tokens.length === 0) promptSeconds = (performance.now() - t0) / 1000;
      const id = pickToken(row, o, rng);
      tokens.push(id);
      onToken?.(id);
      if (eos.has(id)) { stop = 'eos'; break; }
      next = Int32Array.of(id);
    }
  });
  return { tokens, stop, promptSeconds, decodeSeconds: (performance.now() - t0) / 1000 - promptSeconds };
}
