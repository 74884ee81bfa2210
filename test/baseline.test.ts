import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TfidfVectorizer, fitLogReg, ngrams, predictLogReg, tfidfBaseline } from '../src/baseline/tfidf.js';

test('n-grams follow scikit-learn\'s word analyzer (lower case, tokens of 2+ word characters)', () => {
  assert.deepEqual(ngrams('The cat, a DOG!', [1, 2]), ['the', 'cat', 'dog', 'the cat', 'cat dog']);
});

test('tf-idf: smooth idf, sublinear tf, rows L2-normalised', () => {
  const v = new TfidfVectorizer().fit([['aa bb bb'], ['aa']]);
  // df: aa 2, bb 1, "aa bb" 1, "bb bb" 1; idf = ln((1+n)/(1+df)) + 1
  const idfBb = Math.log(3 / 2) + 1;
  assert.ok(Math.abs(v.idf[v.vocab.get('bb')!] - idfBb) < 1e-12);
  assert.equal(v.idf[v.vocab.get('aa')!], 1);
  const X = v.transform([['aa bb bb'], ['aa']]);
  const row0 = new Map<number, number>();
  for (let p = X.indptr[0]; p < X.indptr[1]; p++) row0.set(X.indices[p], X.values[p]);
  const raw = { aa: 1, bb: (1 + Math.log(2)) * idfBb, 'aa bb': idfBb, 'bb bb': idfBb };
  const norm = Math.hypot(...Object.values(raw));
  for (const [t, r] of Object.entries(raw)) assert.ok(Math.abs(row0.get(v.vocab.get(t)!)! - r / norm) < 1e-12, t);
  assert.deepEqual([...X.values.subarray(X.indptr[1], X.indptr[2])], [1]);
});

test('logistic regression reaches a stationary point of C * CE + |W|^2 / 2', () => {
  const train = [['good fun film'], ['great good acting'], ['bad dull film'], ['awful bad plot'], ['fun great'], ['dull awful']];
  const y = [1, 1, 0, 0, 1, 0];
  const v = new TfidfVectorizer().fit(train), X = v.transform(train);
  const weak = fitLogReg(X, y, 2, 0.1), strong = fitLogReg(X, y, 2, 100);
  assert.deepEqual(predictLogReg(strong, X), y);
  const norm = (m: { W: Float64Array }): number => Math.hypot(...m.W);
  assert.ok(norm(strong) > norm(weak), 'less regularisation, larger weights');
  // stationarity: W = C * sum_i (onehot_i - p_i) x_i, checked on the fitted model
  const C = 100, K = 2, F = X.cols, g = new Float64Array(K * F);
  for (let r = 0; r < X.rows; r++) {
    const s = [0, 1].map((k) => { let z = strong.b[k]; for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) z += X.values[p] * strong.W[k * F + X.indices[p]]; return z; });
    const mx = Math.max(...s), e = s.map((z) => Math.exp(z - mx)), Z = e[0] + e[1];
    for (let k = 0; k < K; k++) for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) g[k * F + X.indices[p]] += C * (e[k] / Z - (k === y[r] ? 1 : 0)) * X.values[p];
  }
  for (let i = 0; i < K * F; i++) assert.ok(Math.abs(g[i] + strong.W[i]) < 1e-3, `gradient ${i}: ${g[i] + strong.W[i]}`);
});

test('the baseline picks C on dev and refuses one-class tasks', () => {
  const ex = (text: string, label: number) => ({ text, label });
  const train = [ex('good fun', 1), ex('great good', 1), ex('bad dull', 0), ex('awful bad', 0)];
  const dev = [ex('good great', 1), ex('dull awful', 0)];
  const acc = (p: number[], g: number[]) => p.filter((x, i) => x === g[i]).length / g.length;
  const r = tfidfBaseline(train, dev, 2, acc, { grid: [0.01, 10] });
  assert.equal(r.grid.length, 2);
  assert.equal(r.score, Math.max(...r.grid.map((x) => x.score)));
  assert.throws(() => tfidfBaseline(train, dev, 1, acc), /two or more classes/);
});
