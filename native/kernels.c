// Native kernels: OpenBLAS for matrix products, plain C loops for everything else.
// Each op's forward sits next to its backward; backward kernels accumulate (+=) into gradients.
#include "kernels.gen.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"  // bf16_of: float32 -> bf16, round to nearest even

// Threads: element-wise kernels split their rows (or blocks of elements) over OpenMP's threads when
// there is enough work to pay for waking them (PAR_MIN values, ~10 us of work). Each row or element
// is computed by one thread exactly as the serial loop did, and sums across rows (LayerNorm's weight
// gradients) split by columns, rows still in order: results are bit for bit those of one thread.
// Without -fopenmp the pragmas are ignored and everything runs serially.
#ifdef _OPENMP
#include <omp.h>
#define PRAGMA(x) _Pragma(#x)
#define PAR_FOR(cond) PRAGMA(omp parallel for schedule(static) if(cond))
#define PAR_FOR_MIN(cond, var) PRAGMA(omp parallel for schedule(static) if(cond) reduction(min: var))
#else
#define PAR_FOR(cond)
#define PAR_FOR_MIN(cond, var)
#endif
#define PAR_MIN 32768L
#define BLOCK 8192L  // elements per task of a flat loop (keeps each thread's inner loop vectorised)
static inline long min_l(long a, long b) { return a < b ? a : b; }

// Row reductions in 16 lanes: a float sum in index order is one long chain of dependent adds (4
// cycles each), which made LayerNorm over 768 values latency-bound (~2 ms for 1024 rows on one core).
// Sixteen partial sums, one per lane, vectorise; the lanes then combine in a fixed tree, so the result
// depends on the row alone (not on threads or alignment). lane_dot(a, NULL) is the plain sum.
// Explicit vectors (the lanes here, the LoRA pass's column chunks) are the CPU's own vector width: GCC's
// code for a vector type wider than the CPU's registers keeps it on the stack (16-lane vectors on AVX2
// ran 2.5x slower than sgemm). A lane or column sums the same values in the same order whatever the
// width, so the width does not change a bit.
#if defined(__AVX512F__)
#define LORA_VW 16
#elif defined(__AVX__)
#define LORA_VW 8
#else
#define LORA_VW 4
#endif
#define LORA_DW (LORA_VW < 8 ? LORA_VW : 8)  // the dots' vectors: 8 of M's rows at once (4 without AVX)
#define LORA_NJ 8  // outer sums in registers per column chunk: 8 vectors (of 32 zmm, 16 ymm or 16 xmm)
typedef float vwf __attribute__((vector_size(LORA_VW * 4)));
typedef float vdf __attribute__((vector_size(LORA_DW * 4)));

static inline vdf vd_load(const float *p) { vdf v; memcpy(&v, p, sizeof v); return v; }
static inline vwf vw_load(const float *p) { vwf v; memcpy(&v, p, sizeof v); return v; }
static inline void vw_store(float *p, vwf v) { memcpy(p, &v, sizeof v); }

#define LANES 16
#define LANE_V (LANES / LORA_VW)  // vectors that hold the 16 lanes: one zmm, two ymm or four xmm
typedef int32_t vwi __attribute__((vector_size(LORA_VW * 4)));
static inline float lanes_combine(float *acc) {
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  return acc[0];
}
// The lanes live in explicit vectors: GCC left the scalar acc[16] loops of lane_max unvectorised (a chain
// of vmaxss) and the sums' lanes on the stack, so a 128-wide softmax row cost ~500 cycles. Lane l of
// the 16 is element l % LORA_VW of vector l / LORA_VW, and sums the same values in the same order.
static inline float lanes_sum(const vwf *acc) {
  float a[LANES];
  for (int v = 0; v < LANE_V; v++) vw_store(a + v * LORA_VW, acc[v]);
  return lanes_combine(a);
}
static inline float lane_dot(const float *a, const float *b, int n) {
  vwf acc[LANE_V];
  for (int v = 0; v < LANE_V; v++) acc[v] = (vwf){0};
  int j = 0;
  if (b) for (; j + LANES <= n; j += LANES)
    for (int v = 0; v < LANE_V; v++) acc[v] += vw_load(a + j + v * LORA_VW) * vw_load(b + j + v * LORA_VW);
  else for (; j + LANES <= n; j += LANES)
    for (int v = 0; v < LANE_V; v++) acc[v] += vw_load(a + j + v * LORA_VW);
  float tail = 0.0f;
  for (; j < n; j++) tail += b ? a[j] * b[j] : a[j];
  return lanes_sum(acc) + tail;
}
// sum of (x - m)^2
static inline float lane_sq_dev(const float *x, float m, int n) {
  vwf acc[LANE_V];
  for (int v = 0; v < LANE_V; v++) acc[v] = (vwf){0};
  int j = 0;
  for (; j + LANES <= n; j += LANES)
    for (int v = 0; v < LANE_V; v++) { vwf d = vw_load(x + j + v * LORA_VW) - m; acc[v] += d * d; }
  float tail = 0.0f;
  for (; j < n; j++) { float d = x[j] - m; tail += d * d; }
  return lanes_sum(acc) + tail;
}
// largest value (exact in any order; lanes only for speed). A NaN is never taken, as before: x > acc
// is false for it.
static inline float lane_max(const float *x, int n) {
  vwf acc[LANE_V];
  for (int v = 0; v < LANE_V; v++) acc[v] = (vwf){0} - FLT_MAX;
  int j = 0;
  for (; j + LANES <= n; j += LANES)
    for (int v = 0; v < LANE_V; v++) {
      vwf y = vw_load(x + j + v * LORA_VW);
      vwi gt = y > acc[v];
      acc[v] = (vwf)(((vwi)y & gt) | ((vwi)acc[v] & ~gt));
    }
  float mx = -FLT_MAX;
  for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  float a[LANES];
  for (int v = 0; v < LANE_V; v++) vw_store(a + v * LORA_VW, acc[v]);
  for (int l = 0; l < LANES; l++) mx = a[l] > mx ? a[l] : mx;
  return mx;
}

// ---------------------------------------------------------------------------------------------
// matrix products

void k_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
            const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

extern int openblas_get_parallel(void);

// Attention's products: n1 x n2 small problems (one head's [T, T] x [T, d], about 1M multiply-adds).
// Where OpenBLAS is Debian's OpenMP build (the addon's run path prefers it: binding.gyp), the
// problems are shared out over OpenMP's threads, each an sgemm on one thread (OpenBLAS runs one
// thread inside a parallel region by itself), so every problem is bit for bit one sgemm call on one
// thread. That is the loop's bits where OpenBLAS's kernels give the same bits at any thread count (its
// SkylakeX kernels, the AMX Xeon's), not where they do not: its Haswell kernels (AVX2 CPUs, or
// OPENBLAS_CORETYPE=Haswell) differ by an ulp in 16% of a 128x128x64 product's values between one
// thread and two (measured on a Zen 5 EPYC; test/blas-threads.test.ts compares with one-thread calls). Paired steps, one process: mini fp32 10%
// faster, base 4.6%. With the pthreads build the loop stays: holding its pool to one thread around
// the parallel region measured slower (its idle workers spin on the cores OpenMP's threads need).
// Problems that add into one C (grouped-query attention's dK and dV: cS = 0) run in order.
#define BATCH_PAR_MAX (1L << 24)  // multiply-adds a problem; bigger ones thread inside OpenBLAS
void k_gemm_batched(int tA, int tB, int M, int N, int K, float alpha,
                    const float *A, int lda, long aS1, long aS2,
                    const float *B, int ldb, long bS1, long bS2, float beta,
                    float *C, int ldc, long cS1, long cS2, int n1, int n2) {
#ifdef _OPENMP
  long n = (long)n1 * n2;
  int disjoint = !((n2 > 1 && cS2 == 0) || (n1 > 1 && cS1 == 0));
  if (disjoint && n > 1 && (long)M * N * K <= BATCH_PAR_MAX && openblas_get_parallel() == 2 && omp_get_max_threads() > 1) {
    PRAGMA(omp parallel for schedule(static))
    for (long p = 0; p < n; p++) {
      long i = p / n2, j = p % n2;
      k_gemm(tA, tB, M, N, K, alpha, A + i * aS1 + j * aS2, lda, B + i * bS1 + j * bS2, ldb,
             beta, C + i * cS1 + j * cS2, ldc);
    }
    return;
  }
#endif
  for (int i = 0; i < n1; i++)
    for (int j = 0; j < n2; j++)
      k_gemm(tA, tB, M, N, K, alpha, A + i * aS1 + j * aS2, lda, B + i * bS1 + j * bS2, ldb,
             beta, C + i * cS1 + j * cS2, ldc);
}

// ---------------------------------------------------------------------------------------------
// The LoRA branch's thin products in one pass over an activation (ops.ts linear): for src [rows, cols]
//   dots[i, j]   = alpha_dot * sum_c src[i, c] M[j, c]        (t = x A^T; dt = s dy B with M = B^T)
//   outer[j, c] += alpha_outer * sum_i w[i, j] src[i, c]      (dB^T += s t^T dy; dA += dt^T x)
//   dst[i, c]    = bf16(src[i, c])                           (bf16 mode: the frozen product's operand)
// each part optional. sgemm runs these [rows x 8] products at 20-50 GFLOP/s (bench lora-pass): it packs
// for a wide N, and each product reads the whole activation once more. Here every row is read once
// while the rank's few rows of M sit in L1, and a block's rows are still in L2 for the outer sums.
// Numerics: float32 sums in a fixed order. A dot runs over the columns in order (the vectors hold
// several rows' and ranks' sums, never parts of one sum). The outer sums run over fixed chunks of
// LORA_CHUNK rows, in row order inside a chunk, and the chunks' partials add in chunk order. So results
// depend on the data alone: not on the threads, nor on the vector width (AVX-512, AVX2 and SSE builds
// give the same bits where they contract to FMA alike).
#define LORA_CHUNK 256L  // rows a partial sums (the unit of work a thread takes)
#define LORA_BLOCK 32L   // rows whose outer sums stay in registers: 32 x cols floats in L2 for the second read
// The vectors (vwf, LORA_VW wide) are the ones defined with the row reductions at the top.

// dots[i0 + ii, j0 .. j0 + nj) = alpha * sum_c x[i0 + ii, c] MT[c, :] for ii < RB (RB a constant: the
// RB sums of LORA_DW lanes stay in registers). MT is M's transposed slice of LORA_DW rows [cols, LORA_DW],
// zero past r. Each sum runs over c in order: no lanes to combine, so a value depends on its row alone.
static inline __attribute__((always_inline)) void lora_dots_rows(const float *x, int cols, const float *MT, float alpha,
                                                                 float *dots, int r, int j0, int nj, const int RB) {
  vdf acc[8] = {0};
  for (int c = 0; c < cols; c++) {
    vdf m = vd_load(MT + (long)c * LORA_DW);
    for (int ii = 0; ii < RB; ii++) acc[ii] += x[(long)ii * cols + c] * m;
  }
  for (int ii = 0; ii < RB; ii++)
    for (int j = 0; j < nj; j++) dots[(long)ii * r + j0 + j] = alpha * acc[ii][j];
}

// part[j0 + j, c] += sum over rows i0..i1 of w[i, j0 + j] src[i, c] for j < NJ (a constant): per
// column chunk the NJ sums stay in registers while the block's rows stream through, in row order
static inline __attribute__((always_inline)) void lora_outer_block(const float *src, int cols, long i0, long i1, const float *w,
                                                                   int r, int j0, float *part, const int NJ) {
  int c = 0;
  for (; c + LORA_VW <= cols; c += LORA_VW) {
    vwf acc[LORA_NJ] = {0};
    for (long i = i0; i < i1; i++) {
      vwf x = vw_load(src + i * cols + c);
      const float *wi = w + i * r + j0;
      for (int j = 0; j < NJ; j++) acc[j] += wi[j] * x;
    }
    for (int j = 0; j < NJ; j++) { float *p = part + (long)(j0 + j) * cols + c; vw_store(p, vw_load(p) + acc[j]); }
  }
  for (; c < cols; c++)
    for (int j = 0; j < NJ; j++) {
      float s = 0.0f;
      for (long i = i0; i < i1; i++) s += w[i * r + j0 + j] * src[i * cols + c];
      part[(long)(j0 + j) * cols + c] += s;
    }
}

void k_lora_pass(const float *src, long rows, int cols, uint16_t *dst, int join_dots, const float *M, int r, float alpha_dot,
                 float *dots, const float *w, float alpha_outer, float *outer) {
  long nchunks = (rows + LORA_CHUNK - 1) / LORA_CHUNK, rd = (r + LORA_DW - 1) / LORA_DW;
  // M transposed in slices of LORA_DW rows [rd][cols][LORA_DW], zero past r; then the chunks' partial outer sums
  // (the first chunk's too: outer is added to once, after the chunks)
  size_t nmt = dots ? (size_t)rd * cols * LORA_DW : 0, npart = outer ? (size_t)nchunks * r * cols : 0;
  float *scr = calloc(nmt + npart + 1, sizeof(float));
  if (!scr) {  // out of memory (callers are far below it): NaN outputs, which the loop's checks report
    if (dots) for (long e = 0; e < rows * r; e++) dots[e] = NAN;
    if (outer) for (long e = 0; e < (long)r * cols; e++) outer[e] = NAN;
    return;
  }
  float *MT = scr, *parts = outer ? scr + nmt : NULL;
  if (dots)
    for (int j = 0; j < r; j++)
      for (int c = 0; c < cols; c++) MT[((long)(j / LORA_DW) * cols + c) * LORA_DW + j % LORA_DW] = M[(long)j * cols + c];
  PAR_FOR(nchunks > 1 && rows * (long)cols > PAR_MIN)
  for (long k = 0; k < nchunks; k++) {
    float *part = parts ? parts + k * r * (long)cols : NULL;
    long end = min_l(rows, (k + 1) * LORA_CHUNK);
    for (long b0 = k * LORA_CHUNK; b0 < end; b0 += LORA_BLOCK) {
      long b1 = min_l(end, b0 + LORA_BLOCK);
      // dst's rows: cols values, then (joinDots) the row's r dots once they are summed below
      long ld = cols + (join_dots ? r : 0);
      if (dst)
        for (long i = b0; i < b1; i++)
          for (long c = 0; c < cols; c++) dst[i * ld + c] = bf16_of(src[i * cols + c]);
      if (dots)
        for (long jc = 0; jc < rd; jc++) {
          int j0 = (int)jc * LORA_DW, nj = r - j0 < LORA_DW ? r - j0 : LORA_DW;
          const float *mt = MT + jc * cols * LORA_DW;
          long i = b0;
          for (; i + 8 <= b1; i += 8) lora_dots_rows(src + i * cols, cols, mt, alpha_dot, dots + i * r, r, j0, nj, 8);
          for (; i < b1; i++) lora_dots_rows(src + i * cols, cols, mt, alpha_dot, dots + i * r, r, j0, nj, 1);
        }
      if (join_dots)
        for (long i = b0; i < b1; i++)
          for (int j = 0; j < r; j++) dst[i * ld + cols + j] = bf16_of(dots[i * r + j]);
      if (part)
        for (int j0 = 0; j0 < r; j0 += LORA_NJ) {
          switch (r - j0 >= LORA_NJ ? LORA_NJ : r - j0) {
#define OUTER(n) case n: lora_outer_block(src, cols, b0, b1, w, r, j0, part, n); break;
            OUTER(1) OUTER(2) OUTER(3) OUTER(4) OUTER(5) OUTER(6) OUTER(7) OUTER(8)
#undef OUTER
          }
        }
    }
  }
  if (outer) {
    PAR_FOR(r * (long)cols > PAR_MIN)
    for (long e = 0; e < r * (long)cols; e++) {
      float s = 0.0f;
      for (long k = 0; k < nchunks; k++) s += parts[k * r * (long)cols + e];
      outer[e] += alpha_outer * s;
    }
  }
  free(scr);
}

// ---------------------------------------------------------------------------------------------
// broadcasting element-wise ops: an n-d counter over `shape`, each operand with its own strides

#define MAXDIM 8

// Offset of the row at counter `idx` (all dimensions but the last) through `str`.
static long row_offset(const int32_t *idx, const int32_t *str, int ndim) {
  long o = 0;
  for (int d = 0; d < ndim - 1; d++) o += (long)idx[d] * str[d];
  return o;
}

// Advances the counter over all dimensions but the last.
static void next_row(int32_t *idx, const int32_t *shape, int ndim) {
  for (int d = ndim - 2; d >= 0; d--) {
    if (++idx[d] < shape[d]) return;
    idx[d] = 0;
  }
}

static long row_count(const int32_t *shape, int ndim) {
  long n = 1;
  for (int d = 0; d < ndim - 1; d++) n *= shape[d];
  return n;
}

// The counter of row r (all dimensions but the last), for a thread starting mid-way.
static void row_index(int32_t *idx, long r, const int32_t *shape, int ndim) {
  for (int d = ndim - 2; d >= 0; d--) { idx[d] = (int32_t)(r % shape[d]); r /= shape[d]; }
}

// Rows per task of a row-parallel loop over `rows` rows of `inner` values.
static long row_block(long rows, long inner) {
  long b = BLOCK / (inner > 0 ? inner : 1);
  return b < 1 ? 1 : b > rows ? rows : b;
}

void k_binary(int op, float *out, const float *a, const float *b, int ndim, const int32_t *shape,
              const int32_t *aStr, const int32_t *bStr) {
  if (ndim == 0) { out[0] = op == 0 ? a[0] + b[0] : op == 1 ? a[0] - b[0] : a[0] * b[0]; return; }
  int inner = shape[ndim - 1], sa = aStr[ndim - 1], sb = bStr[ndim - 1];
  long rows = row_count(shape, ndim), rb = row_block(rows, inner);
  // out is dense: every row is written by one thread
  PAR_FOR(rows * inner > PAR_MIN)
  for (long r0 = 0; r0 < rows; r0 += rb) {
    int32_t idx[MAXDIM] = {0};
    row_index(idx, r0, shape, ndim);
    for (long r = r0; r < min_l(rows, r0 + rb); r++) {
      float *po = out + r * inner;
      const float *pa = a + row_offset(idx, aStr, ndim), *pb = b + row_offset(idx, bStr, ndim);
      if (op == 0) for (int k = 0; k < inner; k++) po[k] = pa[k * sa] + pb[k * sb];
      else if (op == 1) for (int k = 0; k < inner; k++) po[k] = pa[k * sa] - pb[k * sb];
      else for (int k = 0; k < inner; k++) po[k] = pa[k * sa] * pb[k * sb];
      next_row(idx, shape, ndim);
    }
  }
}

void k_accumulate(float *dst, const float *src, const float *mul, float alpha, int ndim, const int32_t *shape,
                  const int32_t *dStr, const int32_t *sStr, const int32_t *mStr) {
  if (ndim == 0) { dst[0] += alpha * src[0] * (mul ? mul[0] : 1.0f); return; }
  int inner = shape[ndim - 1], sd = dStr[ndim - 1], ss = sStr[ndim - 1], sm = mStr[ndim - 1];
  long rows = row_count(shape, ndim), rb = row_block(rows, inner);
  // Rows run in parallel only when no two rows share a destination value: a zero stride over rows
  // (a reduction, e.g. a bias gradient summed over tokens) or rows that overlap keep one thread,
  // so the sums keep their order.
  int disjoint = 1;
  long span = (long)(inner - 1) * (sd < 0 ? -sd : sd) + 1;
  for (int d = ndim - 2; d >= 0; d--) { // inner to outer: each level must step past what it nests
    long st = dStr[d] < 0 ? -(long)dStr[d] : dStr[d];
    if (shape[d] > 1 && st < span) disjoint = 0;
    if (shape[d] > 1) span = st * (shape[d] - 1) + span;
  }
  (void)disjoint;
  PAR_FOR(disjoint && rows * inner > PAR_MIN)
  for (long r0 = 0; r0 < rows; r0 += rb) {
    int32_t idx[MAXDIM] = {0};
    row_index(idx, r0, shape, ndim);
    for (long r = r0; r < min_l(rows, r0 + rb); r++) {
      float *pd = dst + row_offset(idx, dStr, ndim);
      const float *ps = src + row_offset(idx, sStr, ndim);
      if (mul) {
        const float *pm = mul + row_offset(idx, mStr, ndim);
        for (int k = 0; k < inner; k++) pd[k * sd] += alpha * ps[k * ss] * pm[k * sm];
      } else {
        for (int k = 0; k < inner; k++) pd[k * sd] += alpha * ps[k * ss];
      }
      next_row(idx, shape, ndim);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// activations: 0 gelu (erf), 1 gelu (tanh approximation), 2 relu, 3 silu, 4 tanh

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f
#define SQRT_2_OVER_PI 0.79788456080286535588f

// Branch-free float math that GCC vectorises (AVX2) without -ffast-math: libm's scalar erff/expf
// made GELU alone cost more per step than all the attention GEMMs.

// exp(x), relative error ~2 ulp (Cephes expf polynomial); 0 below -87.3, clamped above 88.7.
static inline float vexp(float x) {
  float xc = x > 88.7f ? 88.7f : x;
  xc = xc < -87.3f ? -87.3f : xc;
  float n = floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { int32_t i; float f; } bits = {.i = ((int32_t)n + 127) << 23};
  return x < -87.3f ? 0.0f : p * bits.f;
}

// erf(x), absolute error < 1.5e-7 (Abramowitz & Stegun 7.1.26).
static inline float verf(float x) {
  float z = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * z);
  float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * vexp(-z * z);
  return x < 0.0f ? -y : y;
}

static inline float vtanh(float x) {
  float e = vexp(-2.0f * (x < 0.0f ? -x : x));
  float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}

static inline float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

// activations: 0 gelu (erf), 1 gelu (tanh approximation), 2 relu, 3 silu, 4 tanh

static void unary_range(int op, float *out, const float *inp, long n) {
  switch (op) {
  case 0: for (long i = 0; i < n; i++) { float x = inp[i]; out[i] = 0.5f * x * (1.0f + verf(x * INV_SQRT2)); } break;
  case 1: for (long i = 0; i < n; i++) {
      float x = inp[i];
      out[i] = 0.5f * x * (1.0f + vtanh(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
    } break;
  case 2: for (long i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f; break;
  case 3: for (long i = 0; i < n; i++) { float x = inp[i]; out[i] = x * vsigmoid(x); } break;
  case 4: for (long i = 0; i < n; i++) out[i] = vtanh(inp[i]); break;
  }
}

void k_unary(int op, float *out, const float *inp, long n) {
  PAR_FOR(n > PAR_MIN)
  for (long i = 0; i < n; i += BLOCK) unary_range(op, out + i, inp + i, min_l(BLOCK, n - i));
}

// STORE_GRAD(d, v): d += v, or d = v when the caller's buffer is fresh (acc 0: it is never read, so
// it may hold anything, as gemm's C with beta 0). Each loop is written once; always_inline with a
// constant acc gives a branch-free loop per case.
#define STORE_GRAD(d, v) do { if (acc) (d) += (v); else (d) = (v); } while (0)

static inline __attribute__((always_inline)) void unary_backward_range(int op, float *dinp, const float *inp, const float *dout, long n, const int acc) {
  switch (op) {
  case 0: for (long i = 0; i < n; i++) {
      float x = inp[i];
      float cdf = 0.5f * (1.0f + verf(x * INV_SQRT2)), pdf = INV_SQRT_2PI * vexp(-0.5f * x * x);
      STORE_GRAD(dinp[i], dout[i] * (cdf + x * pdf));
    } break;
  case 1: for (long i = 0; i < n; i++) {
      float x = inp[i];
      float t = vtanh(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x));
      float dt = (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
      STORE_GRAD(dinp[i], dout[i] * (0.5f * (1.0f + t) + 0.5f * x * dt));
    } break;
  case 2: for (long i = 0; i < n; i++) STORE_GRAD(dinp[i], inp[i] > 0.0f ? dout[i] : 0.0f); break;
  case 3: for (long i = 0; i < n; i++) {
      float x = inp[i], s = vsigmoid(x);
      STORE_GRAD(dinp[i], dout[i] * s * (1.0f + x * (1.0f - s)));
    } break;
  case 4: for (long i = 0; i < n; i++) { float t = vtanh(inp[i]); STORE_GRAD(dinp[i], dout[i] * (1.0f - t * t)); } break;
  }
}

void k_unary_backward(int op, float *dinp, const float *inp, const float *dout, long n, int accumulate) {
  PAR_FOR(n > PAR_MIN)
  for (long i = 0; i < n; i += BLOCK) {
    if (accumulate) unary_backward_range(op, dinp + i, inp + i, dout + i, min_l(BLOCK, n - i), 1);
    else unary_backward_range(op, dinp + i, inp + i, dout + i, min_l(BLOCK, n - i), 0);
  }
}

// ---------------------------------------------------------------------------------------------
// softmax with scale, additive mask and optional causal mask

void k_softmax(float *out, const float *inp, long rows, int cols, float scale,
               const float *mask, long maskGroup, int causalQ) {
  PAR_FOR(rows * cols > PAR_MIN)
  for (long r = 0; r < rows; r++) {
    const float *x = inp + r * cols;
    const float *mrow = mask ? mask + (r / maskGroup) * cols : NULL;
    float *y = out + r * cols;
    int limit = cols; // keys at or past `limit` are masked by causality
    if (causalQ > 0) limit = (int)(r % causalQ) + (cols - causalQ) + 1;
    if (mrow) for (int j = 0; j < limit; j++) y[j] = scale * x[j] + mrow[j];
    else for (int j = 0; j < limit; j++) y[j] = scale * x[j];
    for (int j = limit; j < cols; j++) y[j] = -FLT_MAX;
    float mx = lane_max(y, cols);
    for (int j = 0; j < cols; j++) y[j] = vexp(y[j] - mx);
    float inv = 1.0f / lane_dot(y, NULL, cols);
    for (int j = 0; j < cols; j++) y[j] *= inv;
  }
}

void k_softmax_backward(float *dinp, const float *out, const float *dout, long rows, int cols, float scale, int accumulate) {
  PAR_FOR(rows * cols > PAR_MIN)
  for (long r = 0; r < rows; r++) {
    const float *y = out + r * cols, *dy = dout + r * cols;
    float *dx = dinp + r * cols;
    float dot = lane_dot(y, dy, cols);
    const int acc = accumulate;
    for (int j = 0; j < cols; j++) STORE_GRAD(dx[j], scale * y[j] * (dy[j] - dot));
  }
}

// ---------------------------------------------------------------------------------------------
// layernorm (with the residual add fused in front) and RMSNorm

void k_layernorm(float *out, float *sum, float *mean, float *rstd, const float *inp, const float *residual,
                 const float *w, const float *b, long N, int C, float eps) {
  PAR_FOR(N * C > PAR_MIN)
  for (long i = 0; i < N; i++) {
    const float *x = inp + i * C;
    float *s = sum + i * C;
    if (residual) { const float *r = residual + i * C; for (int j = 0; j < C; j++) s[j] = x[j] + r[j]; }
    else if (s != x) memcpy(s, x, sizeof(float) * C);
    float m = lane_dot(s, NULL, C) / C;
    float v = lane_sq_dev(s, m, C) / C;
    float rs = 1.0f / sqrtf(v + eps);
    float *y = out + i * C;
    if (w && b) for (int j = 0; j < C; j++) y[j] = (s[j] - m) * rs * w[j] + b[j];
    else for (int j = 0; j < C; j++) y[j] = (s[j] - m) * rs * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
    mean[i] = m;
    rstd[i] = rs;
  }
}

void k_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, long N, int C, int accumulate) {
  // the input's gradient, row by row
  if (dinp) {
    PAR_FOR(N * C > PAR_MIN)
    for (long i = 0; i < N; i++) {
      const float *dy = dout + i * C, *xi = x + i * C;
      float m = mean[i], rs = rstd[i];
      // the means of dn = dy * w and of dn * n, in lanes
      float a1[LANES] = {0}, a2[LANES] = {0}, t1 = 0.0f, t2 = 0.0f;
      int j = 0;
      for (; j + LANES <= C; j += LANES)
        for (int l = 0; l < LANES; l++) {
          float n = (xi[j + l] - m) * rs, dn = dy[j + l] * (w ? w[j + l] : 1.0f);
          a1[l] += dn;
          a2[l] += dn * n;
        }
      for (; j < C; j++) {
        float n = (xi[j] - m) * rs, dn = dy[j] * (w ? w[j] : 1.0f);
        t1 += dn;
        t2 += dn * n;
      }
      float dnorm_mean = (lanes_combine(a1) + t1) / C, dnorm_norm_mean = (lanes_combine(a2) + t2) / C;
      float *dx = dinp + i * C;
      const int acc = accumulate;
      for (int j = 0; j < C; j++) {
        float n = (xi[j] - m) * rs;
        STORE_GRAD(dx[j], (dy[j] * (w ? w[j] : 1.0f) - dnorm_mean - n * dnorm_norm_mean) * rs);
      }
    }
  }
  // the weight and bias gradients sum over rows: split by columns, rows in order
  if (dw || db) {
    long cb = 64; // columns per task
    PAR_FOR(N * C > PAR_MIN)
    for (long j0 = 0; j0 < C; j0 += cb) {
      long j1 = min_l(C, j0 + cb);
      for (long i = 0; i < N; i++) {
        const float *dy = dout + i * C, *xi = x + i * C;
        float m = mean[i], rs = rstd[i];
        for (long j = j0; j < j1; j++) {
          float n = (xi[j] - m) * rs;
          if (db) db[j] += dy[j];
          if (dw) dw[j] += n * dy[j];
        }
      }
    }
  }
}

void k_rmsnorm(float *out, float *rstd, const float *inp, const float *w, long N, int C, float eps) {
  PAR_FOR(N * C > PAR_MIN)
  for (long i = 0; i < N; i++) {
    const float *x = inp + i * C;
    float ss = lane_dot(x, x, C);
    float rs = 1.0f / sqrtf(ss / C + eps);
    for (int j = 0; j < C; j++) out[i * C + j] = x[j] * rs * w[j];
    rstd[i] = rs;
  }
}

void k_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, long N, int C) {
  if (dinp) {
    PAR_FOR(N * C > PAR_MIN)
    for (long i = 0; i < N; i++) {
      const float *x = inp + i * C, *dy = dout + i * C;
      float rs = rstd[i];
      float a[LANES] = {0}, t = 0.0f; // mean of dout * w * x, in lanes
      int j = 0;
      for (; j + LANES <= C; j += LANES) for (int l = 0; l < LANES; l++) a[l] += dy[j + l] * w[j + l] * x[j + l];
      for (; j < C; j++) t += dy[j] * w[j] * x[j];
      float dot = (lanes_combine(a) + t) / C;
      for (j = 0; j < C; j++) dinp[i * C + j] += rs * dy[j] * w[j] - x[j] * rs * rs * rs * dot;
    }
  }
  // the weight gradient sums over rows: split by columns, rows in order
  if (dw) {
    long cb = 64;
    PAR_FOR(N * C > PAR_MIN)
    for (long j0 = 0; j0 < C; j0 += cb) {
      long j1 = min_l(C, j0 + cb);
      for (long i = 0; i < N; i++) {
        const float *x = inp + i * C, *dy = dout + i * C;
        float rs = rstd[i];
        for (long j = j0; j < j1; j++) dw[j] += dy[j] * x[j] * rs;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// gathers

void k_embedding(float *out, const float *table, const int32_t *ids, long n, int C) {
  PAR_FOR(n * C > PAR_MIN)
  for (long i = 0; i < n; i++) memcpy(out + i * C, table + (long)ids[i] * C, sizeof(float) * C);
}

void k_embedding_backward(float *dtable, const float *dout, const int32_t *ids, long n, int C) {
  for (long i = 0; i < n; i++) {
    float *dt = dtable + (long)ids[i] * C;
    const float *dy = dout + i * C;
    for (int j = 0; j < C; j++) dt[j] += dy[j];
  }
}

void k_gather_last(float *out, const float *src, const int32_t *idx, long outer, int srcLast, int idxLast, long idxOuter) {
  for (long o = 0; o < outer; o++) {
    const int32_t *ix = idx + (o % idxOuter) * idxLast;
    const float *s = src + o * srcLast;
    float *y = out + o * idxLast;
    for (int j = 0; j < idxLast; j++) y[j] = s[ix[j]];
  }
}

void k_gather_last_backward(float *dsrc, const float *dout, const int32_t *idx, long outer, int srcLast, int idxLast, long idxOuter) {
  for (long o = 0; o < outer; o++) {
    const int32_t *ix = idx + (o % idxOuter) * idxLast;
    float *ds = dsrc + o * srcLast;
    const float *dy = dout + o * idxLast;
    for (int j = 0; j < idxLast; j++) ds[ix[j]] += dy[j];
  }
}

// ---------------------------------------------------------------------------------------------
// rotary position embedding, transformers' rotate_half convention

void k_rope(float *out, const float *inp, const float *cos, const float *sin, int B, int T, int H, int d,
            float sign, int accumulate) {
  int half = d / 2;
  PAR_FOR((long)B * T * H * d > PAR_MIN)
  for (long bt = 0; bt < (long)B * T; bt++) {
    int b = (int)(bt / T), t = (int)(bt % T);
    const float *c = cos + (long)t * d, *s = sin + (long)t * d;
    for (int h = 0; h < H; h++) {
      long base = (((long)b * T + t) * H + h) * d;
      const float *x = inp + base;
      float *y = out + base;
      for (int j = 0; j < half; j++) {
        float x1 = x[j], x2 = x[j + half];
        float y1 = x1 * c[j] - sign * x2 * s[j];
        float y2 = x2 * c[j + half] + sign * x1 * s[j + half];
        if (accumulate) { y[j] += y1; y[j + half] += y2; }
        else { y[j] = y1; y[j + half] = y2; }
      }
    }
  }
}

// nearest neighbours: knn.c

// ---------------------------------------------------------------------------------------------
// optimiser

// mulberry32, bit for bit as Rng.next() in src/engine/random.ts, so both backends draw the same masks
uint32_t k_dropout_mask(float *mask, long n, double p, double keep, uint32_t s) {
  const float k = (float)keep;
  for (long i = 0; i < n; i++) {
    uint32_t t = (s += 0x6d2b79f5u);
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    mask[i] = (double)(t ^ (t >> 14)) / 4294967296.0 < p ? 0.0f : k;
  }
  return s;
}

void k_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double beta1, double beta2,
             double eps, double wd, double bc1, double bc2) {
  // hyperparameter arithmetic in double, as PyTorch does (1 - 0.999f is off by 1e-5 relative)
  const float b1 = (float)beta1, b2 = (float)beta2, ob1 = (float)(1.0 - beta1), ob2 = (float)(1.0 - beta2);
  const float decay = (float)(1.0 - lr * wd), step = (float)(lr / bc1), sbc2 = (float)sqrt(bc2), e = (float)eps;
  PAR_FOR(n > PAR_MIN)
  for (long i = 0; i < n; i++) {
    float gi = g[i];
    p[i] *= decay;
    m[i] = b1 * m[i] + ob1 * gi;
    v[i] = b2 * v[i] + ob2 * gi * gi;
    p[i] -= step * m[i] / (sqrtf(v[i]) / sbc2 + e);
  }
}

// ---------------------------------------------------------------------------------------------
// Below: kernels that replaced JavaScript loops. They compute in double exactly as those loops did,
// so results stay bit for bit; that needs GCC's default contraction of a * b + c into one fused
// multiply-add (which JavaScript never does) switched off here.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// ---------------------------------------------------------------------------------------------
// fills, copies, reductions

void k_fill(float *x, long n, double value) {
  const float v = (float)value;
  PAR_FOR(n > PAR_MIN)
  for (long i0 = 0; i0 < n; i0 += BLOCK) {
    long i1 = min_l(n, i0 + BLOCK);
    if (v == 0.0f && !signbit(v)) memset(x + i0, 0, sizeof(float) * (i1 - i0));
    else for (long i = i0; i < i1; i++) x[i] = v;
  }
}

// rows x cols block; sLd = 0 repeats one source row (a bias broadcast over rows)
void k_copy2d(long rows, long cols, const float *src, long sLd, float *dst, long dLd, int accumulate) {
  PAR_FOR(dLd >= cols && rows * cols > PAR_MIN) // rows of dst must not overlap
  for (long r = 0; r < rows; r++) {
    const float *s = src + r * sLd;
    float *d = dst + r * dLd;
    if (accumulate) for (long j = 0; j < cols; j++) d[j] += s[j];
    else memcpy(d, s, sizeof(float) * cols);
  }
}

// 0 sum, 1 sum of squares, 2 max, 3 index of the first non-finite value (-1 if none).
// Sums run in double, in order, so they equal the plain JavaScript loops they replace.
double k_reduce(int op, const float *x, long n, double init) {
  double s = init;
  switch (op) {
  case 0: for (long i = 0; i < n; i++) s += x[i]; return s;
  case 1: for (long i = 0; i < n; i++) s += (double)x[i] * x[i]; return s;
  case 2: for (long i = 0; i < n; i++) if (x[i] > s) s = x[i]; return s;
  default: {
    // which block of BLOCK values holds the first non-finite one (exponent bits all set): a
    // branch-free count per block vectorises and splits over threads, where a loop that returns at
    // the first hit does neither (every hidden state of a forward is checked: 13 x 1024 x 768 values
    // for BERT-base at batch 8); then that block is searched in order
    long blocks = (n + BLOCK - 1) / BLOCK, first = blocks;
    PAR_FOR_MIN(n > PAR_MIN, first)
    for (long b = 0; b < blocks; b++) {
      const float *p = x + b * BLOCK;
      long m = min_l(BLOCK, n - b * BLOCK), bad = 0;
      for (long i = 0; i < m; i++) {
        uint32_t u;
        memcpy(&u, p + i, 4);
        bad += (u & 0x7f800000u) == 0x7f800000u;
      }
      if (bad && b < first) first = b;
    }
    if (first == blocks) return -1;
    for (long i = first * BLOCK; i < n; i++) if (!isfinite(x[i])) return (double)i;
    return -1;
  }
  }
}

// x *= alpha with alpha in double (gradient clipping's coefficient is not rounded to float first)
void k_scal(float *x, long n, double alpha) {
  for (long i = 0; i < n; i++) x[i] = (float)(x[i] * alpha);
}

void k_axpy(long n, double alpha, const float *x, float *y) {
  for (long i = 0; i < n; i++) y[i] = (float)(y[i] + alpha * x[i]);
}

// ---------------------------------------------------------------------------------------------
// losses (probabilities come from k_softmax)

static double log_sum_exp(const float *x, int n) {
  double mx = -INFINITY, s = 0;
  for (int j = 0; j < n; j++) if (x[j] > mx) mx = x[j];
  for (int j = 0; j < n; j++) s += exp(x[j] - mx);
  return mx + log(s);
}

double k_cross_entropy(const float *probs, const float *logits, const int32_t *labels, long N, int C, int ignoreIndex) {
  double total = 0;
  for (long i = 0; i < N; i++) {
    int y = labels[i];
    if (y == ignoreIndex) continue;
    // -log p_y, from the logits when p_y underflows
    float p = probs[i * C + y];
    total += p > 1e-30 ? -log(p) : log_sum_exp(logits + i * C, C) - logits[i * C + y];
  }
  return total;
}

void k_cross_entropy_backward(float *dx, const float *probs, const int32_t *labels, long N, int C, double g, int ignoreIndex) {
  long count = 0;
  for (long i = 0; i < N; i++) count += labels[i] != ignoreIndex;
  if (count == N) {
    // the common case: exactly the accumulate call (float alpha) it replaced
    int32_t sh = (int32_t)(N * C), one = 1;
    k_accumulate(dx, probs, NULL, (float)g, 1, &sh, &one, &one, &one);
    for (long i = 0; i < N; i++) dx[i * C + labels[i]] = (float)(dx[i * C + labels[i]] - g);
    return;
  }
  for (long i = 0; i < N; i++) {
    int y = labels[i];
    if (y == ignoreIndex) continue;
    for (int j = 0; j < C; j++) dx[i * C + j] = (float)(dx[i * C + j] + g * probs[i * C + j]);
    dx[i * C + y] = (float)(dx[i * C + y] - g);
  }
}

double k_mse_loss(const float *pred, const double *target, long n) {
  double s = 0;
  for (long i = 0; i < n; i++) { double d = pred[i] - target[i]; s += d * d; }
  return s;
}

void k_mse_backward(float *dx, const float *pred, const double *target, long n, double g) {
  for (long i = 0; i < n; i++) dx[i] = (float)(dx[i] + g * (pred[i] - target[i]));
}

// ---------------------------------------------------------------------------------------------
// adapter updates

// AdaLoRA's RankAllocator.update_ipt: EMAs of |p * grad| and of its deviation from that EMA
void k_adalora_importance(const float *p, const float *g, float *ipt, float *unc, long n, double beta1, double beta2) {
  for (long i = 0; i < n; i++) {
    double s = fabs((double)p[i] * g[i]);
    ipt[i] = (float)(beta1 * ipt[i] + (1 - beta1) * s);
    unc[i] = (float)(beta2 * unc[i] + (1 - beta2) * fabs(s - ipt[i]));
  }
}

// SoRA's SparseAdamW on the gates (double moments), then the soft threshold when lambda > 0
void k_sora_gates(float *g, const float *grad, double *m, double *v, long n, double stepSize, double lr, double weightDecay, double lambda) {
  for (long i = 0; i < n; i++) {
    double gr = grad[i];
    m[i] = 0.9 * m[i] + (1 - 0.9) * gr;
    v[i] = 0.999 * v[i] + (1 - 0.999) * gr * gr;
    double upd = -stepSize * (m[i] / (sqrt(v[i]) + 1e-8));
    if (weightDecay > 0) upd += -lr * weightDecay * g[i];
    g[i] = (float)(g[i] + upd);
  }
  if (lambda > 0) for (long i = 0; i < n; i++) {
    float x = g[i];
    g[i] = x > lambda ? (float)(x - lambda) : x < -lambda ? (float)(x + lambda) : 0.0f;
  }
}

// W += alpha * B A with each entry's dot product in double (merge, unmerge, PiSSA's residual)
void k_add_low_rank(float *W, const float *B, const float *A, long outF, long inF, long r, double alpha) {
  for (long i = 0; i < outF; i++) for (long j = 0; j < inF; j++) {
    double d = 0;
    for (long k = 0; k < r; k++) d += (double)B[i * r + k] * A[k * inF + j];
    W[i * inF + j] = (float)(W[i * inF + j] + alpha * d);
  }
}

// ---------------------------------------------------------------------------------------------
// half-precision weights: exact widening to float

static inline float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0x1f) bits = sign | 0x7f800000u | (m << 13); // inf, nan
  else if (e != 0) bits = sign | ((e + 112) << 23) | (m << 13);
  else if (m == 0) bits = sign;
  else { // subnormal: normalise
    e = 113;
    while (!(m & 0x400u)) { m <<= 1; e--; }
    bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  union { uint32_t u; float f; } c = {.u = bits};
  return c.f;
}

static inline float bf16_to_float(uint16_t h) {
  union { uint32_t u; float f; } c = {.u = (uint32_t)h << 16};
  return c.f;
}

#if defined(__x86_64__)
#include <immintrin.h>
// F16C widening is exact as half_to_float is (NaNs come out quiet: payloads may differ)
__attribute__((target("avx,f16c"))) static void half_to_float_f16c(float *dst, const uint16_t *src, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = half_to_float(src[i]);
}
#endif

void k_half_to_float(float *dst, const uint16_t *src, long n, int bf16) {
  if (bf16) for (long i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
#if defined(__x86_64__)
  else if (__builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx")) half_to_float_f16c(dst, src, n);
#endif
  else for (long i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}

void k_embedding_half(float *out, const uint16_t *table, const int32_t *ids, long n, int C, int bf16) {
  for (long i = 0; i < n; i++) k_half_to_float(out + i * C, table + (long)ids[i] * C, C, bf16);
}

#pragma GCC pop_options
