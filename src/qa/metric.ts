/**
 * EM and F1 as the official SQuAD evaluation scripts compute them (evaluate-v1.1.py, evaluate-v2.0.py).
 * Both normalize an answer the same way: lower case, drop ASCII punctuation (Python's
 * string.punctuation), replace the words a/an/the by a space (Python's Unicode \b: letters, digits and
 * _ are word characters), collapse whitespace (str.split: Unicode whitespace); tokens are the
 * whitespace-separated pieces. They differ in the edges:
 *  - v1.1: gold answers are taken as they are; F1 is 0 when no token is shared (so an empty
 *    prediction against an empty gold is 0); a question without a prediction scores 0 and counts;
 *  - v2.0: gold answers that normalize to "" are dropped and a question left with none has the single
 *    gold answer "" (no answer); F1 is 1 when both sides have no tokens and 0 when only one has none;
 *    scores split into HasAns (the question has answers) and NoAns; with na_probs, a question whose
 *    no-answer probability exceeds the threshold counts as answered "" and best thresholds are
 *    searched (find_best_thresh). The script stops on a question without a prediction; so does this.
 * Scores are percentages, as the scripts print them.
 */
import type { QaExample } from './squad.js';

const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
/** Python's str.split() whitespace */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

export function normalizeAnswer(s: string): string {
  const noPunct = [...s.toLowerCase()].filter((c) => !PUNCT.has(c)).join('');
  return tokens(noPunct.replace(ARTICLES, ' ')).join(' ');
}

function tokens(s: string): string[] { return s.split(PY_SPACE).filter((t) => t !== ''); }

export function exactMatch(gold: string, pred: string): number { return normalizeAnswer(gold) === normalizeAnswer(pred) ? 1 : 0; }

/** Token F1 of one prediction against one gold answer; `version` picks the scripts' empty-answer rule. */
export function f1Score(gold: string, pred: string, version: 'v1.1' | 'v2.0' = 'v2.0'): number {
  const g = tokens(normalizeAnswer(gold)), p = tokens(normalizeAnswer(pred));
  if (version === 'v2.0' && (g.length === 0 || p.length === 0)) return g.length === p.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) { const c = counts.get(t) ?? 0; if (c > 0) { same++; counts.set(t, c - 1); } }
  if (same === 0) return 0;
  const precision = same / p.length, recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

export interface SquadScores {
  exact: number;
  f1: number;
  total: number;
  HasAns_exact?: number; HasAns_f1?: number; HasAns_total?: number;
  NoAns_exact?: number; NoAns_f1?: number; NoAns_total?: number;
  best_exact?: number; best_exact_thresh?: number; best_f1?: number; best_f1_thresh?: number;
  /** v1.1: questions without a prediction (scored 0) */
  missing: string[];
}

export interface EvaluateOptions {
  /** which official script to follow (default: v2.0 when a question has no answer, else v1.1) */
  version?: 'v1.1' | 'v2.0';
  /** v2.0: id -> probability of no answer (the script's --na-prob-file) */
  naProbs?: Record<string, number>;
  /** v2.0: --na-prob-thresh (default 1.0) */
  naProbThresh?: number;
}

export function squadEvaluate(examples: QaExample[], predictions: Record<string, string>, o: EvaluateOptions = {}): SquadScores {
  const version = o.version ?? (examples.some((x) => x.answers.length === 0) ? 'v2.0' : 'v1.1');
  const has = (id: string): boolean => Object.prototype.hasOwnProperty.call(predictions, id);
  if (version === 'v1.1') {
    let em = 0, f1 = 0;
    const missing: string[] = [];
    for (const x of examples) {
      if (x.answers.length === 0) throw new Error(`question "${x.id}" has no gold answer; SQuAD v1.1 scoring needs one (score v2.0 data with version 'v2.0')`);
      if (!has(x.id)) { missing.push(x.id); continue; }
      const p = predictions[x.id];
      em += Math.max(...x.answers.map((a) => exactMatch(a.text, p)));
      f1 += Math.max(...x.answers.map((a) => f1Score(a.text, p, 'v1.1')));
    }
    return { exact: (100 * em) / examples.length, f1: (100 * f1) / examples.length, total: examples.length, missing };
  }
  const missing = examples.filter((x) => !has(x.id)).map((x) => x.id);
  if (missing.length) throw new Error(`no prediction for ${missing.length} question${missing.length > 1 ? 's' : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''} (SQuAD v2.0 scores every question; predict "" for no answer)`);
  const exactRaw = new Map<string, number>(), f1Raw = new Map<string, number>(), hasAns = new Map<string, boolean>();
  for (const x of examples) {
    hasAns.set(x.id, x.answers.length > 0);
    const golds = x.answers.map((a) => a.text).filter((t) => normalizeAnswer(t) !== '');
    if (golds.length === 0) golds.push('');
    const p = predictions[x.id];
    exactRaw.set(x.id, Math.max(...golds.map((g) => exactMatch(g, p))));
    f1Raw.set(x.id, Math.max(...golds.map((g) => f1Score(g, p, 'v2.0'))));
  }
  const naProbs = o.naProbs ?? Object.fromEntries(examples.map((x) => [x.id, 0]));
  const thresh = o.naProbThresh ?? 1.0;
  const applyThresh = (raw: Map<string, number>): Map<string, number> => new Map([...raw].map(([id, s]) => {
    const na = naProbs[id];
    if (typeof na !== 'number') throw new Error(`no no-answer probability for question "${id}" (naProbs must cover every question)`);
    return [id, na > thresh ? (hasAns.get(id) ? 0 : 1) : s];
  }));
  const exact = applyThresh(exactRaw), f1 = applyThresh(f1Raw);
  const mean = (m: Map<string, number>, ids: string[]): number => (100 * ids.reduce((a, id) => a + m.get(id)!, 0)) / ids.length;
  const all = examples.map((x) => x.id), yes = all.filter((id) => hasAns.get(id)), no = all.filter((id) => !hasAns.get(id));
  const out: SquadScores = { exact: mean(exact, all), f1: mean(f1, all), total: all.length, missing: [] };
  if (yes.length) Object.assign(out, { HasAns_exact: mean(exact, yes), HasAns_f1: mean(f1, yes), HasAns_total: yes.length });
  if (no.length) Object.assign(out, { NoAns_exact: mean(exact, no), NoAns_f1: mean(f1, no), NoAns_total: no.length });
  if (o.naProbs) {
    const [be, bet] = bestThresh(predictions, exactRaw, o.naProbs, hasAns), [bf, bft] = bestThresh(predictions, f1Raw, o.naProbs, hasAns);
    Object.assign(out, { best_exact: be, best_exact_thresh: bet, best_f1: bf, best_f1_thresh: bft });
  }
  return out;
}

/** find_best_thresh: answer "" above each candidate threshold; the best score and its threshold. */
function bestThresh(preds: Record<string, string>, scores: Map<string, number>, naProbs: Record<string, number>, hasAns: Map<string, boolean>): [number, number] {
  let cur = [...hasAns.values()].filter((h) => !h).length, best = cur, bestT = 0;
  const ids = Object.keys(naProbs).map((id, k) => ({ id, k })).sort((a, b) => naProbs[a.id] - naProbs[b.id] || a.k - b.k).map((u) => u.id);
  for (const id of ids) {
    if (!scores.has(id)) continue;
    cur += hasAns.get(id) ? scores.get(id)! : preds[id] ? -1 : 0;
    if (cur > best) { best = cur; bestT = naProbs[id]; }
  }
  return [(100 * best) / scores.size, bestT];
}
