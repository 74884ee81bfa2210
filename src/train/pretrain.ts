/**
 * Pretraining of the embedded models, both through the training loop (its AdamW, linear warmup and
 * decay, clipping at 1, held-out evaluation every N steps and at the end, checkpoints and resume):
 *  - a BERT encoder with masked language modelling (objectives/mlm.ts) or ELECTRA's replaced-token
 *    detection (objectives/electra.ts);
 *  - a LLaMA-style decoder as a causal LM (objectives/causal-lm.ts on packed corpus text, every token
 *    trained), with its vocabulary cut down from bert-base-uncased's WordPiece pieces.
 * The result is the final state (no best-state selection: held-out loss is only watched).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { applyPrecision, setMatmulPrecision, type Precision, type PrecisionInfo } from '../engine/precision.js';
import { Rng } from '../engine/random.js';
import { gradOf, type Tensor } from '../engine/tensor.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { readExamples } from '../io/dataset.js';
import { Checkpoint, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { TextTokenizer, wordPieceTokenizerJson } from '../io/tokenizer.js';
import { BertForSequenceClassification, bertConfigFrom, type BertConfig } from '../models/bert.js';
import type { DecoderModel } from '../models/decoder.js';
import { fillFromCheckpoint } from '../models/load.js';
import type { HfConfig, Model } from '../models/model.js';
import { readConfig } from '../models/registry.js';
import { DEFAULT_TRAIN, train } from './loop.js';
import type { Objective } from './objective.js';
import { causalLmObjective, type LmEncoded } from './objectives/causal-lm.js';
import { ElectraParts, electraObjective } from './objectives/electra.js';
import { mlmObjective, type MlmIds } from './objectives/mlm.js';

export { maskBatch, mlmEval, packCorpus, saveMlmModel, type MlmBatch, type MlmIds } from './objectives/mlm.js';

export interface PretrainConfig {
  seq: number; batch: number; steps: number; lr: number; warmupRatio: number; weightDecay: number;
  /** MLM only: the fraction of tokens predicted */
  maskProb: number;
  /** MLM only: the fraction masked for the held-out evaluation (default maskProb), so runs that train at other rates are measured alike */
  evalMaskProb?: number;
  seed: number; checkpointEvery: number; evalEvery: number;
}

export interface PretrainResult {
  step: number; seconds: number; history: { step: number; loss: number; accuracy: number }[];
  /** the matmul precision that ran (mixed precision: the block Linears' products in bf16, f32 master weights) */
  precision?: PrecisionInfo;
}

interface RunArgs {
  outDir: string; resume?: boolean; onStep?: (step: number, total: number, loss: number, acc: number | null) => void;
  /**
   * The block Linears' products (default fp32): bf16 is mixed precision, f32 master weights rounded to bf16
   * at each use for the forward product and the input gradient, weight gradients and everything else
   * float32 (precision.ts); auto picks bf16 where the CPU has bf16 matrix units.
   */
  precision?: Precision;
  /** where the precision line goes (default stderr) */
  log?: (line: string) => void;
}

/** One pretraining run of `objective` over `params` (every weight of the model) by the training loop. */
function runPretraining(model: Model, params: Tensor[], objective: Objective, c: PretrainConfig, a: RunArgs): PretrainResult {
  if (c.steps === 0) return { step: 0, seconds: 0, history: [] }; // the random initialisation is the result
  // as many epochs as the steps need; maxSteps ends the run (and is the schedule's length)
  const epochs = Math.ceil(c.steps / objective.batchesPerEpoch());
  const precision = applyPrecision(model, a.precision ?? 'fp32', a.log, { trained: true }); // after requiresGrad is set
  try {
    const r = trainFor(model, params, objective, c, a, epochs);
    return { ...r, precision };
  } finally {
    setMatmulPrecision('fp32');
  }
}

function trainFor(model: Model, params: Tensor[], objective: Objective, c: PretrainConfig, a: RunArgs, epochs: number): PretrainResult {
  const r = train({
    model, params, objective, outDir: a.outDir, resume: a.resume,
    config: { ...DEFAULT_TRAIN, epochs, batchSize: c.batch, lr: c.lr, weightDecay: c.weightDecay, warmupRatio: c.warmupRatio, schedule: 'linear', maxGradNorm: 1,
      gradAccum: 1, evalEvery: c.evalEvery, patience: 0, seed: c.seed, maxLength: c.seq, checkpointEvery: c.checkpointEvery, maxSteps: c.steps },
    onStep: a.onStep,
  });
  return { step: r.steps, seconds: r.trainSeconds, history: r.history.map((h) => ({ step: h.step, loss: h.loss, accuracy: h.primary })) };
}

/** MLM pretraining of a BERT encoder (every weight trained). */
export function pretrain(args: RunArgs & {
  model: BertForSequenceClassification; chunks: Int32Array[]; heldOut: Int32Array[]; ids: MlmIds; config: PretrainConfig;
}): PretrainResult {
  const { model, config: c } = args;
  const params = model.params.names().map((n) => model.params.get(n));
  for (const p of params) p.requiresGrad = true;
  try {
    const objective = mlmObjective({ model, chunks: args.chunks, heldOut: args.heldOut, ids: args.ids, batch: c.batch, maskProb: c.maskProb, evalMaskProb: c.evalMaskProb, seed: c.seed });
    return runPretraining(model, params, objective, c, args);
  } finally {
    for (const p of params) p.requiresGrad = false;
  }
}

/**
 * ELECTRA pretraining of a BERT encoder (objectives/electra.ts): every weight of the discriminator
 * (but its MLM head, which the objective does not use) and of the generator and token head trained.
 * The generator starts as a copy of the discriminator's first blocks when copyGenerator (a `--from`
 * model), else at random. The discriminator is `model`, saved as before.
 */
export function pretrainElectra(args: RunArgs & {
  model: BertForSequenceClassification; chunks: Int32Array[]; heldOut: Int32Array[]; ids: MlmIds; config: PretrainConfig;
  generatorLayers: number; discWeight: number; copyGenerator: boolean;
}): PretrainResult & { parts: ElectraParts } {
  const { model, config: c } = args;
  const parts = new ElectraParts(model, args.generatorLayers, { copy: args.copyGenerator, seed: c.seed + 1 });
  const params = [...model.params.names().filter((n) => !n.startsWith('cls.predictions.')).map((n) => model.params.get(n)),
    ...parts.params.names().map((n) => parts.params.get(n))];
  for (const p of params) p.requiresGrad = true;
  try {
    const objective = electraObjective({ parts, chunks: args.chunks, heldOut: args.heldOut, ids: args.ids, batch: c.batch, maskProb: c.maskProb, evalMaskProb: c.evalMaskProb, discWeight: args.discWeight, seed: c.seed });
    return { ...runPretraining(model, params, objective, c, args), parts };
  } finally {
    for (const p of params) p.requiresGrad = false;
  }
}

/**
 * The token ids masking needs, from a BERT tokenizer: [CLS], [SEP], [MASK], and the first real word
 * piece after them (random replacements are drawn from there to the end of the vocabulary, so never
 * a special or an [unusedN] slot). `source` names the tokenizer in errors.
 */
export function mlmIdsOf(tok: TextTokenizer, vocabSize: number, source: string): MlmIds {
  const id = (t: string): number => {
    const i = tok.tokenId(t);
    if (i === undefined) throw new Error(`${source}: the tokenizer has no ${t} token; masked-language-model pretraining needs BERT's [CLS], [SEP] and [MASK]`);
    return i;
  };
  const cls = id('[CLS]'), sep = id('[SEP]'), mask = id('[MASK]');
  let firstWord = Math.max(cls, sep, mask) + 1;
  while (firstWord < vocabSize && /^\[.*\]$/.test(tok.tokenText(firstWord) ?? '[]')) firstWord++;
  if (firstWord >= vocabSize) throw new Error(`${source}: no word piece after the special tokens (ids above ${mask}); is vocab_size right?`);
  return { cls, sep, mask, vocab: vocabSize, firstWord, special: tok.specialIds };
}

/** A BERT masked-LM folder read back to continue pretraining it: the model (every weight float32), its tokenizer, its pretrain.json and MODEL_CARD.md when present. */
export interface MlmFolder {
  dir: string;
  model: BertForSequenceClassification;
  config: BertConfig;
  tokenizer: TextTokenizer;
  ids: MlmIds;
  /** the folder's pretrain.json (its lineage), null when it has none (a transformers checkpoint) */
  summary: Record<string, unknown> | null;
  card: string | null;
}

/**
 * Loads a BertForMaskedLM folder (one `gelora pretrain` wrote, or a transformers checkpoint with
 * its cls.predictions head) with the MLM head and float32 weights, ready to train. A folder of another
 * model type, or a BERT checkpoint without the MLM head (a classifier), is an error naming the folder.
 */
export function loadMlmFolder(dir: string): MlmFolder {
  const fix = '--from takes a BERT masked-LM folder (one `gelora pretrain` wrote, or a transformers BertForMaskedLM checkpoint)';
  const hf = readConfig(dir);
  if (hf.model_type !== 'bert') throw new Error(`${join(dir, 'config.json')}: model_type "${hf.model_type}" is not "bert"; ${fix}`);
  const config = bertConfigFrom(hf);
  const model = new BertForSequenceClassification(config, 'bert', undefined, 'mlm');
  const ckpt = new Checkpoint(dir);
  try {
    const report = fillFromCheckpoint(model, ckpt, 0, false, false); // float32: every weight is trained
    const head = report.initialised.filter((n) => n.startsWith('cls.predictions.'));
    if (head.length) throw new Error(`${dir}: the checkpoint has no masked-LM head (${head.join(', ')} missing): it is not a BertForMaskedLM; ${fix}`);
  } finally {
    ckpt.close();
  }
  const tokenizer = TextTokenizer.fromDir(dir);
  const ids = mlmIdsOf(tokenizer, config.vocab_size, tokenizer.source);
  const read = (f: string): string | null => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : null);
  const summaryText = read('pretrain.json');
  let summary: Record<string, unknown> | null = null;
  if (summaryText !== null) {
    try { summary = JSON.parse(summaryText) as Record<string, unknown>; } catch (e) { throw new Error(`${join(dir, 'pretrain.json')}: not valid JSON (${(e as Error).message}); fix or remove it (it only records the folder's lineage)`); }
  }
  return { dir, model, config, tokenizer, ids, summary, card: read('MODEL_CARD.md') };
}

/**
 * Unlabeled texts of a task file for task-adaptive pretraining: whatever `gelora train --train`
 * reads (CSV, TSV, JSONL, parquet with a text column, or plain .txt with one text per line; a pair
 * column's texts are taken too, as lines of their own), with a seeded 1% of the lines (at least one)
 * held out to measure MLM accuracy. Labels are never read.
 */
export async function readPretrainingTexts(file: string, o: { textCol?: string; seed?: number } = {}): Promise<{ lines: string[]; heldOut: string[]; textCol: string; pairCol?: string }> {
  const { examples, textCol, pairCol } = await readExamples(file, { textCol: o.textCol });
  const texts = examples.flatMap((e) => (e.pair !== undefined && e.pair.trim() !== '' ? [e.text, e.pair] : [e.text]));
  if (texts.length < 2) throw new Error(`${file}: ${texts.length} text; pretraining needs at least 2 (one is held out)`);
  const rng = new Rng(o.seed ?? 99), lines: string[] = [], heldOut: string[] = [];
  for (const t of texts) (rng.next() < 0.01 ? heldOut : lines).push(t);
  if (heldOut.length === 0) heldOut.push(lines.pop()!);
  return { lines, heldOut, textCol, pairCol };
}

// ---------------------------------------------------------------------------------------------
// the decoder: vocabulary, tokenizer, packed corpus, tied head, training, saving

/** The decoder's special tokens, first in its vocabulary (ids 0..3). */
export const DECODER_SPECIALS = { pad: '[PAD]', unk: '[UNK]', bos: '[BOS]', eos: '[EOS]' } as const;

/**
 * A WordPiece vocabulary of `size` pieces cut from a larger one (bert-base-uncased's) by how often
 * the corpus uses each piece: the four specials, then every single character (and its ## form) the
 * corpus needs, so that every corpus word still tokenizes without [UNK], then the most frequent other
 * pieces (ties in the base vocabulary's order). Deterministic for a corpus. The projection to the
 * vocabulary is most of a small decoder's cost per token, hence the cut (8192 pieces cover 92% of
 * the corpus' bert-base-uncased tokens; the rest split into shorter pieces).
 */
export function subsetWordPieceVocab(base: string[], lines: string[], size: number, onProgress?: (done: number, total: number) => void): string[] {
  const cfg = { do_lower_case: true };
  const tok = new Tokenizer(wordPieceTokenizerJson(base, cfg), cfg);
  const counts = new Map<string, number>();
  lines.forEach((l, i) => {
    for (const t of tok.tokenize(l)) counts.set(t, (counts.get(t) ?? 0) + 1);
    if (onProgress && i % 5000 === 0) onProgress(i, lines.length);
  });
  const order = new Map(base.map((t, i) => [t, i]));
  const specials = Object.values(DECODER_SPECIALS) as string[];
  const chars = new Set<string>();
  for (const t of counts.keys()) {
    if (t === '[UNK]') continue;
    for (const ch of t.replace(/^##/, '')) { chars.add(ch); chars.add(`##${ch}`); }
  }
  const charPieces = [...chars].filter((c) => order.has(c)).sort((a, b) => order.get(a)! - order.get(b)!);
  if (specials.length + charPieces.length > size) throw new Error(`a vocabulary of ${size} pieces cannot hold the ${charPieces.length} single characters the corpus needs; raise --vocab`);
  const chosen = new Set<string>([...specials, ...charPieces]);
  const rest = [...counts.entries()].filter(([t]) => !chosen.has(t) && t !== '[UNK]' && order.has(t))
    .sort((a, b) => b[1] - a[1] || order.get(a[0])! - order.get(b[0])!);
  for (const [t] of rest) { if (chosen.size >= size) break; chosen.add(t); }
  return [...chosen];
}

/**
 * tokenizer.json of the decoder: bert-base-uncased's normaliser and pre-tokenizer (lower-case,
 * punctuation split) over a WordPiece vocabulary, with a post-processor that puts [BOS] before a
 * text (as a Llama tokenizer does) and nothing after it.
 */
export function decoderTokenizerJson(vocab: string[]): Record<string, unknown> {
  const s = DECODER_SPECIALS;
  if (vocab[0] !== s.pad || vocab[1] !== s.unk || vocab[2] !== s.bos || vocab[3] !== s.eos) throw new Error('the decoder vocabulary starts with [PAD], [UNK], [BOS], [EOS]');
  const v: Record<string, number> = {};
  vocab.forEach((w, i) => { if (!(w in v)) v[w] = i; });
  return {
    version: '1.0',
    added_tokens: Object.values(s).map((t) => ({ id: v[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: s.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: s.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }],
      special_tokens: { [s.bos]: { id: s.bos, ids: [v[s.bos]], tokens: [s.bos] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: s.unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: v },
  };
}

/** A chat template for the decoder (tokenizer_config.json chat_template): "user: ... assistant: ...[EOS]" turns after [BOS]. */
export const DECODER_CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}assistant: {{ message['content'] }}{{ eos_token }} {% else %}{{ message['role'] }}: {{ message['content'] }} {% endif %}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/** tokenizer_config.json of the decoder. */
export function decoderTokenizerConfig(maxLength: number): Record<string, unknown> {
  const s = DECODER_SPECIALS;
  return { tokenizer_class: 'PreTrainedTokenizerFast', do_lower_case: true, model_max_length: maxLength, bos_token: s.bos, eos_token: s.eos, pad_token: s.pad, unk_token: s.unk, add_bos_token: true, add_eos_token: false, chat_template: DECODER_CHAT_TEMPLATE };
}

/**
 * Causal-LM training sequences: each line as [BOS] pieces [EOS], all concatenated and cut into full
 * sequences of seq tokens (the last partial one dropped), every token a label (GPT-style packing:
 * attention runs across line boundaries).
 */
export function packCausalCorpus(tok: TextTokenizer, lines: string[], seq: number, bos: number, eos: number, onProgress?: (done: number, total: number) => void): LmEncoded[] {
  const out: LmEncoded[] = [];
  let cur: number[] = [];
  const push = (id: number): void => {
    cur.push(id);
    if (cur.length === seq) { out.push({ ids: cur, labels: cur }); cur = []; }
  };
  lines.forEach((l, i) => {
    push(bos);
    for (const id of tok.encodePlain(l)) push(id);
    push(eos);
    if (onProgress && i % 5000 === 0) onProgress(i, lines.length);
  });
  return out;
}

/**
 * Tied embeddings trained as one weight: the LM head's tensor shares the embedding's storage (as
 * the loader ties it) and its gradient buffer, so backward adds the head's gradient
 * to the embedding's, and only the embedding goes to the optimizer (AdamW over both would update the
 * one storage twice, with two sets of moments). Returns every weight to optimize.
 */
export function tiedTrainableParams(model: Model): Tensor[] {
  const p = model.params, params: Tensor[] = [];
  for (const name of p.names()) p.get(name).requiresGrad = true;
  for (const name of p.names()) {
    const src = p.tied.get(name), t = p.get(name);
    if (src === undefined) { params.push(t); continue; }
    t.tie(p.get(src)); // a model built from a config (not loaded) has its own head storage until tied
    t.grad = gradOf(p.get(src));
  }
  return params;
}

/** Causal-LM pretraining of a decoder on packed sequences (held-out: loss, perplexity, token accuracy). */
export function pretrainCausalLm(args: RunArgs & { model: DecoderModel; chunks: LmEncoded[]; heldOut: LmEncoded[]; padId: number; config: PretrainConfig }): PretrainResult {
  const { model, config: c } = args;
  if (args.chunks.length < c.batch) throw new Error(`the corpus packs into ${args.chunks.length} sequences, fewer than one batch of ${c.batch}`);
  const params = tiedTrainableParams(model);
  try {
    const lm = causalLmObjective({ train: args.chunks, dev: args.heldOut, padId: args.padId, batchSize: c.batch, seed: c.seed, info: { name: 'pretraining' } });
    return runPretraining(model, params, { ...lm, select: 'final' }, c, args);
  } finally {
    for (const n of model.params.names()) { const t = model.params.get(n); t.requiresGrad = false; if (model.params.tied.has(n)) t.grad = null; }
  }
}

/** A LlamaForCausalLM folder's weights and config (tied head left out, as save_pretrained does). */
export function saveCausalLmModel(dir: string, model: Model, config: HfConfig, dtype: 'f16' | 'f32'): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const n of model.params.names()) {
    if (model.params.tied.has(n)) continue;
    const p = model.params.get(n);
    tensors[n] = { shape: [...p.shape], data: p.toFloat32(), dtype: dtype === 'f16' ? 'F16' : 'F32' };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeJsonAtomic(join(dir, 'config.json'), { ...config, torch_dtype: dtype === 'f16' ? 'float16' : 'float32' });
}
