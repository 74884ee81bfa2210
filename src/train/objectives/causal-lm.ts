/**
 * Causal-LM fine-tuning (supervised fine-tuning as PEFT/TRL users run it): each example is token ids
 * with labels per token, the ids themselves on the completion (or assistant turns) and -100 on the
 * prompt, the rest of the conversation and padding. The loss is transformers' causal-LM loss: logits
 * at position t predict the label at t + 1 (labels shifted left by one), mean cross-entropy over the
 * positions whose shifted label is not -100. Micro-batches are weighted by those tokens, so an
 * optimizer step's loss is the mean over every trained token of the step. Dev: loss, perplexity
 * exp(loss) and token accuracy (argmax = label over the same positions); the best state is selected
 * on token accuracy.
 *
 * Sequences longer than maxLength are cut from the left (the prompt goes first; the completion, at
 * the end, is kept), as TRL's truncation keeps the end for completion-only training. Packing
 * concatenates the examples (ids and labels) and cuts the stream into maxLength pieces, as TRL's
 * "wrapped" packing: attention then runs across example boundaries, which is what that strategy does.
 */
import { crossEntropy } from '../../engine/ops.js';
import { noGrad, scope, type Tensor } from '../../engine/tensor.js';
import { conversationSegments, type ChatTemplate, type LmExample } from '../../io/chat.js';
import { padBatch, type TextTokenizer } from '../../io/tokenizer.js';
import type { Model, ModelInputs } from '../../models/model.js';
import { epochBatches } from '../batches.js';
import { hashInts, type EvalResult, type Objective } from '../objective.js';

/** The label of positions without a loss (transformers' and PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

/** Token ids and per-token labels (not yet shifted), as a PEFT/TRL data collator builds them. */
export interface LmEncoded { ids: number[]; labels: number[] }

export interface LmEncodeOptions {
  tokenizer: TextTokenizer;
  /** the model's chat template (needed by messages rows) */
  template: ChatTemplate | null;
  maxLength: number;
  /** appended to a completion (prompt/completion rows), as TRL appends eos_token; null: nothing */
  eosId: number | null;
}

/** One example's ids and labels, cut from the left to maxLength (cut: whether it was). */
export function encodeLmExample(x: LmExample, o: LmEncodeOptions): { enc: LmEncoded; cut: boolean } {
  const ids: number[] = [], labels: number[] = [];
  const push = (piece: number[], train: boolean): void => { for (const id of piece) { ids.push(id); labels.push(train ? id : IGNORE_INDEX); } };
  if (x.kind === 'prompt-completion') {
    // the tokenizer's own special tokens (bos) around the prompt, as tokenizer(prompt) gives them
    push(o.tokenizer.encode(x.prompt, null, { maxLength: Number.MAX_SAFE_INTEGER }).ids, false);
    push([...o.tokenizer.encodePlain(x.completion), ...(o.eosId === null ? [] : [o.eosId])], true);
  } else {
    if (!o.template) throw new Error(`${x.where}: a messages row needs a chat template, and the model folder has none (no chat_template in tokenizer_config.json, no chat_template.jinja); give prompt/completion rows or add the template`);
    // the template writes the special tokens itself (apply_chat_template tokenizes without adding any)
    for (const s of conversationSegments(o.template, x.messages, x.where, x.completionFrom)) push(o.tokenizer.encodePlain(s.text), s.train);
  }
  if (!labels.some((l) => l !== IGNORE_INDEX)) throw new Error(`${x.where}: the completion has no tokens`);
  const cut = ids.length > o.maxLength;
  const enc = cut ? { ids: ids.slice(-o.maxLength), labels: labels.slice(-o.maxLength) } : { ids, labels };
  if (!enc.labels.slice(1).some((l) => l !== IGNORE_INDEX)) throw new Error(`${x.where}: cut to --max-length ${o.maxLength} from the left, nothing of the completion is left to predict; raise --max-length`);
  return { enc, cut };
}

/** Every example encoded; truncated: how many were cut from the left (the caller warns). */
export function encodeLmExamples(xs: LmExample[], o: LmEncodeOptions): { encoded: LmEncoded[]; truncated: number } {
  let truncated = 0;
  const encoded = xs.map((x) => { const r = encodeLmExample(x, o); if (r.cut) truncated++; return r.enc; });
  return { encoded, truncated };
}

/** The examples concatenated and cut into pieces of maxLength tokens (the last may be shorter); pieces without a trained token are dropped. */
export function packLm(xs: LmEncoded[], maxLength: number): LmEncoded[] {
  const ids = xs.flatMap((x) => x.ids), labels = xs.flatMap((x) => x.labels), out: LmEncoded[] = [];
  for (let s = 0; s < ids.length; s += maxLength) {
    const piece = { ids: ids.slice(s, s + maxLength), labels: labels.slice(s, s + maxLength) };
    if (piece.labels.slice(1).some((l) => l !== IGNORE_INDEX)) out.push(piece);
  }
  return out;
}

/**
 * Labels [B, T] shifted left by one (row-major): position t gets the label of t + 1, the last
 * position of each row IGNORE_INDEX; so logits at t are scored against the next token.
 */
export function shiftLabels(labels: ArrayLike<number>, B: number, T: number): Int32Array {
  const out = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) out[b * T + t] = labels[b * T + t + 1];
  return out;
}

/** transformers' causal-LM loss: mean cross-entropy of logits [B, T, V] against the shifted labels [B * T] (IGNORE_INDEX skipped), or of lmLogits' rows against their targets. */
export function causalLmLoss(logits: Tensor, shifted: Int32Array): Tensor {
  return crossEntropy(logits, shifted, IGNORE_INDEX);
}

/** A batch of the causal-LM objective: inputs, shifted labels [B * T], and the scored positions with their labels. */
export interface LmBatch {
  x: ModelInputs;
  shifted: Int32Array;
  /** trained tokens: positions whose shifted label is not IGNORE_INDEX */
  tokens: number;
  /** those positions (flat b * T + t, ascending) and their labels */
  positions: Int32Array;
  targets: Int32Array;
}

/** A right-padded batch (labels IGNORE_INDEX on padding) with its shifted labels and the number of trained tokens. */
export function lmBatch(rows: LmEncoded[], padId: number): LmBatch {
  const x = padBatch(rows.map((r) => r.ids), null, padId);
  const labels = new Int32Array(x.batch * x.seq).fill(IGNORE_INDEX);
  rows.forEach((r, b) => labels.set(r.labels, b * x.seq));
  const shifted = shiftLabels(labels, x.batch, x.seq);
  const positions: number[] = [];
  shifted.forEach((l, i) => { if (l !== IGNORE_INDEX) positions.push(i); });
  return { x, shifted, tokens: positions.length, positions: Int32Array.from(positions), targets: Int32Array.from(positions, (i) => shifted[i]) };
}

/**
 * Logits of a batch's scored positions only ([tokens, vocab], ForwardOptions.logitRows) and their
 * labels: the same loss as causalLmLoss over all [B, T, V] logits, without the unscored rows' share
 * of the vocabulary projection (prompts and padding).
 */
export function lmLogits(model: Model, b: LmBatch): { logits: Tensor; targets: Int32Array } {
  return { logits: model.forward(b.x, { keepHidden: false, logitRows: b.positions }).logits, targets: b.targets };
}

/** Trained tokens of a set of rows (labels after the first position that are not IGNORE_INDEX). */
function trainedTokens(rows: LmEncoded[]): number {
  let n = 0;
  for (const r of rows) for (let t = 1; t < r.labels.length; t++) if (r.labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/** Dev loss (mean over trained tokens), perplexity and token accuracy; no gradients. */
export function evaluateLm(model: Model, rows: LmEncoded[], padId: number, batchSize: number): EvalResult {
  const order = [...rows.keys()].sort((a, b) => rows[a].ids.length - rows[b].ids.length);
  let lossSum = 0, correct = 0, n = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const b = lmBatch(order.slice(s, s + batchSize).map((i) => rows[i]), padId);
    if (b.tokens === 0) continue;
    noGrad(() => scope(() => {
      const { logits, targets } = lmLogits(model, b);
      lossSum += causalLmLoss(logits, targets).item() * b.tokens;
      const V = logits.shape[logits.ndim - 1], d = logits.data;
      targets.forEach((y, r) => {
        let best = 0;
        for (let v = 1; v < V; v++) if (d[r * V + v] > d[r * V + best]) best = v;
        if (best === y) correct++;
      });
      n += b.tokens;
    }));
  }
  if (n === 0) throw new Error('the dev set has no completion tokens to score');
  const loss = lossSum / n, accuracy = correct / n;
  return { metrics: { loss, perplexity: Math.exp(loss), token_accuracy: accuracy }, primary: accuracy, loss };
}

export interface CausalLmOptions {
  train: LmEncoded[];
  dev: LmEncoded[];
  padId: number;
  /** sequences per batch */
  batchSize: number;
  seed: number;
  /** gelora_task.json fields beyond kind and metric (data name, max length, packing, template) */
  info?: Record<string, unknown>;
}

/** The causal-LM objective over encoded (and, when asked, packed) sequences. */
export function causalLmObjective(o: CausalLmOptions): Objective {
  if (o.train.length === 0) throw new Error('no training sequences');
  if (o.dev.length === 0) throw new Error('no dev sequences');
  const lengths = o.train.map((r) => r.ids.length);
  return {
    kind: 'causal-lm', metric: 'token_accuracy', select: 'best',
    saved: { info: { kind: 'causal-lm', metric: 'token_accuracy', ...o.info }, config: {} },
    epochBatches: (epoch) => epochBatches(o.train.length, lengths, o.batchSize, o.seed, epoch),
    batchesPerEpoch: () => Math.ceil(o.train.length / o.batchSize),
    weight: (idx) => trainedTokens(idx.map((i) => o.train[i])),
    loss: (model, idx) => {
      const { logits, targets } = lmLogits(model, lmBatch(idx.map((i) => o.train[i]), o.padId));
      return causalLmLoss(logits, targets);
    },
    evaluate: (model) => evaluateLm(model, o.dev, o.padId, o.batchSize),
    fingerprint: () => ({
      kind: 'causal-lm', train_sequences: o.train.length, dev_sequences: o.dev.length,
      data: hashInts((push) => { for (const set of [o.train, o.dev]) for (const r of set) { push(r.ids.length); r.ids.forEach(push); r.labels.forEach(push); } }),
    }),
  };
}
