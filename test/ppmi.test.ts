// PPMI-SVD word vectors (src/train/ppmi.ts): the counts against a brute-force count, the PPMI formula
// on a hand-sized case, the sparse SVD against the dense one, and vectors that put words of the same
// distributional class together on a corpus built so that they should.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../src/engine/random.js';
import { topSingular, topSingularOf } from '../src/lora/svd.js';
import { cooccurrence, embeddingsFromPpmi, ppmi, ppmiVectors, sparseOperator, type SparseRows } from '../src/train/ppmi.js';

const dense = (M: SparseRows): Float64Array => {
  const d = new Float64Array(M.rows * M.rows);
  for (let w = 0; w < M.rows; w++) for (let i = M.rowPtr[w]; i < M.rowPtr[w + 1]; i++) d[w * M.rows + M.cols[i]] = M.vals[i];
  return d;
};

describe('PPMI-SVD word vectors', () => {
  it('cooccurrence: every (word, context) pair within the window of one chunk, specials skipped, as a brute-force count', () => {
    const rng = new Rng(3), V = 17, W = 2, skip = new Set([0, 1]);
    const chunks = Array.from({ length: 6 }, () => Int32Array.from({ length: 11 }, () => Math.floor(rng.next() * V)));
    const { counts, freq } = cooccurrence(chunks, V, W, skip);
    const want = new Float64Array(V * V), wantFreq = new Float64Array(V);
    for (const ch of chunks) for (let p = 0; p < ch.length; p++) {
      if (skip.has(ch[p])) continue;
      wantFreq[ch[p]]++;
      for (let q = 0; q < ch.length; q++) if (q !== p && Math.abs(q - p) <= W && !skip.has(ch[q])) want[ch[p] * V + ch[q]]++;
    }
    assert.deepEqual(dense(counts), want);
    assert.deepEqual(freq, wantFreq);
    for (let w = 0; w < V; w++) for (let i = counts.rowPtr[w] + 1; i < counts.rowPtr[w + 1]; i++) assert.ok(counts.cols[i] > counts.cols[i - 1], 'columns ascend within a row');
    assert.throws(() => cooccurrence([Int32Array.from([1, 99])], V, W, skip), /token id 99 in chunk 0 is outside the vocabulary of 17/);
  });

  it('ppmi: log(n(w,c) sum_c n(c)^a / (n(w) n(c)^a)), negatives and rare pieces dropped', () => {
    // counts of 3 pieces; piece 2 is rare (freq 1)
    const counts: SparseRows = { rows: 3, rowPtr: Float64Array.from([0, 2, 4, 5]), cols: Int32Array.from([0, 1, 0, 2, 1]), vals: Float64Array.from([4, 2, 1, 3, 5]) };
    const freq = Float64Array.from([9, 9, 1]), a = 0.75;
    const M = ppmi(counts, freq, a, 2);
    const rowSum = [6, 4, 5], colSum = [5, 7, 3], z = 5 ** a + 7 ** a; // piece 2's column is dropped from the sum
    const want = new Float64Array(9);
    const put = (w: number, c: number, n: number): void => { const v = Math.log((n * z) / (rowSum[w] * colSum[c] ** a)); if (v > 0) want[w * 3 + c] = v; };
    put(0, 0, 4); put(0, 1, 2); put(1, 0, 1);
    const got = dense(M);
    for (let i = 0; i < 9; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-12, `entry ${i}: ${got[i]} against ${want[i]}`);
    assert.equal(M.rowPtr[3] - M.rowPtr[2], 0, 'the rare piece has no row');
  });

  it('the sparse operator gives the dense SVD: same singular values, same subspace', () => {
    const rng = new Rng(5), n = 40, r = 5;
    const d = new Float64Array(n * n);
    for (let i = 0; i < d.length; i++) if (rng.next() < 0.2) d[i] = rng.next();
    const rowPtr = new Float64Array(n + 1), cols: number[] = [], vals: number[] = [];
    for (let w = 0; w < n; w++) { for (let c = 0; c < n; c++) if (d[w * n + c] !== 0) { cols.push(c); vals.push(d[w * n + c]); } rowPtr[w + 1] = cols.length; }
    const sparse = topSingularOf(sparseOperator({ rows: n, rowPtr, cols: Int32Array.from(cols), vals: Float64Array.from(vals) }), r, new Rng(1), 30);
    const full = topSingular(d, n, n, r, new Rng(1), 30);
    for (let c = 0; c < r; c++) assert.ok(Math.abs(sparse.S[c] - full.S[c]) < 1e-8 * full.S[0], `singular value ${c}: ${sparse.S[c]} against ${full.S[c]}`);
    // U diag(S) V^T restricted to the top r directions agree
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let a = 0, b = 0;
      for (let c = 0; c < r; c++) { a += sparse.U[i * r + c] * sparse.S[c] * sparse.V[j * r + c]; b += full.U[i * r + c] * full.S[c] * full.V[j * r + c]; }
      assert.ok(Math.abs(a - b) < 1e-6, `rank-${r} approximations differ at ${i},${j}`);
    }
  });

  it('vectors put words with the same contexts together: nouns after determiners, verbs after pronouns', () => {
    // ids: 0 [PAD], 1 [SEP]; determiners 2-4, nouns 5-12, pronouns 13-15, verbs 16-23
    const rng = new Rng(7), pick = (lo: number, hi: number): number => lo + Math.floor(rng.next() * (hi - lo + 1));
    const chunks = Array.from({ length: 400 }, () => {
      const ids: number[] = [];
      while (ids.length < 30) ids.push(...(rng.next() < 0.5 ? [pick(2, 4), pick(5, 12)] : [pick(13, 15), pick(16, 23)]), 1);
      return Int32Array.from(ids.slice(0, 30));
    });
    const dim = 4, v = ppmiVectors(chunks, 24, dim, { window: 1, skip: new Set([0, 1]), minCount: 5 });
    assert.equal(v.kept[0], 0);
    assert.equal(v.kept[1], 0);
    const cos = (a: number, b: number): number => {
      let ab = 0, aa = 0, bb = 0;
      for (let c = 0; c < dim; c++) { const x = v.vectors[a * dim + c], y = v.vectors[b * dim + c]; ab += x * y; aa += x * x; bb += y * y; }
      return ab / Math.sqrt(aa * bb);
    };
    const mean = (pairs: [number, number][]): number => pairs.reduce((s, [a, b]) => s + cos(a, b), 0) / pairs.length;
    const within: [number, number][] = [], across: [number, number][] = [];
    for (let a = 5; a <= 12; a++) for (let b = a + 1; b <= 12; b++) within.push([a, b]);
    for (let a = 16; a <= 23; a++) for (let b = a + 1; b <= 23; b++) within.push([a, b]);
    for (let a = 5; a <= 12; a++) for (let b = 16; b <= 23; b++) across.push([a, b]);
    const w = mean(within), x = mean(across);
    assert.ok(w > 0.9, `nouns with nouns and verbs with verbs: mean cosine ${w}`);
    assert.ok(x < 0.2, `nouns with verbs: mean cosine ${x}`);
  });

  it('embeddingsFromPpmi: kept rows scaled to the asked std, the others left as they were', () => {
    const v = { vectors: Float32Array.from([1, 2, 0, 0, -3, 4]), kept: Uint8Array.from([1, 0, 1]), stats: {} as never };
    const current = [9, 9, 8, 8, 7, 7];
    const out = embeddingsFromPpmi(current, v, 2, 0.5);
    const rms = Math.sqrt((1 + 4 + 9 + 16) / 4), s = 0.5 / rms;
    for (const [i, want] of [[0, 1 * s], [1, 2 * s], [4, -3 * s], [5, 4 * s]] as const) assert.ok(Math.abs(out[i] - want) < 1e-7, `value ${i}`);
    assert.deepEqual([out[2], out[3]], [8, 8]);
    assert.throws(() => embeddingsFromPpmi([1, 2], v, 2, 0.5), /has 2 values, the vectors 3 x 2/);
  });
});
