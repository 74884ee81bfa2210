import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactMatch, f1Score, normalizeAnswer, squadEvaluate } from '../src/qa/metric.js';
import { postprocessQa } from '../src/qa/postprocess.js';
import type { QaFeature } from '../src/qa/features.js';
import type { QaExample } from '../src/qa/squad.js';

const close = (a: number, b: number, msg?: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${msg ?? ''} ${a} != ${b}`);
const ex = (id: string, answers: string[], context = ''): QaExample => ({ id, title: '', question: '?', context, answers: answers.map((text) => ({ text, start: 0 })), isImpossible: answers.length === 0, where: 'test' });

describe('SQuAD answer normalization (evaluate-v1.1.py / v2.0.py normalize_answer)', () => {
  it('lower case, ASCII punctuation out, articles out, whitespace collapsed', () => {
    // lower: "the  cat's, (big) hat!"; punctuation: "the  cats big hat"; articles: "   cats big hat"; split/join
    assert.equal(normalizeAnswer("The  Cat's, (big) hat!"), 'cats big hat');
    // \b is Unicode in Python: the "a" of "théa" follows a letter, so it is no article; the lone "a" is
    assert.equal(normalizeAnswer('théa a'), 'théa');
    // str.split() splits at no-break and em spaces too: "an" goes, then "apple pie"
    assert.equal(normalizeAnswer('an\u00a0apple\u2003pie'), 'apple pie');
    // "—" is not in string.punctuation: it stays, and it ends the word "a" (an article)
    assert.equal(normalizeAnswer('a—b'), '—b');
    assert.equal(normalizeAnswer('An'), '');
  });
  it('token F1 with repeated tokens (Counter intersection) and EM after normalization', () => {
    // gold [cat, sat, on, mat], pred [cat, on, mat, today]: 3 shared, P = R = 3/4
    close(f1Score('the cat sat on the mat', 'cat on a mat today'), 0.75);
    // gold [red, red, blue], pred [red, red, red]: min(2, 3) = 2 shared, P = R = 2/3
    close(f1Score('red red blue', 'red red red'), 2 / 3);
    // pred [dog, ran] vs gold [dog]: P = 1/2, R = 1, F1 = 2/3
    close(f1Score('A dog', 'dog ran'), 2 / 3);
    assert.equal(exactMatch('The Mat.', 'mat'), 1);
    assert.equal(exactMatch('on the mat', 'mat'), 0);
  });
  it('empty answers: v1.1 scores F1 0 when nothing is shared, v2.0 scores 1 when both are empty', () => {
    // "the" normalizes to "": v1.1 EM "" == "" is 1 but F1 has num_same 0 -> 0
    assert.equal(f1Score('the', '', 'v1.1'), 0);
    assert.equal(exactMatch('the', ''), 1);
    assert.equal(f1Score('', '', 'v2.0'), 1);
    assert.equal(f1Score('cat', '', 'v2.0'), 0);
    assert.equal(f1Score('', 'cat', 'v2.0'), 0);
  });
});

describe('squadEvaluate', () => {
  it('v1.1: max over gold answers, a missing prediction scores 0 and counts', () => {
    const xs = [ex('q1', ['on the mat', 'the mat']), ex('q2', ['A dog']), ex('q3', ['park'])];
    const s = squadEvaluate(xs, { q1: 'the mat', q2: 'dog ran' });
    // q1: EM 1 (second gold), F1 1; q2: EM 0, F1 2/3; q3 missing: 0, 0; total 3
    close(s.exact, 100 / 3);
    close(s.f1, (100 * (1 + 2 / 3)) / 3);
    assert.equal(s.total, 3);
    assert.deepEqual(s.missing, ['q3']);
    assert.equal(s.HasAns_total, undefined, 'v1.1 has no HasAns/NoAns split');
  });
  it('v2.0: golds that normalize to "" are dropped, no-answer gold is "", HasAns/NoAns split', () => {
    const xs = [ex('a1', ['on the mat']), ex('a2', []), ex('a3', ['A dog']), ex('a4', []), ex('a5', ['the', 'a cat'])];
    const preds = { a1: 'on the mat', a2: '', a3: 'the dog ran', a4: 'park', a5: 'cat' };
    const s = squadEvaluate(xs, preds);
    // EM: a1 1, a2 1, a3 0, a4 0, a5 1 (gold "the" dropped, "a cat" -> "cat"); F1: 1, 1, 2/3, 0, 1
    close(s.exact, (100 * 3) / 5);
    close(s.f1, (100 * (3 + 2 / 3)) / 5);
    assert.equal(s.total, 5);
    close(s.HasAns_exact!, (100 * 2) / 3);
    close(s.HasAns_f1!, (100 * (2 + 2 / 3)) / 3);
    assert.equal(s.HasAns_total, 3);
    close(s.NoAns_exact!, 50);
    close(s.NoAns_f1!, 50);
    assert.equal(s.NoAns_total, 2);
    // the same answer under v1.1 rules: a2/a4 have no gold, which v1.1 cannot score
    assert.throws(() => squadEvaluate(xs, preds, { version: 'v1.1' }), /"a2" has no gold answer/);
    assert.throws(() => squadEvaluate(xs, { a1: 'x' }), /no prediction for 4 questions: a2, a3, a4, a5/);
  });
  it('v2.0 with na_probs: the threshold turns answers into "", and the best thresholds', () => {
    const xs = [ex('a1', ['on the mat']), ex('a2', []), ex('a3', ['A dog']), ex('a4', [])];
    const preds = { a1: 'on the mat', a2: '', a3: 'the dog ran', a4: 'park' };
    const naProbs = { a1: 0.1, a2: 0.9, a3: 0.2, a4: 0.8 };
    const s = squadEvaluate(xs, preds, { naProbs, naProbThresh: 0.5 });
    // a2, a4 above 0.5 -> no answer -> 1 (both have none); a1 1/1, a3 0/(2/3)
    close(s.exact, 75);
    close(s.f1, (100 * (3 + 2 / 3)) / 4);
    // find_best_thresh over a1 (0.1), a3 (0.2), a4 (0.8), a2 (0.9), starting from 2 no-answer questions:
    // exact: +1 (a1) -> 3 at 0.1, +0, -1 (a4 answered "park"), 0 -> best 3/4 at 0.1
    close(s.best_exact!, 75);
    assert.equal(s.best_exact_thresh, 0.1);
    // f1: 2 -> 3 (0.1) -> 3 + 2/3 (0.2) -> 2 + 2/3 -> 2 + 2/3: best (3 + 2/3)/4 at 0.2
    close(s.best_f1!, (100 * (3 + 2 / 3)) / 4);
    assert.equal(s.best_f1_thresh, 0.2);
  });
});

// "alpha beta gamma delta": alpha 0-5, beta 6-10, gamma 11-16, delta 17-22
const CTX = 'alpha beta gamma delta';
const W = [[0, 5], [6, 10], [11, 16], [17, 22]] as [number, number][];
/** [CLS] q [SEP] alpha beta gamma delta [SEP] */
const fA: QaFeature = { example: 0, exampleId: 'x', ids: [], typeIds: [], offsets: [null, null, null, ...W, null], startPosition: 0, endPosition: 0 };
/** a second window: [CLS] q [SEP] gamma delta [SEP] */
const fB: QaFeature = { ...fA, offsets: [null, null, null, W[2], W[3], null] };
//                 CLS  q  SEP alpha beta gamma delta SEP
const sA = [1, 9, 0, 2, 5, 3, 0, 8];
const eA = [1, 0, 7, 0, 1, 6, 4, 9];

describe('QA post-processing (utils_qa.postprocess_qa_predictions)', () => {
  const xs = [ex('x', ['beta gamma'], CTX)];
  it('best start+end over context tokens; high logits on question/special tokens are never answers', () => {
    const r = postprocessQa(xs, [fA], [sA], [eA]);
    // context pairs (start, end): beta..gamma 5 + 6 = 11 is the best; starts at q (9) and [SEP] (8) are out
    assert.equal(r.predictions.x, 'beta gamma');
    // then beta..delta 5 + 4 = 9 and gamma 3 + 6 = 9 (tie: beta's start comes first), alpha..gamma 2 + 6 = 8
    assert.deepEqual(r.nbest.x.slice(0, 4).map((c) => c.text), ['beta gamma', 'beta gamma delta', 'gamma', 'alpha beta gamma']);
    // softmax over all 10 candidates: 11, 9, 9, 8, 7, 6, 6, 4, 3, 2
    const z = [11, 9, 9, 8, 7, 6, 6, 4, 3, 2].reduce((a, s) => a + Math.exp(s - 11), 0);
    close(r.nbest.x[0].probability, 1 / z);
    assert.equal(r.nbest.x.length, 10);
  });
  it('max answer length and n-best limit the search', () => {
    // one token at most: alpha 2, beta 6, gamma 9, delta 4
    assert.equal(postprocessQa(xs, [fA], [sA], [eA], { maxAnswerLength: 1 }).predictions.x, 'gamma');
    // top-3 starts: q (9), [SEP] (8), beta (5); top-3 ends: [SEP] (9), [SEP] (7), gamma (6): only beta..gamma is left
    const r3 = postprocessQa(xs, [fA], [sA], [eA], { nBest: 3 });
    assert.deepEqual(r3.nbest.x.map((c) => c.text), ['beta gamma']);
    // top-2 starts are both outside the context: no candidate, utils_qa answers "empty"
    assert.equal(postprocessQa(xs, [fA], [sA], [eA], { nBest: 2 }).predictions.x, 'empty');
  });
  it('windows of one question are pooled', () => {
    // window B: delta..delta 7 + 8 = 15 beats window A's 11
    const sB = [0, 0, 0, 1, 7, 0], eB = [0, 0, 0, 1, 8, 0];
    assert.equal(postprocessQa(xs, [fA, fB], [sA, sB], [eA, eB]).predictions.x, 'delta');
  });
  it('v2.0: the null answer (CLS + CLS, the minimum over windows) wins above the threshold', () => {
    const sN = [10, ...sA.slice(1)], eN = [10, ...eA.slice(1)];
    // null 20, best non-null 11: diff 9 > 0 -> ""
    const r = postprocessQa(xs, [fA], [sN], [eN], { v2: true });
    assert.equal(r.predictions.x, '');
    assert.equal(r.scoreDiff.x, 9);
    assert.ok(r.nbest.x.some((c) => c.text === ''), 'the null answer is in the n-best list');
    assert.equal(postprocessQa(xs, [fA], [sN], [eN], { v2: true, nullScoreDiffThreshold: 10 }).predictions.x, 'beta gamma');
    // with window B (null 0 + 0 = 0, the minimum): diff 0 - 15 < 0 -> delta (a maximum would give 20 - 15 > 0 -> "")
    const sB = [0, 0, 0, 1, 7, 0], eB = [0, 0, 0, 1, 8, 0];
    const r2 = postprocessQa(xs, [fA, fB], [sN, sB], [eN, eB], { v2: true });
    assert.equal(r2.predictions.x, 'delta');
    assert.equal(r2.scoreDiff.x, -15);
  });
  it('logits that are not finite, or too few, are errors naming the question', () => {
    assert.throws(() => postprocessQa(xs, [fA], [[...sA.slice(0, 4), NaN, ...sA.slice(5)]], [eA]), /feature 0 of "x": logit NaN\/1 at position 4 is not finite/);
    assert.throws(() => postprocessQa(xs, [fA], [sA.slice(0, 5)], [eA]), /logits for 5 positions, the feature has 8/);
    assert.throws(() => postprocessQa(xs, [], [], []), /question "x" has no features/);
  });
});
