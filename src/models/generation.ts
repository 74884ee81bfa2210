/**
 * generation_config.json (transformers' GenerationConfig as save_pretrained writes it): the token ids
 * that end generation and the sampling defaults a checkpoint ships with. Fields it leaves out fall
 * back to config.json's token ids, then to transformers' defaults (greedy, temperature 1, top_k 50,
 * top_p 1). eos_token_id may be one id or a list (Llama 3 Instruct stops on several).
 * Also the sampling step, the KV-cached generation loop that use them, and the prompt: plain or
 * rendered by the chat template, cut from the left to the context, with the ids that end a chat answer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { slice } from '../engine/ops.js';
import { noGrad, scope } from '../engine/tensor.js';
import { loadChatTemplate, readTokenizerConfig, specialTokens, type ChatMessage, type ChatTemplate } from '../io/chat.js';
import type { TextTokenizer } from '../io/tokenizer.js';
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

/** A chat prompt: the user's text as one user turn, after an optional system turn. */
export interface ChatPrompt { template: ChatTemplate; system?: string }

/**
 * The prompt's token ids. Plain text gets the tokenizer's own special tokens (bos), as tokenizer(text)
 * does. A chat prompt is rendered by the model's chat template with add_generation_prompt (so it
 * ends where the assistant's answer begins) and tokenized without adding special tokens: the
 * template writes them, as transformers' apply_chat_template(tokenize=True) does.
 */
export function promptIds(tok: TextTokenizer, text: string, chat: ChatPrompt | null): { ids: number[]; rendered: string | null } {
  if (!chat) return { ids: tok.encode(text, null, { maxLength: Number.MAX_SAFE_INTEGER }).ids, rendered: null };
  const messages: ChatMessage[] = [...(chat.system !== undefined ? [{ role: 'system', content: chat.system }] : []), { role: 'user', content: text }];
  const rendered = chat.template.render(messages, true, '--prompt');
  return { ids: tok.encodePlain(rendered), rendered };
}

/**
 * A prompt that fits a context of maxLength positions together with maxNewTokens new ones, cut from
 * the left (the end of the prompt, where the answer begins, is kept, as transformers' pipelines
 * truncate with truncation_side="left"). cut: how many tokens were dropped.
 */
export function fitPrompt(ids: number[], maxLength: number, maxNewTokens: number, contextName = '--max-length'): { ids: number[]; cut: number } {
  const room = maxLength - maxNewTokens;
  if (room < 1) throw new Error(`--max-new-tokens ${maxNewTokens} leaves no room for the prompt in a context of ${maxLength} positions (${contextName}); lower --max-new-tokens${contextName === '--max-length' ? ' or raise --max-length' : ''}`);
  return ids.length <= room ? { ids, cut: 0 } : { ids: ids.slice(ids.length - room), cut: ids.length - room };
}

/**
 * The ids that end a chat answer: generation_config.json's eos ids and tokenizer_config.json's
 * eos_token (instruction-tuned checkpoints name their end-of-turn token there: Llama 3's <|eot_id|>,
 * Qwen2's <|im_end|>). turnEnd: the special token the chat template writes after an assistant turn,
 * when one is found, and whether it is among the stop ids (so a caller can say when it is not).
 */
export function chatStopIds(gen: GenerationConfig, tok: TextTokenizer, tokenizerConfig: Record<string, unknown>, template: ChatTemplate):
  { ids: number[]; turnEnd: { token: string; id: number; stops: boolean } | null } {
  const ids = [...gen.eosTokenIds];
  const eos = specialTokens(tokenizerConfig).eos_token, eosId = eos === undefined ? undefined : tok.tokenId(eos);
  if (eosId !== undefined && !ids.includes(eosId)) ids.push(eosId);
  const end = templateTurnEnd(template, tok);
  return { ids, turnEnd: end ? { ...end, stops: ids.includes(end.id) } : null };
}

/**
 * The special token a chat template writes right after an assistant's text, found by rendering a
 * one-exchange conversation with and without its answer; null when the template does not render
 * that conversation as a prefix of itself or no special token follows the answer.
 */
function templateTurnEnd(template: ChatTemplate, tok: TextTokenizer): { token: string; id: number } | null {
  const answer = 'gelora-answer', user = { role: 'user', content: 'hello' };
  let before: string, after: string;
  try {
    before = template.render([user], true);
    after = template.render([user, { role: 'assistant', content: answer }], false);
  } catch {
    return null; // templates that refuse this exchange (raise_exception) say nothing about turn ends
  }
  const at = after.indexOf(answer, before.length);
  if (!after.startsWith(before) || at < 0) return null;
  const rest = after.slice(at + answer.length), first = rest ? tok.encodePlain(rest)[0] : undefined;
  if (first === undefined || !tok.specialIds.has(first)) return null;
  const token = tok.tokenText(first);
  return token === undefined ? null : { token, id: first };
}

export interface PromptRequest {
  prompt: string;
  /** render the prompt with the folder's chat template (a user turn, after a system turn when given) */
  chat?: boolean;
  system?: string;
  /** context length (prompt + new tokens); default: config.json max_position_embeddings, else unbounded */
  maxLength?: number;
  maxNewTokens: number;
}

export interface PreparedPrompt {
  /** the token ids to generate from, after any cut */
  ids: number[];
  /** tokens dropped from the left of the prompt to fit the context */
  cut: number;
  /** ids that stop generation */
  eosTokenIds: number[];
  /** where the chat template came from, or null without --chat */
  template: string | null;
  /** what the caller should tell the user (a cut prompt, an end-of-turn token that does not stop) */
  warnings: string[];
}

/**
 * The prompt `gelora generate` runs: plain or rendered by the model folder's chat template (an
 * error naming tokenizer_config.json and the fix when the folder has none), cut from the left to
 * the context with the number of cut tokens in a warning, and the ids that stop generation
 * (generation_config.json's, with --chat also tokenizer_config.json's eos_token).
 */
export function preparePrompt(dir: string, tok: TextTokenizer, gen: GenerationConfig, config: HfConfig, o: PromptRequest): PreparedPrompt {
  if (o.system !== undefined && !o.chat) throw new Error('--system needs --chat (the system message goes through the chat template)');
  const warnings: string[] = [];
  const template = o.chat ? loadChatTemplate(dir) : null;
  if (o.chat && !template) {
    throw new Error(`${dir}: --chat needs a chat template, and the folder has none (no "chat_template" in ${join(dir, 'tokenizer_config.json')}, no chat_template.jinja); ` +
      'copy tokenizer_config.json (or chat_template.jinja) of the instruction-tuned checkpoint into the folder, or drop --chat to give the prompt as plain text');
  }
  let eosTokenIds = gen.eosTokenIds;
  if (template) {
    const stops = chatStopIds(gen, tok, readTokenizerConfig(dir), template);
    eosTokenIds = stops.ids;
    if (stops.turnEnd && !stops.turnEnd.stops) {
      warnings.push(`the chat template ends assistant turns with ${stops.turnEnd.token} (id ${stops.turnEnd.id}), which is neither an eos id of ${gen.file ?? join(dir, 'config.json')} ` +
        `nor tokenizer_config.json's eos_token, so generation does not stop there; add ${stops.turnEnd.id} to eos_token_id in generation_config.json`);
    }
  }
  const full = promptIds(tok, o.prompt, template ? { template, system: o.system } : null).ids;
  const maxPos = config.max_position_embeddings;
  const context = o.maxLength ?? (typeof maxPos === 'number' ? maxPos : null);
  const contextName = o.maxLength !== undefined ? '--max-length' : `max_position_embeddings of ${join(dir, 'config.json')}`;
  const { ids, cut } = context === null ? { ids: full, cut: 0 } : fitPrompt(full, context, o.maxNewTokens, contextName);
  if (cut > 0) warnings.push(`the prompt has ${full.length} tokens; with ${o.maxNewTokens} new tokens a context of ${context} (${contextName}) holds ${ids.length} of them, so its first ${cut} tokens were cut`);
  return { ids, cut, eosTokenIds, template: template?.name ?? null, warnings };
}
