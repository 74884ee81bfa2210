/**
 * From per-window start/end logits to one answer text per question, as transformers'
 * utils_qa.postprocess_qa_predictions does:
 *  - in each window, every pair of the nBest highest start and nBest highest end positions that are
 *    both context tokens, end >= start, and at most maxAnswerLength tokens long is a candidate scored
 *    start_logit + end_logit; candidates of all the windows of a question are pooled;
 *  - the null answer scores start_logits[CLS] + end_logits[CLS], the minimum over the windows (every
 *    window must agree that there is no answer);
 *  - v2.0: the null answer joins the pool, and wins when null_score - (best non-empty start + end
 *    logits) > nullScoreDiffThreshold; v1.1: the best candidate always answers;
 *  - the nBest list carries softmax probabilities over the kept candidates.
 * Ties: positions with equal logits are taken lowest index first (numpy's argsort leaves their order
 * unspecified); candidates with equal scores keep window, start, end order (Python's stable sort).
 */
import { CLS_INDEX, type QaFeature } from './features.js';
import type { QaExample } from './squad.js';

export interface PostprocessOptions {
  /** SQuAD v2.0: questions may have no answer (version_2_with_negative) */
  v2?: boolean;
  nBest?: number;
  maxAnswerLength?: number;
  nullScoreDiffThreshold?: number;
}

export interface Candidate { text: string; startLogit: number; endLogit: number; probability: number }

export interface QaPredictions {
  /** id -> answer text ("" = no answer): what predictions.json holds */
  predictions: Record<string, string>;
  nbest: Record<string, Candidate[]>;
  /** v2.0: id -> null score minus the best non-empty answer's score (null_odds.json; usable as the official script's na_prob file) */
  scoreDiff: Record<string, number>;
}

/** Indices of the n largest values, largest first, ties lowest index first. */
function topN(xs: ArrayLike<number>, n: number, len: number): number[] {
  const idx = Array.from({ length: len }, (_, i) => i);
  idx.sort((a, b) => xs[b] - xs[a] || a - b);
  return idx.slice(0, n);
}

/**
 * startLogits[f] / endLogits[f]: the logits of feature f over its positions (rows may be longer:
 * padding past the feature's tokens is never chosen).
 */
export function postprocessQa(examples: QaExample[], features: QaFeature[], startLogits: ArrayLike<number>[], endLogits: ArrayLike<number>[], o: PostprocessOptions = {}): QaPredictions {
  const nBest = o.nBest ?? 20, maxLen = o.maxAnswerLength ?? 30, thr = o.nullScoreDiffThreshold ?? 0, v2 = o.v2 ?? false;
  if (startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new Error(`${startLogits.length} start and ${endLogits.length} end logit rows for ${features.length} features`);
  }
  const byExample = new Map<number, number[]>();
  features.forEach((f, i) => { const l = byExample.get(f.example) ?? []; l.push(i); byExample.set(f.example, l); });
  const out: QaPredictions = { predictions: {}, nbest: {}, scoreDiff: {} };
  examples.forEach((x, ei) => {
    const fs = byExample.get(ei) ?? [];
    if (fs.length === 0) throw new Error(`question "${x.id}" has no features (build them with qaFeatures from the same examples)`);
    type Pre = { start: number; end: number; score: number; startLogit: number; endLogit: number; isNull: boolean };
    let minNull: Pre | null = null;
    const pre: Pre[] = [];
    for (const fi of fs) {
      const f = features[fi], s = startLogits[fi], e = endLogits[fi], len = f.offsets.length;
      if (s.length < len || e.length < len) throw new Error(`feature ${fi} of "${x.id}": logits for ${Math.min(s.length, e.length)} positions, the feature has ${len}`);
      for (let t = 0; t < len; t++) if (!Number.isFinite(s[t]) || !Number.isFinite(e[t])) throw new Error(`feature ${fi} of "${x.id}": logit ${s[t]}/${e[t]} at position ${t} is not finite`);
      const nullScore = s[CLS_INDEX] + e[CLS_INDEX];
      if (minNull === null || minNull.score > nullScore) minNull = { start: 0, end: 0, score: nullScore, startLogit: s[CLS_INDEX], endLogit: e[CLS_INDEX], isNull: true };
      const starts = topN(s, nBest, len), ends = topN(e, nBest, len);
      for (const i of starts) {
        for (const j of ends) {
          const a = f.offsets[i], b = f.offsets[j];
          if (!a || !b) continue;
          if (j < i || j - i + 1 > maxLen) continue;
          pre.push({ start: a[0], end: b[1], score: s[i] + e[j], startLogit: s[i], endLogit: e[j], isNull: false });
        }
      }
    }
    if (v2) pre.push(minNull!);
    let kept = pre.map((p, k) => ({ p, k })).sort((u, v) => v.p.score - u.p.score || u.k - v.k).slice(0, nBest).map((u) => u.p);
    if (v2 && !kept.some((p) => p.isNull)) kept.push(minNull!);
    let cands = kept.map((p) => ({ text: p.isNull ? '' : x.context.slice(p.start, p.end), score: p.score, startLogit: p.startLogit, endLogit: p.endLogit }));
    // utils_qa's guard for a question with no non-null candidate at all
    if (cands.length === 0 || (cands.length === 1 && cands[0].text === '')) cands = [{ text: 'empty', score: 0, startLogit: 0, endLogit: 0 }, ...cands];
    const max = Math.max(...cands.map((c) => c.score));
    const exps = cands.map((c) => Math.exp(c.score - max)), sum = exps.reduce((a, b) => a + b, 0);
    out.nbest[x.id] = cands.map((c, k) => ({ text: c.text, startLogit: c.startLogit, endLogit: c.endLogit, probability: exps[k] / sum }));
    if (!v2) { out.predictions[x.id] = cands[0].text; return; }
    const best = cands.find((c) => c.text !== '') ?? { text: 'empty', startLogit: 0, endLogit: 0 };
    const diff = minNull!.score - best.startLogit - best.endLogit;
    out.scoreDiff[x.id] = diff;
    out.predictions[x.id] = diff > thr ? '' : best.text;
  });
  return out;
}
