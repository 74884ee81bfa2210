/**
 * Word vectors from co-occurrence counts, to start an encoder's embeddings from the corpus' own
 * distributional structure instead of noise (`gelora pretrain --init-embeddings ppmi`).
 *
 * The recipe is Levy, Goldberg & Dagan 2015 ("Improving distributional similarity with lessons learned
 * from word embeddings", TACL): counts in a symmetric window, positive PMI with context-distribution
 * smoothing (context counts raised to α = 0.75), a truncated SVD M ≈ U Σ Vᵀ, and the vectors U Σ^p with
 * p = 0.5 ("eigenvalue weighting"). Counting is over token ids of packed chunks, so the vectors are of
 * the model's own WordPiece pieces; special tokens are neither words nor contexts.
 *
 * Shapes: chunks are Int32Array[seq]; the count and PPMI matrices are sparse [vocab, vocab] in CSR
 * (rowPtr [vocab + 1], cols [nnz], vals [nnz]); vectors are [vocab, dim] row-major.
 */
import { Rng } from '../engine/random.js';
import { topSingularOf, type LinearOperator } from '../lora/svd.js';

/** A sparse [rows, rows] matrix in compressed rows (column ids ascending within a row). */
export interface SparseRows {
  rows: number;
  rowPtr: Float64Array;
  cols: Int32Array;
  vals: Float64Array;
}

/**
 * Co-occurrence counts: M[w, c] = how often piece c is within `window` positions of an occurrence of w
 * (either side, inside one chunk), specials skipped on both sides; also each piece's own count.
 */
export function cooccurrence(chunks: readonly Int32Array[], vocab: number, window: number, skip: ReadonlySet<number>): { counts: SparseRows; freq: Float64Array } {
  const skipped = new Uint8Array(vocab);
  for (const s of skip) if (s >= 0 && s < vocab) skipped[s] = 1;
  const check = (id: number, chunk: number): void => {
    if (!(id >= 0 && id < vocab)) throw new Error(`cooccurrence: token id ${id} in chunk ${chunk} is outside the vocabulary of ${vocab}`);
  };
  // pass 1: each row's number of (w, c) occurrences, and the pieces' counts
  const len = new Float64Array(vocab), freq = new Float64Array(vocab);
  chunks.forEach((ch, n) => {
    for (let p = 0; p < ch.length; p++) {
      const w = ch[p];
      check(w, n);
      if (skipped[w]) continue;
      freq[w]++;
      for (let q = Math.max(0, p - window); q <= Math.min(ch.length - 1, p + window); q++) if (q !== p && !skipped[ch[q]]) len[w]++;
    }
  });
  const start = new Float64Array(vocab + 1);
  for (let w = 0; w < vocab; w++) start[w + 1] = start[w] + len[w];
  // pass 2: every occurrence's context id, grouped by row
  const raw = new Int32Array(start[vocab]), fill = start.slice(0, vocab);
  for (const ch of chunks) {
    for (let p = 0; p < ch.length; p++) {
      const w = ch[p];
      if (skipped[w]) continue;
      for (let q = Math.max(0, p - window); q <= Math.min(ch.length - 1, p + window); q++) if (q !== p && !skipped[ch[q]]) raw[fill[w]++] = ch[q];
    }
  }
  // pass 3: sort each row and run-length its ids into (col, count)
  let nnz = 0;
  for (let w = 0; w < vocab; w++) {
    const row = raw.subarray(start[w], start[w + 1]).sort();
    for (let i = 0; i < row.length; i++) if (i === 0 || row[i] !== row[i - 1]) nnz++;
  }
  const rowPtr = new Float64Array(vocab + 1), cols = new Int32Array(nnz), vals = new Float64Array(nnz);
  let o = 0;
  for (let w = 0; w < vocab; w++) {
    for (let i = start[w]; i < start[w + 1]; i++) {
      if (i > start[w] && raw[i] === raw[i - 1]) vals[o - 1]++;
      else { cols[o] = raw[i]; vals[o] = 1; o++; }
    }
    rowPtr[w + 1] = o;
  }
  return { counts: { rows: vocab, rowPtr, cols, vals }, freq };
}

/**
 * PPMI of counts: max(log(n(w,c) Σ_c' n(c')^α / (n(w) n(c)^α)), 0), with n(w) and n(c) the row and
 * column sums; rows and columns of pieces seen fewer than minCount times are dropped (their PMI is
 * noise). Zero entries are left out.
 */
export function ppmi(counts: SparseRows, freq: Float64Array, smoothing: number, minCount: number): SparseRows {
  const { rows, rowPtr, cols, vals } = counts;
  const rowSum = new Float64Array(rows), colSum = new Float64Array(rows);
  for (let w = 0; w < rows; w++) for (let i = rowPtr[w]; i < rowPtr[w + 1]; i++) { rowSum[w] += vals[i]; colSum[cols[i]] += vals[i]; }
  const kept = (id: number): boolean => freq[id] >= minCount;
  let z = 0;
  for (let c = 0; c < rows; c++) if (kept(c) && colSum[c] > 0) z += colSum[c] ** smoothing;
  const outPtr = new Float64Array(rows + 1), outCols: number[] = [], outVals: number[] = [];
  for (let w = 0; w < rows; w++) {
    if (kept(w)) {
      for (let i = rowPtr[w]; i < rowPtr[w + 1]; i++) {
        const c = cols[i];
        if (!kept(c)) continue;
        const pmi = Math.log((vals[i] * z) / (rowSum[w] * colSum[c] ** smoothing));
        if (pmi > 0) { outCols.push(c); outVals.push(pmi); }
      }
    }
    outPtr[w + 1] = outCols.length;
  }
  return { rows, rowPtr: outPtr, cols: Int32Array.from(outCols), vals: Float64Array.from(outVals) };
}

/** A sparse square matrix as the SVD's operator: Z = M Q row by row, Q = Mᵀ Z scattered. */
export function sparseOperator(M: SparseRows): LinearOperator {
  const { rows, rowPtr, cols, vals } = M;
  return {
    m: rows, n: rows,
    times: (Q, k, Z) => {
      Z.fill(0);
      for (let w = 0; w < rows; w++) {
        const z = w * k;
        for (let i = rowPtr[w]; i < rowPtr[w + 1]; i++) { const v = vals[i], q = cols[i] * k; for (let a = 0; a < k; a++) Z[z + a] += v * Q[q + a]; }
      }
    },
    timesT: (Z, k, Q) => {
      Q.fill(0);
      for (let w = 0; w < rows; w++) {
        const z = w * k;
        for (let i = rowPtr[w]; i < rowPtr[w + 1]; i++) { const v = vals[i], q = cols[i] * k; for (let a = 0; a < k; a++) Q[q + a] += v * Z[z + a]; }
      }
    },
  };
}

export interface PpmiOptions {
  /** pieces on each side counted as context (default 4) */
  window?: number;
  /** α, the exponent on context counts (context-distribution smoothing; default 0.75) */
  smoothing?: number;
  /** pieces seen fewer times get no vector (their row is all zero, `kept` 0; default 5) */
  minCount?: number;
  /** p, the exponent on the singular values: vectors U Σ^p (default 0.5) */
  eigPower?: number;
  /** subspace iterations of the SVD (default 4) */
  iterations?: number;
  /** seed of the SVD's random start (default 0) */
  seed?: number;
  /** ids that are neither words nor contexts (the specials) */
  skip?: ReadonlySet<number>;
  /** progress: counting is step 0 of total, then each SVD iteration one step */
  onProgress?: (done: number, total: number) => void;
}

export interface PpmiVectors {
  /** [vocab, dim]; rows of pieces without a vector are zero */
  vectors: Float32Array;
  /** 1 where the piece has a vector */
  kept: Uint8Array;
  stats: { tokens: number; pairs: number; nnz_counts: number; nnz_ppmi: number; kept_rows: number; top_singular: number[]; seconds: number };
}

/** PPMI-SVD vectors of dim components for every piece of `vocab` seen at least minCount times in chunks. */
export function ppmiVectors(chunks: readonly Int32Array[], vocab: number, dim: number, o: PpmiOptions = {}): PpmiVectors {
  const t0 = performance.now();
  const window = o.window ?? 4, alpha = o.smoothing ?? 0.75, minCount = o.minCount ?? 5, p = o.eigPower ?? 0.5;
  if (!(Number.isInteger(window) && window >= 1)) throw new Error(`ppmiVectors: window must be a whole number >= 1, not ${window}`);
  const { counts, freq } = cooccurrence(chunks, vocab, window, o.skip ?? new Set());
  const M = ppmi(counts, freq, alpha, minCount);
  const kept = new Uint8Array(vocab);
  let keptRows = 0;
  for (let w = 0; w < vocab; w++) if (M.rowPtr[w + 1] > M.rowPtr[w]) { kept[w] = 1; keptRows++; }
  if (keptRows < dim) throw new Error(`ppmiVectors: only ${keptRows} pieces have a PPMI row (seen ${minCount}+ times with a context), fewer than the ${dim} components asked for (the model's hidden size); give more text, or fewer components`);
  const iterations = o.iterations ?? 4;
  o.onProgress?.(0, iterations + 1);
  const { U, S } = topSingularOf(sparseOperator(M), dim, new Rng(o.seed ?? 0), iterations, o.onProgress);
  const vectors = new Float32Array(vocab * dim);
  for (let w = 0; w < vocab; w++) if (kept[w]) for (let c = 0; c < dim; c++) vectors[w * dim + c] = U[w * dim + c] * S[c] ** p;
  let tokens = 0, pairs = 0;
  for (const f of freq) tokens += f;
  for (const v of counts.vals) pairs += v;
  return {
    vectors, kept,
    stats: { tokens, pairs, nnz_counts: counts.vals.length, nnz_ppmi: M.vals.length, kept_rows: keptRows, top_singular: Array.from(S.subarray(0, 8)), seconds: (performance.now() - t0) / 1000 },
  };
}

/**
 * Writes PPMI vectors into an embedding matrix [vocab, dim] (float64 values to assign): every kept
 * piece's row becomes its vector, scaled by one factor so the kept rows' values have the standard
 * deviation `std` (the random init's, so only the geometry changes, not the scale the blocks and the
 * tied decoder start at); other rows keep what `current` holds.
 */
export function embeddingsFromPpmi(current: ArrayLike<number>, v: PpmiVectors, dim: number, std: number): Float64Array {
  const vocab = v.kept.length;
  if (current.length !== vocab * dim) throw new Error(`embeddingsFromPpmi: the embedding has ${current.length} values, the vectors ${vocab} x ${dim}`);
  let sq = 0, n = 0;
  for (let w = 0; w < vocab; w++) if (v.kept[w]) for (let c = 0; c < dim; c++) { sq += v.vectors[w * dim + c] ** 2; n++; }
  const scale = sq > 0 ? std / Math.sqrt(sq / n) : 0;
  const out = Float64Array.from(current);
  for (let w = 0; w < vocab; w++) if (v.kept[w]) for (let c = 0; c < dim; c++) out[w * dim + c] = v.vectors[w * dim + c] * scale;
  return out;
}
