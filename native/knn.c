// Nearest-neighbour kernels for TwoNN at scale (src/id/knn.ts): the candidate search fused with the
// Gram products (float32, or bf16 on the CPU's matrix units), the exact float64 re-measure of
// candidate pairs, and float32 -> IEEE half for writing F16 point sets. Contracts are documented in
// src/engine/kernels.ts.
#include "kernels.gen.h"
#include "bf16.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---------------------------------------------------------------------------------------------
// candidates: top-k by approximate squared distance, over the upper triangle of the Gram matrix

// (d, j) before (bd, bj) in the candidate order: smaller distance first, then the lower index, so the
// selected set does not depend on the order in which pairs arrive (the symmetric sweep below meets
// row i's columns in a different order than a row-by-row scan would).
static inline int before(float d, int32_t j, float bd, int32_t bj) {
  return d < bd || (d == bd && j < bj);
}

// Insertion into row i's sorted list of k (distance, index) pairs; the last one is the current worst.
static inline void offer(float *bd, int32_t *bi, int k, float d, int32_t j) {
  if (!before(d, j, bd[k - 1], bi[k - 1])) return;
  int q = k - 1;
  while (q > 0 && before(d, j, bd[q - 1], bi[q - 1])) { bd[q] = bd[q - 1]; bi[q] = bi[q - 1]; q--; }
  bd[q] = d;
  bi[q] = j;
}

// One strip's Gram products G[r * ldg + c] = x_(s+r) . x_(s+c), r < rows, c < cols, in float32 or
// (bf16 set) on bf16 copies of the points Xb. oneDNN generates code per shape, so the bf16 strip is cut
// into column tiles of B: every strip then has at most two tile shapes (B and n mod B columns), and
// the whole sweep compiles at most four primitives. Without oneDNN, or when it fails, sgemm runs on the
// bf16 values widened to float32 (Xw): the same products (a bf16 x bf16 product is exact in float32),
// accumulated in float32 in another order, so the error bound of the bf16 path holds either way.
#ifdef GELORA_DNNL
extern int gelora_dnnl_gram_bf16(long M, long N, long K, const uint16_t *A, long lda, const uint16_t *B, long ldb, float *C, long ldc);
#endif
typedef struct { const float *X; const uint16_t *Xb; float *Xw; int dim; long B; int dnnl_ok; } Gram;

static void gram_strip(Gram *g, float *G, long ldg, long s, long rows, long cols) {
  const int dim = g->dim;
  if (!g->Xb) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, dim, 1.0f, g->X + s * dim, dim, g->X + s * dim, dim, 0.0f, G, (int)ldg);
    return;
  }
#ifdef GELORA_DNNL
  for (long c0 = 0; g->dnnl_ok && c0 < cols; c0 += g->B) {
    const long w = cols - c0 < g->B ? cols - c0 : g->B;
    if (gelora_dnnl_gram_bf16(rows, w, dim, g->Xb + s * dim, dim, g->Xb + (s + c0) * dim, dim, G + c0, ldg) != 0) g->dnnl_ok = 0;
  }
  if (g->dnnl_ok) return;
#endif
  if (!g->Xw) {
    const long n = s + cols;
    g->Xw = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    // out of memory: NaN products are offered to no list, so the caller sees no candidates and fails loudly
    if (!g->Xw) { for (long r = 0; r < rows; r++) for (long c = 0; c < cols; c++) G[r * ldg + c] = NAN; return; }
    for (long q = 0; q < n * dim; q++) g->Xw[q] = bf16_value(g->Xb[q]);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, dim, 1.0f, g->Xw + s * dim, dim, g->Xw + s * dim, dim, 0.0f, G, (int)ldg);
}

// The sweep: one strip of the upper triangle at a time, rows [s, s + rows) against columns [s, n).
// Each pair i < j is computed once and offered to both rows, which halves the products of a full
// sweep; memory is the strip, never N x N.
static void candidates_sweep(int32_t *outIdx, float *outD2, Gram *g, const float *sq, long n, int k, long block) {
  for (long q = 0; q < n * k; q++) { outD2[q] = INFINITY; outIdx[q] = INT32_MAX; }
  if (n < 2) return;
  const long B = block < 1 ? 1 : block > n ? n : block;
  g->B = B;
  float *G = malloc(sizeof(float) * (size_t)B * (size_t)n);
  if (!G) return; // the caller sees no candidates (index INT32_MAX) and fails loudly
  for (long s = 0; s < n; s += B) {
    const long rows = n - s < B ? n - s : B, cols = n - s;
    // float32: one sgemm a strip, dense (ld = cols), measured the fastest; bf16: tiles into ld n
    const long ldg = g->Xb ? n : cols;
    gram_strip(g, G, ldg, s, rows, cols);
    for (long r = 0; r < rows; r++) {
      const long i = s + r;
      const float si = sq[i], *gr = G + r * ldg;
      float *di = outD2 + i * k;
      int32_t *ii = outIdx + i * k;
      for (long c = r + 1; c < cols; c++) {
        const long j = s + c;
        const float d = si + sq[j] - 2.0f * gr[c];
        // most pairs are far from both rows' lists: two comparisons and on
        if (d <= di[k - 1]) offer(di, ii, k, d, (int32_t)j);
        if (d <= outD2[j * k + k - 1]) offer(outD2 + j * k, outIdx + j * k, k, d, (int32_t)i);
      }
    }
  }
  free(G);
}

void k_knn_candidates(int32_t *outIdx, float *outD2, const float *X, const float *sq, long n, int dim, int k, long block) {
  Gram g = {.X = X, .dim = dim};
  candidates_sweep(outIdx, outD2, &g, sq, n, k, block);
}

// The same sweep on the points rounded to bf16 (oneDNN on AMX / AVX512-BF16 where built in): only
// the candidates come from it; src/id/knn.ts certifies them with the bf16 error bound.
void k_knn_candidates_bf16(int32_t *outIdx, float *outD2, const float *X, const float *sq, long n, int dim, int k, long block) {
  uint16_t *Xb = malloc(sizeof(uint16_t) * (size_t)n * (size_t)dim);
  if (!Xb) { for (long q = 0; q < n * k; q++) { outD2[q] = INFINITY; outIdx[q] = INT32_MAX; } return; }
  for (long q = 0; q < n * (long)dim; q++) Xb[q] = bf16_of(X[q]);
#ifdef GELORA_DNNL
  Gram g = {.X = X, .Xb = Xb, .dim = dim, .dnnl_ok = 1};
#else
  Gram g = {.X = X, .Xb = Xb, .dim = dim, .dnnl_ok = 0};
#endif
  candidates_sweep(outIdx, outD2, &g, sq, n, k, block);
  free(g.Xw);
  free(Xb);
}

#define NT 8 // most threads a pass of knn.c uses
static int threads_for(long work);
static void run_parallel(void *(*fn)(void *), void *jobs, size_t size, int nt);

// ---------------------------------------------------------------------------------------------
// exact squared distances of index pairs, in float64

// out[q] = sum_t ((x[a_q, t] - x[b_q, t]) * scale)^2 in double. The scale (a power of two from the
// caller) is applied before squaring, so points at 1e200 or 1e-30 neither overflow nor underflow.
// one pair's sum in 8 lanes, the rows of X (float or double) widened to double
#define PAIR_SUM(X)                                                                                    \
  const __typeof__(X) x = X + (long)a[q] * dim, y = X + (long)b[q] * dim;                              \
  for (; t + 8 <= dim; t += 8)                                                                         \
    for (int u = 0; u < 8; u++) { const double v = (double)x[t + u] * scale - (double)y[t + u] * scale; acc[u] += v * v; } \
  for (; t < dim; t++) { const double v = (double)x[t] * scale - (double)y[t] * scale; acc[0] += v * v; }

static void sq_dist_range(double *out, const float *X32, const double *X64, int dim, const int32_t *a, const int32_t *b, long q0, long q1, double scale) {
  for (long q = q0; q < q1; q++) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int t = 0;
    if (X32) { PAIR_SUM(X32) } else { PAIR_SUM(X64) }
    out[q] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
}

typedef struct { double *out; const float *X32; const double *X64; int dim; const int32_t *a, *b; long q0, q1; double scale; } PairJob;

static void *pair_rows(void *arg) {
  PairJob *j = arg;
  sq_dist_range(j->out, j->X32, j->X64, j->dim, j->a, j->b, j->q0, j->q1, j->scale);
  return NULL;
}

// out[q] = sum_t ((x[a_q, t] - x[b_q, t]) * scale)^2 in double. The scale (a power of two from the
// caller) is applied before squaring, so points at 1e200 or 1e-30 neither overflow nor underflow.
// Each pair's sum has one fixed order, so the result does not depend on the number of threads.
void k_sq_dist_pairs(double *out, const float *X32, const double *X64, int dim, const int32_t *a, const int32_t *b, long m, double scale) {
  const int nt = threads_for(m * (long)dim);
  PairJob jobs[NT];
  for (int t = 0; t < nt; t++) jobs[t] = (PairJob){out, X32, X64, dim, a, b, m * t / nt, m * (t + 1) / nt, scale};
  run_parallel(pair_rows, jobs, sizeof jobs[0], nt);
}

// ---------------------------------------------------------------------------------------------
// float32 -> IEEE half, round to nearest even (floatToHalf in src/io/safetensors.ts, bit for bit)

static uint16_t float_to_half(float f) {
  union { float f; uint32_t u; } c = {.f = f};
  const uint32_t x = c.u, sign = (x >> 16) & 0x8000u, ex = (x >> 23) & 0xffu;
  uint32_t m = x & 0x7fffffu;
  if (ex == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
  const int e = (int)ex - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    m |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (m >> 13);
  const uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

#if defined(__x86_64__)
// F16C rounds to nearest even as float_to_half does; NaNs keep the scalar path's canonical payload
__attribute__((target("avx2,f16c"))) static void float_to_half_f16c(uint16_t *dst, const float *src, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
      for (int u = 0; u < 8; u++) dst[i + u] = float_to_half(src[i + u]);
      continue;
    }
    _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; i++) dst[i] = float_to_half(src[i]);
}
#endif

void k_float_to_half(uint16_t *dst, const float *src, long n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2")) { float_to_half_f16c(dst, src, n); return; }
#endif
  for (long i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

// ---------------------------------------------------------------------------------------------
// centring for the distance products (centrePoints in src/engine/backends/js.ts, the same arithmetic:
// x / s1 and x * (1 / s1) are the same number when s1 is a power of two, and multiplying is faster)

static double pow2_near(double x) { return exp2(floor(log2(x) + 0.5)); } // Math.round: halves up

// Row ranges [r0, r1) run on up to NT threads (the calling one included): the centring and the exact
// re-measure are memory-bound passes that would otherwise leave the second core idle.
typedef struct { const float *X32; const double *X64; float *c32, *sq; long n, r0, r1; int dim; double s1i, s2i, maxAbs, maxC; double *mean; int stage; } CentreJob;

// one pass over rows [r0, r1) of X (float or double), the loops specialised for each type
#define CENTRE_PASS(X)                                                                                         \
  if (j->stage == 0) { /* max |x| */                                                                           \
    double m = 0;                                                                                              \
    for (long q = j->r0 * dim; q < j->r1 * dim; q++) { const double a = fabs((double)X[q]); m = a > m ? a : m; } \
    j->maxAbs = m;                                                                                             \
  } else if (j->stage == 1) { /* partial sums of x / s1 */                                                     \
    for (long i = j->r0; i < j->r1; i++) for (int t = 0; t < dim; t++) j->mean[t] += (double)X[i * dim + t] * j->s1i; \
  } else if (j->stage == 2) { /* max |x / s1 - mean| */                                                        \
    double m = 0;                                                                                              \
    for (long i = j->r0; i < j->r1; i++)                                                                       \
      for (int t = 0; t < dim; t++) { const double a = fabs((double)X[i * dim + t] * j->s1i - j->mean[t]); m = a > m ? a : m; } \
    j->maxC = m;                                                                                               \
  } else {                                                                                                     \
    for (long i = j->r0; i < j->r1; i++) {                                                                     \
      double s = 0;                                                                                            \
      for (int t = 0; t < dim; t++) {                                                                          \
        const double v = ((double)X[i * dim + t] * j->s1i - j->mean[t]) * j->s2i;                              \
        j->c32[i * dim + t] = (float)v;                                                                        \
        s += v * v;                                                                                            \
      }                                                                                                        \
      j->sq[i] = (float)s;                                                                                     \
    }                                                                                                          \
  }

static void *centre_rows(void *arg) {
  CentreJob *j = arg;
  const int dim = j->dim;
  if (j->X32) { const float *X = j->X32; CENTRE_PASS(X) } else { const double *X = j->X64; CENTRE_PASS(X) }
  return NULL;
}

static int threads_for(long work) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN), t = work / (1L << 20) + 1; // about a million values a thread at least
  if (t > cpus) t = cpus;
  return (int)(t < 1 ? 1 : t > NT ? NT : t);
}

// runs fn on jobs[0..nt) (each sized `size` bytes), jobs 1.. on new threads, job 0 here
static void run_parallel(void *(*fn)(void *), void *jobs, size_t size, int nt) {
  pthread_t th[NT];
  int started[NT] = {0};
  for (int t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, fn, (char *)jobs + t * size) == 0;
  fn(jobs);
  for (int t = 1; t < nt; t++) { if (started[t]) pthread_join(th[t], NULL); else fn((char *)jobs + t * size); }
}

double k_centre_points(float *c32, float *sq, const float *X32, const double *X64, long n, int dim) {
  const int nt = threads_for(n * (long)dim);
  CentreJob jobs[NT];
  double *means = calloc((size_t)nt * (size_t)dim, sizeof(double));
  if (!means) return NAN;
  for (int t = 0; t < nt; t++)
    jobs[t] = (CentreJob){.X32 = X32, .X64 = X64, .c32 = c32, .sq = sq, .n = n, .r0 = n * t / nt, .r1 = n * (t + 1) / nt, .dim = dim, .mean = means + (size_t)t * dim};
  run_parallel(centre_rows, jobs, sizeof jobs[0], nt);
  double maxAbs = 0;
  for (int t = 0; t < nt; t++) maxAbs = jobs[t].maxAbs > maxAbs ? jobs[t].maxAbs : maxAbs;
  const double s1 = maxAbs > 0 ? pow2_near(maxAbs) : 1;
  for (int t = 0; t < nt; t++) { jobs[t].stage = 1; jobs[t].s1i = 1 / s1; }
  run_parallel(centre_rows, jobs, sizeof jobs[0], nt);
  double *mean = means; // thread 0's partial sums, then the others' in order, then / n
  for (int t = 1; t < nt; t++) for (int d = 0; d < dim; d++) mean[d] += jobs[t].mean[d];
  for (int d = 0; d < dim; d++) mean[d] /= (double)n;
  for (int t = 0; t < nt; t++) { jobs[t].stage = 2; jobs[t].mean = mean; }
  run_parallel(centre_rows, jobs, sizeof jobs[0], nt);
  double maxC = 0;
  for (int t = 0; t < nt; t++) maxC = jobs[t].maxC > maxC ? jobs[t].maxC : maxC;
  const double s2 = maxC > 0 ? pow2_near(maxC) : 1;
  for (int t = 0; t < nt; t++) { jobs[t].stage = 3; jobs[t].s2i = 1 / s2; }
  run_parallel(centre_rows, jobs, sizeof jobs[0], nt);
  free(means);
  return s1 * s2;
}
