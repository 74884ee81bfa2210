/**
 * Evaluation metrics, with GLUE's choice per task: CoLA Matthews correlation; SST-2, QNLI, RTE,
 * WNLI, MNLI accuracy; MRPC and QQP accuracy and F1 (primary: their mean); STS-B Pearson and
 * Spearman (primary: their mean). F1 is binary, of the positive class (label index 1).
 */

export type MetricName = 'accuracy' | 'f1' | 'mcc' | 'pearson' | 'spearman' | 'acc_f1' | 'pearson_spearman';

export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  check(pred, gold);
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === gold[i]) ok++;
  return ok / pred.length;
}

/** F1 of the positive class (1) in binary classification. */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>, positive = 1): number {
  check(pred, gold);
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < pred.length; i++) {
    if (pred[i] === positive && gold[i] === positive) tp++;
    else if (pred[i] === positive) fp++;
    else if (gold[i] === positive) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** Matthews correlation coefficient (binary, as sklearn; multi-class by the R_K generalisation). */
export function matthews(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  check(pred, gold);
  const classes = [...new Set([...Array.from(pred), ...Array.from(gold)])];
  const k = new Map(classes.map((c, i) => [c, i])), K = classes.length, n = pred.length;
  const C = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < n; i++) C[k.get(gold[i])!][k.get(pred[i])!]++;
  const t = C.map((row) => row.reduce((a, b) => a + b, 0)); // true counts per class
  const p = classes.map((_, j) => C.reduce((a, row) => a + row[j], 0)); // predicted counts
  const c = classes.reduce((a, _, i) => a + C[i][i], 0);
  const num = c * n - t.reduce((a, ti, i) => a + ti * p[i], 0);
  const den = Math.sqrt((n * n - p.reduce((a, x) => a + x * x, 0)) * (n * n - t.reduce((a, x) => a + x * x, 0)));
  return den === 0 ? 0 : num / den;
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x, y);
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) { const a = x[i] - mx, b = y[i] - my; sxy += a * b; sxx += a * a; syy += b * b; }
  return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
}

/** Ranks with ties averaged (as scipy.stats.rankdata). */
export function ranks(x: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Float64Array(x.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(ranks(x), ranks(y));
}

function check(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`metric: ${a.length} predictions for ${b.length} labels`);
  if (a.length === 0) throw new Error('metric: no examples to evaluate');
}

/** Every metric that applies, and the primary one. */
export function evaluate(kind: 'classification' | 'regression', pred: ArrayLike<number>, gold: ArrayLike<number>, primary: MetricName): { metrics: Record<string, number>; primary: number } {
  const m: Record<string, number> = {};
  if (kind === 'regression') {
    m.pearson = pearson(pred, gold);
    m.spearman = spearman(pred, gold);
    m.pearson_spearman = (m.pearson + m.spearman) / 2;
  } else {
    m.accuracy = accuracy(pred, gold);
    m.mcc = matthews(pred, gold);
    const binary = new Set([...Array.from(gold), ...Array.from(pred)]).size <= 2;
    if (binary) { m.f1 = f1(pred, gold); m.acc_f1 = (m.accuracy + m.f1) / 2; }
  }
  if (!(primary in m)) throw new Error(`metric ${primary} does not apply to ${kind} (available: ${Object.keys(m).join(', ')})`);
  return { metrics: m, primary: m[primary] };
}

/** GLUE's primary metric of a task (case-insensitive name), or the default for the kind of labels. */
export function primaryMetric(task: string | null, kind: 'classification' | 'regression'): MetricName {
  switch ((task ?? '').toLowerCase().replace(/[^a-z0-9]/g, '')) {
    case 'cola': return 'mcc';
    case 'mrpc': case 'qqp': return 'acc_f1';
    case 'stsb': return 'pearson_spearman';
    default: return kind === 'regression' ? 'pearson' : 'accuracy';
  }
}

/** Mean and sample standard deviation (0 for a single value), as every table here reports them. */
export function meanStd(v: number[]): { mean: number; std: number } {
  const n = v.length, mean = v.reduce((a, b) => a + b, 0) / n;
  return { mean, std: n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0 };
}
