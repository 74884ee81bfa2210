/**
 * QA features: each (question, context) becomes one or more windows of at most maxLength tokens,
 * laid out by the tokenizer's post-processor ([CLS] question [SEP] context [SEP] for BERT,
 * <s> q </s></s> c </s> for RoBERTa), as transformers' run_qa.py prepares them:
 *  - the question is left-stripped and never truncated ("only_second": only the context is cut);
 *  - a long context is split into overlapping windows the way the Rust tokenizers make overflowing
 *    encodings with a stride: each window holds up to L = maxLength - question - special tokens
 *    context tokens, window k starts at k·(L - stride), and the last one ends at the context's end;
 *  - labels per window (the first gold answer, as run_qa trains): the tokens holding the answer's
 *    first and last characters, or the CLS index (position 0) when the answer is not wholly inside
 *    the window or the question has none.
 * offsets[t] is the [start, end) characters of a context token in the context, null for question,
 * special and padding positions (prepare_validation_features' convention), so post-processing only
 * picks context spans.
 */
import type { ModelInputs } from '../models/model.js';
import { padBatch, type TextTokenizer } from '../io/tokenizer.js';
import type { QaExample } from './squad.js';

export interface QaFeature {
  /** index of the example in the list given to qaFeatures, and its id */
  example: number;
  exampleId: string;
  ids: number[];
  typeIds: number[];
  offsets: ([number, number] | null)[];
  /** label positions (both the CLS index 0 when the answer is not in this window) */
  startPosition: number;
  endPosition: number;
}

export interface QaFeatureOptions {
  /** tokens per window, special tokens included (run_qa's max_seq_length, default 384) */
  maxLength?: number;
  /** context tokens shared by consecutive windows (run_qa's doc_stride, default 128) */
  stride?: number;
}

/** The CLS index: run_qa looks for cls_token_id and falls back to 0; every layout here puts it first. */
export const CLS_INDEX = 0;

export function qaFeatures(examples: QaExample[], tok: TextTokenizer, o: QaFeatureOptions = {}): QaFeature[] {
  const maxLength = o.maxLength ?? 384, stride = o.stride ?? 128;
  const layout = tok.pairLayout();
  const nSpecial = layout.before.ids.length + layout.between.ids.length + layout.after.ids.length;
  const contextCache = new Map<string, { ids: number[]; offsets: [number, number][] }>(); // SQuAD shares each paragraph among ~5 questions
  const out: QaFeature[] = [];
  examples.forEach((x, ei) => {
    const q = tok.encodeWithOffsets(x.question.replace(/^\s+/, '')).ids;
    let c = contextCache.get(x.context);
    if (!c) { c = tok.encodeWithOffsets(x.context); contextCache.set(x.context, c); }
    const budget = maxLength - q.length - nSpecial;
    if (budget <= 0) {
      throw new Error(`${x.where}: question "${x.id}" has ${q.length} tokens; with ${nSpecial} special tokens that leaves no room for the context in ${maxLength} (raise the max length or shorten the question)`);
    }
    if (stride >= budget && c.ids.length > budget) {
      throw new Error(`${x.where}: question "${x.id}": the stride (${stride}) must be smaller than the ${budget} context tokens a window holds next to its ${q.length}-token question (lower the stride or raise the max length)`);
    }
    const answer = x.answers[0];
    const startChar = answer?.start ?? -1, endChar = answer ? answer.start + answer.text.length : -1;
    const step = budget - stride;
    for (let from = 0; ; from += step) {
      const to = Math.min(from + budget, c.ids.length);
      const ids = [...layout.before.ids, ...q, ...layout.between.ids, ...c.ids.slice(from, to), ...layout.after.ids];
      const typeIds = [...layout.before.typeIds, ...q.map(() => layout.typeA), ...layout.between.typeIds, ...c.ids.slice(from, to).map(() => layout.typeB), ...layout.after.typeIds];
      const first = layout.before.ids.length + q.length + layout.between.ids.length; // position of the window's first context token
      const offsets: ([number, number] | null)[] = ids.map(() => null);
      for (let k = from; k < to; k++) offsets[first + k - from] = c.offsets[k];
      let startPosition = CLS_INDEX, endPosition = CLS_INDEX;
      if (answer && to > from) {
        let ts = first, te = first + (to - from) - 1;
        if (offsets[ts]![0] <= startChar && offsets[te]![1] >= endChar) {
          // run_qa walks these loops over the whole sequence; bounding them to the context keeps an
          // answer in the window's last token from running on into [SEP] and padding (offsets 0, 0)
          while (ts <= te && offsets[ts]![0] <= startChar) ts++;
          startPosition = ts - 1;
          while (te >= first && offsets[te]![1] >= endChar) te--;
          endPosition = te + 1;
        }
      }
      out.push({ example: ei, exampleId: x.id, ids, typeIds, offsets, startPosition, endPosition });
      if (to >= c.ids.length) break;
    }
  });
  return out;
}

/** A right-padded model batch of features, with their label positions. */
export function qaBatch(features: QaFeature[], padId: number): ModelInputs & { startPositions: Int32Array; endPositions: Int32Array } {
  const b = padBatch(features.map((f) => f.ids), features.map((f) => f.typeIds), padId);
  return { ...b, startPositions: Int32Array.from(features.map((f) => f.startPosition)), endPositions: Int32Array.from(features.map((f) => f.endPosition)) };
}
