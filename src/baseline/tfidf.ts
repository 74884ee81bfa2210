/**
 * The bag-of-words baseline a pretrained encoder has to beat: TF-IDF features (word 1-2-grams,
 * sublinear tf) and L2-regularised multinomial logistic regression, the regularisation strength C
 * chosen on dev. It follows scikit-learn's defaults for TfidfVectorizer(ngram_range=(1, 2),
 * sublinear_tf=True) and LogisticRegression(C, solver='lbfgs'): tokens are runs of 2+ word characters
 * of the lower-cased text, idf = ln((1 + n) / (1 + df)) + 1, rows L2-normalised, loss
 * C * sum_i CE_i + ||W||^2 / 2 with an unpenalised intercept, L-BFGS to a gradient tolerance.
 * Sentence pairs are joined into one text (pair words get a prefix, so the two sides stay apart).
 */

/** A sparse matrix in CSR form (rows of feature index, value). */
export interface Csr { rows: number; cols: number; indptr: Int32Array; indices: Int32Array; values: Float64Array }

export interface TfidfOptions {
  /** n-gram range (default [1, 2]) */
  ngram?: [number, number];
  /** 1 + log(tf) instead of tf (default true) */
  sublinearTf?: boolean;
  /** drop terms seen in fewer documents (default 1) */
  minDf?: number;
}

const TOKEN = /\w\w+/gu;

/** The n-grams of one text, as scikit-learn's word analyzer builds them. */
export function ngrams(text: string, [lo, hi]: [number, number]): string[] {
  const toks = text.toLowerCase().match(TOKEN) ?? [];
  const out: string[] = [];
  for (let n = lo; n <= hi; n++) for (let i = 0; i + n <= toks.length; i++) out.push(toks.slice(i, i + n).join(' '));
  return out;
}

/** Text of an example for the vectorizer: the pair's words are marked so "a b" / "c" differs from "a" / "b c". */
export function exampleText(text: string, pair?: string): string[] {
  return pair === undefined ? [text] : [text, pair];
}

export class TfidfVectorizer {
  readonly vocab = new Map<string, number>();
  idf = new Float64Array(0);
  private readonly o: Required<TfidfOptions>;

  constructor(o: TfidfOptions = {}) {
    this.o = { ngram: o.ngram ?? [1, 2], sublinearTf: o.sublinearTf ?? true, minDf: o.minDf ?? 1 };
  }

  private terms(parts: string[]): string[] {
    return parts.flatMap((p, k) => ngrams(p, this.o.ngram).map((g) => (k === 0 ? g : `${k}:${g}`)));
  }

  fit(docs: string[][]): this {
    const df = new Map<string, number>();
    for (const d of docs) for (const t of new Set(this.terms(d))) df.set(t, (df.get(t) ?? 0) + 1);
    const kept = [...df].filter(([, c]) => c >= this.o.minDf).map(([t]) => t).sort();
    kept.forEach((t, i) => this.vocab.set(t, i));
    this.idf = new Float64Array(kept.length);
    const n = docs.length;
    kept.forEach((t, i) => { this.idf[i] = Math.log((1 + n) / (1 + df.get(t)!)) + 1; });
    return this;
  }

  transform(docs: string[][]): Csr {
    const indptr = new Int32Array(docs.length + 1), idx: number[] = [], val: number[] = [];
    docs.forEach((d, r) => {
      const tf = new Map<number, number>();
      for (const t of this.terms(d)) { const j = this.vocab.get(t); if (j !== undefined) tf.set(j, (tf.get(j) ?? 0) + 1); }
      const cols = [...tf.keys()].sort((a, b) => a - b);
      let norm = 0;
      const vs = cols.map((j) => { const c = tf.get(j)!; const v = (this.o.sublinearTf ? 1 + Math.log(c) : c) * this.idf[j]; norm += v * v; return v; });
      norm = Math.sqrt(norm) || 1;
      cols.forEach((j, k) => { idx.push(j); val.push(vs[k] / norm); });
      indptr[r + 1] = idx.length;
    });
    return { rows: docs.length, cols: this.vocab.size, indptr, indices: Int32Array.from(idx), values: Float64Array.from(val) };
  }
}

export interface LogRegModel { classes: number; features: number; /** [classes, features] */ W: Float64Array; b: Float64Array }

/** scores [rows, classes] = X W^T + b */
function scores(X: Csr, W: Float64Array, b: Float64Array, K: number): Float64Array {
  const S = new Float64Array(X.rows * K), F = X.cols;
  for (let r = 0; r < X.rows; r++) {
    for (let k = 0; k < K; k++) {
      let s = b[k];
      for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) s += X.values[p] * W[k * F + X.indices[p]];
      S[r * K + k] = s;
    }
  }
  return S;
}

/**
 * Multinomial logistic regression, L2 penalty ||W||^2 / 2 + C * sum of cross-entropies, fitted by
 * L-BFGS (memory 10, Armijo backtracking) until the largest gradient entry is below tol, as
 * scikit-learn's lbfgs solver stops (its tol 1e-4, max_iter 100 by default; we allow more).
 */
export function fitLogReg(X: Csr, y: ArrayLike<number>, classes: number, C: number, o: { maxIter?: number; tol?: number } = {}): LogRegModel {
  const K = classes, F = X.cols, n = K * F + K, maxIter = o.maxIter ?? 500, tol = o.tol ?? 1e-4;
  const f = (w: Float64Array, g: Float64Array): number => {
    const W = w.subarray(0, K * F), b = w.subarray(K * F);
    const S = scores(X, W, b, K);
    g.fill(0);
    let loss = 0;
    for (let r = 0; r < X.rows; r++) {
      let mx = -Infinity;
      for (let k = 0; k < K; k++) mx = Math.max(mx, S[r * K + k]);
      let z = 0;
      for (let k = 0; k < K; k++) z += Math.exp(S[r * K + k] - mx);
      loss += C * (Math.log(z) + mx - S[r * K + y[r]]);
      for (let k = 0; k < K; k++) {
        const d = C * (Math.exp(S[r * K + k] - mx) / z - (k === y[r] ? 1 : 0));
        g[K * F + k] += d;
        for (let p = X.indptr[r]; p < X.indptr[r + 1]; p++) g[k * F + X.indices[p]] += d * X.values[p];
      }
    }
    for (let i = 0; i < K * F; i++) { loss += 0.5 * w[i] * w[i]; g[i] += w[i]; }
    return loss;
  };
  const w = new Float64Array(n), g = new Float64Array(n);
  let fx = f(w, g);
  const m = 10, sList: Float64Array[] = [], yList: Float64Array[] = [], rho: number[] = [];
  const dot = (a: Float64Array, c: Float64Array): number => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * c[i]; return s; };
  const wNew = new Float64Array(n), gNew = new Float64Array(n), d = new Float64Array(n), alpha = new Array<number>(m);
  for (let it = 0; it < maxIter; it++) {
    let gmax = 0;
    for (let i = 0; i < n; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax <= tol) break;
    // two-loop recursion: d = -H g
    d.set(g);
    for (let j = sList.length - 1; j >= 0; j--) {
      alpha[j] = rho[j] * dot(sList[j], d);
      for (let i = 0; i < n; i++) d[i] -= alpha[j] * yList[j][i];
    }
    const gamma = sList.length ? dot(sList[sList.length - 1], yList[yList.length - 1]) / dot(yList[yList.length - 1], yList[yList.length - 1]) : 1 / Math.max(1, gmax);
    for (let i = 0; i < n; i++) d[i] *= gamma;
    for (let j = 0; j < sList.length; j++) {
      const beta = rho[j] * dot(yList[j], d);
      for (let i = 0; i < n; i++) d[i] += (alpha[j] - beta) * sList[j][i];
    }
    for (let i = 0; i < n; i++) d[i] = -d[i];
    let slope = dot(g, d);
    if (slope >= 0) { for (let i = 0; i < n; i++) d[i] = -g[i]; slope = dot(g, d); sList.length = yList.length = rho.length = 0; }
    let step = 1, fNew = 0;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < n; i++) wNew[i] = w[i] + step * d[i];
      fNew = f(wNew, gNew);
      if (fNew <= fx + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    const s = new Float64Array(n), yv = new Float64Array(n);
    for (let i = 0; i < n; i++) { s[i] = wNew[i] - w[i]; yv[i] = gNew[i] - g[i]; }
    const sy = dot(s, yv);
    if (sy > 1e-12) {
      if (sList.length === m) { sList.shift(); yList.shift(); rho.shift(); }
      sList.push(s); yList.push(yv); rho.push(1 / sy);
    }
    w.set(wNew); g.set(gNew);
    if (Math.abs(fx - fNew) <= 1e-12 * Math.max(1, Math.abs(fx))) { fx = fNew; break; }
    fx = fNew;
  }
  return { classes: K, features: F, W: w.slice(0, K * F), b: w.slice(K * F) };
}

/** Class index with the highest score per row. */
export function predictLogReg(m: LogRegModel, X: Csr): number[] {
  const S = scores(X, m.W, m.b, m.classes), out: number[] = [];
  for (let r = 0; r < X.rows; r++) {
    let best = 0;
    for (let k = 1; k < m.classes; k++) if (S[r * m.classes + k] > S[r * m.classes + best]) best = k;
    out.push(best);
  }
  return out;
}

export interface BaselineExample { text: string; pair?: string; label: number }

export interface BaselineResult {
  /** the C chosen on dev, and the dev score at every C tried */
  C: number;
  grid: { C: number; score: number }[];
  score: number;
  features: number;
  predictions: number[];
}

/**
 * TF-IDF + logistic regression: fitted on train for every C in the grid, scored on dev with `score`
 * (the task's metric), the best C kept. Classification only.
 */
export function tfidfBaseline(train: BaselineExample[], dev: BaselineExample[], classes: number,
  score: (pred: number[], gold: number[]) => number, o: TfidfOptions & { grid?: number[] } = {}): BaselineResult {
  if (classes < 2) throw new Error('the TF-IDF baseline needs a classification task with two or more classes');
  const vec = new TfidfVectorizer(o).fit(train.map((e) => exampleText(e.text, e.pair)));
  const Xtr = vec.transform(train.map((e) => exampleText(e.text, e.pair)));
  const Xdev = vec.transform(dev.map((e) => exampleText(e.text, e.pair)));
  const ytr = train.map((e) => e.label), gold = dev.map((e) => e.label);
  let best: BaselineResult | null = null;
  const grid: { C: number; score: number }[] = [];
  for (const C of o.grid ?? [0.1, 0.3, 1, 3, 10, 30, 100]) {
    const pred = predictLogReg(fitLogReg(Xtr, ytr, classes, C), Xdev);
    const s = score(pred, gold);
    grid.push({ C, score: s });
    if (!best || s > best.score) best = { C, grid, score: s, features: Xtr.cols, predictions: pred };
  }
  return best!;
}

/** What `gelora baseline` reports: the task, its metric, the chosen C and dev score, the grid, sizes and time. */
export interface BaselineReport {
  task: string; metric: string; train: number; dev: number; C: number; score: number; grid: { C: number; score: number }[]; features: number; seconds: number;
  /** the dev predictions at the chosen C, in dev order (class indices) */
  predictions: number[];
}

/**
 * The baseline on a loaded task (`gelora baseline`, experiments/baseline/run.sh): the task's own metric
 * scores every C, the best is kept. Regression tasks are refused (logistic regression classifies).
 */
export function baselineOnTask(task: { name: string; kind: 'classification' | 'regression'; labels: string[]; metric: string; train: BaselineExample[]; dev: BaselineExample[] },
  score: (pred: number[], gold: number[]) => number, o: TfidfOptions & { grid?: number[] } = {}): BaselineReport {
  if (task.kind !== 'classification') throw new Error(`${task.name}: the TF-IDF baseline is logistic regression, a classifier; this task's labels are real-valued (regression)`);
  if (task.dev.length === 0) throw new Error(`${task.name}: no dev examples to choose C on; give --dev FILE`);
  const t0 = performance.now();
  const r = tfidfBaseline(task.train, task.dev, task.labels.length, score, o);
  return { task: task.name, metric: task.metric, train: task.train.length, dev: task.dev.length, C: r.C, score: r.score, grid: r.grid, features: r.features, seconds: (performance.now() - t0) / 1000, predictions: r.predictions };
}
