/**
 * Tokenizers from a model folder, through @huggingface/tokenizers (WordPiece, BPE, Unigram and the
 * normalizers / pre-tokenizers / post-processors of tokenizer.json). A BERT folder with only
 * vocab.txt gets the equivalent tokenizer.json built in memory. Truncation follows transformers'
 * default "longest_first" (drop from the longer text until the pair fits), then the tokenizer's own
 * post-processor adds the special tokens and token types; batches are right-padded with the pad id.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelInputs } from '../models/model.js';
import { alignOffsets, byteLevelDecoder, tokenSurface } from './offsets.js';
import { readJsonObject, readText } from './files.js';

interface PostProcessor { post_process(a: string[], b?: string[] | null, addSpecial?: boolean): { tokens: string[]; token_type_ids?: number[] } }

export interface EncodeOptions {
  /** longest allowed sequence including special tokens (default: model_max_length from tokenizer_config.json, capped at 512) */
  maxLength?: number;
}

export interface PairLayout { before: { ids: number[]; typeIds: number[] }; between: { ids: number[]; typeIds: number[] }; after: { ids: number[]; typeIds: number[] }; typeA: number; typeB: number }

export class TextTokenizer {
  readonly padId: number;
  /** ids of special tokens ([CLS], [SEP], <s>, ...): excluded from pooling on request */
  readonly specialIds: ReadonlySet<number>;
  readonly defaultMaxLength: number;

  private constructor(private readonly tok: Tokenizer, config: Record<string, unknown>, readonly source: string, padFallback: number) {
    const post = (tok as unknown as { post_processor: PostProcessor | null }).post_processor;
    this.post = post;
    const padToken = typeof config.pad_token === 'string' ? config.pad_token : (config.pad_token as { content?: string } | undefined)?.content;
    const padId = padToken !== undefined ? tok.token_to_id(padToken) : undefined;
    this.padId = padId ?? padFallback;
    const specials = (tok as unknown as { all_special_ids: number[] }).all_special_ids ?? [];
    this.specialIds = new Set(specials);
    const mml = Number(config.model_max_length);
    this.defaultMaxLength = Number.isFinite(mml) && mml > 0 && mml < 1e6 ? Math.min(mml, 512) : 512;
  }

  private readonly post: PostProcessor | null;

  /** Loads tokenizer.json (+ tokenizer_config.json) or, failing that, vocab.txt from a model folder. */
  static fromDir(dir: string, padFallback = 0): TextTokenizer {
    const cfgFile = join(dir, 'tokenizer_config.json');
    const config = existsSync(cfgFile) ? readJsonObject(cfgFile) : {};
    const json = join(dir, 'tokenizer.json'), vocab = join(dir, 'vocab.txt');
    if (existsSync(json)) return new TextTokenizer(buildTokenizer(readJsonObject(json), config, json), config, json, padFallback);
    if (existsSync(vocab)) return new TextTokenizer(buildTokenizer(wordPieceFromVocab(vocab, config), config, vocab), config, vocab, padFallback);
    throw new Error(`${dir}: no tokenizer.json or vocab.txt (copy the tokenizer files of the checkpoint into the model folder)`);
  }

  /** Token ids of one text (or a pair) with special tokens, truncated to maxLength. */
  encode(text: string, pair?: string | null, o: EncodeOptions = {}): { ids: number[]; typeIds: number[] } {
    const maxLength = o.maxLength ?? this.defaultMaxLength;
    let a = this.tok.tokenize(text), b = pair === undefined || pair === null ? null : this.tok.tokenize(pair);
    const special = this.post ? this.post.post_process([], b ? [] : null, true).tokens.length : 0;
    const budget = maxLength - special;
    if (budget < (b ? 2 : 1)) throw new Error(`max length ${maxLength} leaves no room for text next to ${special} special tokens`);
    if (b) {
      while (a.length + b.length > budget) { if (a.length >= b.length) a = a.slice(0, -1); else b = b.slice(0, -1); }
    } else if (a.length > budget) a = a.slice(0, budget);
    let tokens: string[], types: number[];
    if (this.post) {
      const r = this.post.post_process(a, b, true);
      tokens = r.tokens;
      types = r.token_type_ids ?? tokens.map(() => 0);
    } else {
      tokens = b ? [...a, ...b] : a;
      types = b ? [...a.map(() => 0), ...b.map(() => 1)] : a.map(() => 0);
    }
    return { ids: this.idsOf(tokens), typeIds: types };
  }

  /** Token ids of a text without special tokens or truncation (text a chat template rendered, a completion). */
  encodePlain(text: string): number[] { return this.idsOf(this.tok.tokenize(text)); }

  /** The id of one token of the vocabulary (a special token such as eos_token), or undefined. */
  tokenId(token: string): number | undefined { return this.tok.token_to_id(token) ?? undefined; }

  /** The vocabulary entry of an id (a special token's text), or undefined. */
  tokenText(id: number): string | undefined { return this.tok.id_to_token(id) ?? undefined; }

  private idsOf(tokens: string[]): number[] {
    const unk = (this.tok as unknown as { model: { unk_token_id?: number } }).model.unk_token_id;
    return tokens.map((t) => {
      const id = this.tok.token_to_id(t) ?? unk;
      if (id === undefined) throw new Error(`${this.source}: token "${t}" has no id and the tokenizer has no unknown token`);
      return id;
    });
  }

  /** Token ids of one text without special tokens or truncation, with each token's [start, end) characters in the text (see offsets.ts). */
  encodeWithOffsets(text: string): { ids: number[]; offsets: [number, number][] } {
    const tokens = this.tok.tokenize(text);
    const t = this.tok as unknown as { normalizer: ((s: string) => string) | null; pre_tokenizer: { config?: unknown } | null; decoder: { config?: unknown } | null; model: { config?: { continuing_subword_prefix?: string; end_of_word_suffix?: string }; unk_token?: string } };
    const byteLevel = JSON.stringify([t.pre_tokenizer?.config, t.decoder?.config]).includes('"type":"ByteLevel"') ? byteLevelDecoder() : null;
    const surface = { prefix: t.model.config?.continuing_subword_prefix, suffix: t.model.config?.end_of_word_suffix, byteLevel };
    const offsets = alignOffsets(text, tokens, { normalize: (s) => (t.normalizer ? t.normalizer(s) : s), surface: (tok) => tokenSurface(tok, surface), isUnknown: (tok) => tok === t.model.unk_token });
    return { ids: this.idsOf(tokens), offsets };
  }

  /** The special tokens a pair gets: ids and token types before A, between A and B, after B, and the token types of A's and B's tokens. */
  pairLayout(): PairLayout {
    const A = '\u0000A', B = '\u0000B';
    const r = this.post ? this.post.post_process([A], [B], true) : { tokens: [A, B], token_type_ids: [0, 1] };
    const types = r.token_type_ids ?? r.tokens.map(() => 0), ia = r.tokens.indexOf(A), ib = r.tokens.indexOf(B);
    const part = (lo: number, hi: number) => ({ ids: this.idsOf(r.tokens.slice(lo, hi)), typeIds: types.slice(lo, hi) });
    return { before: part(0, ia), between: part(ia + 1, ib), after: part(ib + 1, r.tokens.length), typeA: types[ia], typeB: types[ib] };
  }

  /** A right-padded batch. */
  encodeBatch(texts: string[], pairs?: (string | null)[] | null, o: EncodeOptions = {}): ModelInputs {
    if (texts.length === 0) throw new Error('nothing to tokenize (empty batch)');
    const enc = texts.map((t, i) => this.encode(t, pairs ? pairs[i] : null, o));
    return padBatch(enc.map((e) => e.ids), enc.map((e) => e.typeIds), this.padId);
  }

  decode(ids: number[]): string { return this.tok.decode(ids, { skip_special_tokens: true }); }
}

export function padBatch(ids: number[][], typeIds: number[][] | null, padId: number): ModelInputs {
  const B = ids.length, T = Math.max(...ids.map((r) => r.length));
  const inputIds = new Int32Array(B * T).fill(padId), mask = new Float32Array(B * T), types = new Int32Array(B * T);
  ids.forEach((r, b) => r.forEach((id, t) => {
    inputIds[b * T + t] = id;
    mask[b * T + t] = 1;
    types[b * T + t] = typeIds ? typeIds[b][t] : 0;
  }));
  return { inputIds, attentionMask: mask, tokenTypeIds: types, batch: B, seq: T };
}

const MODEL_KINDS = ['WordPiece', 'BPE', 'Unigram'];
const RESAVE = "re-save it with transformers' tokenizer.save_pretrained(), or remove it so that vocab.txt is used";

/**
 * The library's Tokenizer, with its errors named: a tokenizer.json without "model" fails inside it as
 * "Cannot read properties of undefined", an unknown normaliser as "Unknown Normalizer type", neither
 * naming the file.
 */
function buildTokenizer(json: Record<string, unknown>, config: Record<string, unknown>, file: string): Tokenizer {
  const model = json.model as { type?: unknown; vocab?: unknown } | null | undefined;
  if (!model || typeof model !== 'object' || Array.isArray(model)) throw new Error(`${file}: has no "model" (the vocabulary and its WordPiece/BPE/Unigram type); ${RESAVE}`);
  if (typeof model.vocab !== 'object' || model.vocab === null) throw new Error(`${file}: "model" has no "vocab"; ${RESAVE}`);
  // with a vocab, the library guesses a model for any other type (transformers.js' legacy fallback): refuse that guess
  if (model.type !== undefined && !MODEL_KINDS.includes(model.type as string)) throw new Error(`${file}: model type ${JSON.stringify(model.type)} is not supported (${MODEL_KINDS.join(', ')}); ${RESAVE}`);
  if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens)) throw new Error(`${file}: "added_tokens" is not a list; ${RESAVE}`);
  try {
    return new Tokenizer(json, config);
  } catch (e) {
    throw new Error(`${file}: not a tokenizer @huggingface/tokenizers can load (${(e as Error).message}); ${RESAVE}`);
  }
}

/** The tokenizer.json that transformers' BertTokenizerFast builds from a vocab.txt. */
export function wordPieceFromVocab(file: string, config: Record<string, unknown>): Record<string, unknown> {
  const words = readText(file).split(/\r?\n/);
  if (words.length && words[words.length - 1] === '') words.pop();
  return wordPieceTokenizerJson(words, config, file);
}

/** tokenizer.json of an uncased (by default) BERT WordPiece vocabulary given as a list. */
export function wordPieceTokenizerJson(words: string[], config: Record<string, unknown>, file = 'vocabulary'): Record<string, unknown> {
  if (words.length === 0) throw new Error(`${file}: empty vocabulary`);
  const vocab: Record<string, number> = {};
  words.forEach((w, i) => { if (!(w in vocab)) vocab[w] = i; });
  const need = (t: string): number => {
    if (!(t in vocab)) throw new Error(`${file}: has no ${t} token (a BERT vocabulary has [PAD], [UNK], [CLS], [SEP], [MASK])`);
    return vocab[t];
  };
  const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].filter((t) => t in vocab);
  const lower = config.do_lower_case === undefined ? true : Boolean(config.do_lower_case);
  return {
    version: '1.0',
    added_tokens: special.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: config.strip_accents ?? null, lowercase: lower },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', need('[SEP]')], cls: ['[CLS]', need('[CLS]')] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}
