// oneDNN (Debian's libdnnl 2.6) matrix products for the native addon, built only where its headers
// are installed (binding.gyp). Two products, both with sgemm's row-major interface and alpha/beta,
// and a conversion:
//   gemmBf16: A float32 (rounded to bf16 here, to nearest even) or already bf16 (the copy that
//             kernels.c's loraPass writes in its read of a LoRA Linear's activation) x B bf16 (a
//             weight kept as Uint16Array) -> C float32, accumulated in float32. oneDNN picks AMX
//             tiles or AVX512-BF16 at run time; on CPUs with neither it would emulate slowly or not
//             at all, so dnnlInfo().bf16 says false there and callers stay in float32.
//   gemmDnnl: plain float32 through oneDNN: bf16 mode's float32 products (the LoRA branch's;
//             gemmBatchedDnnl: attention's) and measurements against OpenBLAS (fp32 mode never
//             comes here: it keeps OpenBLAS's numerics).
// A primitive is compiled once per shape (JIT code generation costs ~ms) and cached.
#define NAPI_VERSION 8
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <immintrin.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "bf16.h"  // bf16_of: float32 -> bf16, round to nearest even

extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);
extern "C" int omp_get_thread_num(void);
extern "C" int omp_get_num_threads(void);

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine &cpu() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream &strm() {
  static dnnl::stream s(cpu());
  return s;
}

// ---------------------------------------------------------------------------------------------
// argument unpacking (the same conventions as addon.c: throw a TypeError naming the argument)

struct Args {
  napi_env env;
  napi_value v[24];
  size_t n = 24;
  bool ok = true;
  Args(napi_env e, napi_callback_info info, size_t want) : env(e) {
    napi_get_cb_info(env, info, &n, v, nullptr, nullptr);
    if (n < want) fail("too few arguments");
  }
  void fail(const char *msg) {
    if (!ok) return;
    char text[192];
    snprintf(text, sizeof text, "gelora dnnl: %s", msg);
    napi_throw_type_error(env, nullptr, text);
    ok = false;
  }
  void *typed(size_t i, napi_typedarray_type want, const char *what) {
    if (!ok) return nullptr;
    bool is = false;
    napi_is_typedarray(env, v[i], &is);
    napi_typedarray_type type;
    size_t len;
    void *data = nullptr;
    if (is) napi_get_typedarray_info(env, v[i], &type, &len, &data, nullptr, nullptr);
    if (!is || type != want) {
      char msg[96];
      snprintf(msg, sizeof msg, "argument %zu must be a %s", i, what);
      fail(msg);
      return nullptr;
    }
    lens[i] = len;
    return data;
  }
  size_t lens[24] = {0};
  // A matrix of rows x cols at leading dimension ld from offset off, in n1 x n2 problems at strides
  // s1, s2, must lie inside argument i: a wrong offset is an error, never a read or write out of bounds.
  void extent(size_t i, const char *name, long off, long rows, long cols, long ld, long n1 = 1, long s1 = 0, long n2 = 1, long s2 = 0) {
    if (!ok || rows == 0 || cols == 0 || n1 == 0 || n2 == 0) return;
    if (off < 0 || ld < cols || s1 < 0 || s2 < 0) { fail_arg(name, "has a negative offset or stride, or a leading dimension below its columns"); return; }
    long last = off + (n1 - 1) * s1 + (n2 - 1) * s2 + (rows - 1) * ld + cols;
    if (last > static_cast<long>(lens[i])) {
      char msg[128];
      snprintf(msg, sizeof msg, "argument %s has %zu values, but its offsets, strides and sizes reach %ld", name, lens[i], last);
      fail(msg);
    }
  }
  // the operands of a gemm with sgemm's argument layout (A at 6, B at 9, C at 13)
  void gemm_extents(bool tA, bool tB, long M, long N, long K, long aOff, long lda, long bOff, long ldb, long cOff, long ldc) {
    extent(6, "A", aOff, tA ? K : M, tA ? M : K, lda);
    extent(9, "B", bOff, tB ? N : K, tB ? K : N, ldb);
    extent(13, "C", cOff, M, N, ldc);
  }
  void fail_arg(const char *name, const char *what) {
    char msg[128];
    snprintf(msg, sizeof msg, "argument %s %s", name, what);
    fail(msg);
  }
  float *f32(size_t i) { return static_cast<float *>(typed(i, napi_float32_array, "Float32Array")); }
  uint16_t *u16(size_t i) { return static_cast<uint16_t *>(typed(i, napi_uint16_array, "Uint16Array")); }
  double num(size_t i) {
    double d = 0;
    if (ok && napi_get_value_double(env, v[i], &d) != napi_ok) fail("expected a number");
    return d;
  }
  bool flag(size_t i) {
    bool b = false;
    if (ok) napi_get_value_bool(env, v[i], &b);
    return b;
  }
};

// rows x cols of src (leading dimension ld) -> dense rows x cols bf16, over OpenMP's threads when
// large (an activation of 1024 x 3072 took 1.2 ms on one core, before every product it feeds)
void to_bf16(uint16_t *dst, const float *src, long rows, long cols, long ld) {
  const long kMin = 32768, kBlock = 8192;
  if (ld == cols) {  // dense: blocks of the flat array
    long n = rows * cols;
#pragma omp parallel for schedule(static) if (n > kMin)
    for (long i0 = 0; i0 < n; i0 += kBlock) {
      long i1 = std::min(n, i0 + kBlock);
      for (long i = i0; i < i1; i++) dst[i] = bf16_of(src[i]);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (rows * cols > kMin)
  for (long r = 0; r < rows; r++) {
    const float *s = src + r * ld;
    uint16_t *d = dst + r * cols;
    for (long c = 0; c < cols; c++) d[c] = bf16_of(s[c]);
  }
}

// ---------------------------------------------------------------------------------------------
// matmul primitives, cached by everything that shapes the generated code

// Geometry of one call: a batch of n1 x n2 problems, problem (i, j) at offsets i*xS1 + j*xS2 of each
// operand (xS = 0 broadcasts); a plain gemm is n1 = n2 = 1.
struct Geom {
  bool tA, tB;
  long M, N, K, lda, ldb, ldc;
  long n1 = 1, n2 = 1, aS1 = 0, aS2 = 0, bS1 = 0, bS2 = 0, cS1 = 0, cS2 = 0;
};

using Key = std::tuple<int, bool, bool, std::array<long, 14>, float, float, bool, int>;

struct Prim {
  dnnl::matmul prim;
  memory::desc a, b, c;
  std::string impl;
  memory::desc bias;
};

std::map<Key, Prim> cache;
const size_t kMaxCached = 512;  // length bucketing gives a few shapes per bucket; this bounds a long run

// A is M x K after op (stored K x M when tA), B is K x N after op (stored N x K when tB); row-major
// with leading dimensions lda/ldb/ldc. Transposes and batch steps become strides: nothing is copied.
// With `bias`, a float32 row of N values is added to every row of C (a plain gemm only); `act` 1 or 2
// applies GELU (erf, tanh approximation) to the result as the product writes it.
Prim &matmul_for(dt in, const Geom &g, float alpha, float beta, bool bias = false, int act = 0) {
  Key key{static_cast<int>(in), g.tA, g.tB,
          {g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.n1, g.n2, g.aS1, g.aS2, g.bS1, g.bS2, g.cS1, g.cS2}, alpha, beta, bias, act};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxCached) cache.clear();
  memory::dims sa = g.tA ? memory::dims{1, g.lda} : memory::dims{g.lda, 1};
  memory::dims sb = g.tB ? memory::dims{1, g.ldb} : memory::dims{g.ldb, 1};
  memory::dims sc{g.ldc, 1};
  memory::dims da{g.M, g.K}, db{g.K, g.N}, dc{g.M, g.N};
  // batch levels of size 1 are dropped (a size-1 dimension's stride would tie with another's and
  // make oneDNN fall back to its reference code); a broadcast operand (stride 0) gets a size-1
  // dimension whose stride is its matrix's extent
  auto lead = [](memory::dims &d, memory::dims &st, long n, long s) {
    long extent = std::max(d[0] * st[0], d[1] * st[1]);
    d.insert(d.begin(), s ? n : 1);
    st.insert(st.begin(), s ? s : extent);
  };
  for (auto [n, s_a, s_b, s_c] : {std::array<long, 4>{g.n2, g.aS2, g.bS2, g.cS2}, std::array<long, 4>{g.n1, g.aS1, g.bS1, g.cS1}}) {
    if (n == 1) continue;
    lead(da, sa, n, s_a);
    lead(db, sb, n, s_b);
    lead(dc, sc, n, s_c);
  }
  memory::desc a(da, in, sa), b(db, in, sb), c(dc, dt::f32, sc);
  dnnl::primitive_attr attr;
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f || act != 0) {
    dnnl::post_ops po;
    if (beta != 0.f) po.append_sum(beta);
    if (act != 0) po.append_eltwise(1.f, act == 1 ? dnnl::algorithm::eltwise_gelu_erf : dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  memory::desc bd({1, g.N}, dt::f32, memory::dims{g.N, 1});
  dnnl::matmul::primitive_desc pd = bias ? dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, bd, c), attr, cpu())
                                         : dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, cpu());
  Prim p{dnnl::matmul(pd), a, b, c, pd.impl_info_str(), bd};
  return cache.emplace(key, std::move(p)).first->second;
}

void run(Prim &p, void *A, void *B, float *C, const float *bias = nullptr) {
  memory ma(p.a, cpu(), A), mb(p.b, cpu(), B), mc(p.c, cpu(), C);
  if (bias) {
    memory mbias(p.bias, cpu(), const_cast<float *>(bias));
    p.prim.execute(strm(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_BIAS, mbias}, {DNNL_ARG_DST, mc}});
  } else {
    p.prim.execute(strm(), {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  }
  strm().wait();
}

}  // namespace

// C = A B^T for bf16 A [M, K] (row stride lda) and B [N, K] (ldb) into float32 C (ldc), accumulated
// in float32: the Gram strips of knn.c's bf16 candidate search. Returns 0, or -1 when oneDNN failed
// (the caller then falls back to sgemm on the same bf16 values). Main thread only, as the addon.
extern "C" int gelora_dnnl_gram_bf16(long M, long N, long K, const uint16_t *A, long lda, const uint16_t *B, long ldb, float *C, long ldc) {
  try {
    Prim &p = matmul_for(dt::bf16, Geom{false, true, M, N, K, lda, ldb, ldc}, 1.f, 0.f);
    run(p, const_cast<uint16_t *>(A), const_cast<uint16_t *>(B), C);
    return 0;
  } catch (...) {
    return -1;
  }
}

namespace {

// bf16 copy of A, reused between calls (the addon runs on Node's main thread only)
std::vector<uint16_t> a_bf16;

#define GUARD_BEGIN try {
#define GUARD_END                                                              \
  }                                                                            \
  catch (const dnnl::error &e) {                                               \
    char msg[256];                                                             \
    snprintf(msg, sizeof msg, "gelora dnnl: oneDNN failed: %s (status %d)", e.what(), (int)e.status); \
    napi_throw_error(env, nullptr, msg);                                       \
  }                                                                            \
  catch (const std::exception &e) {                                            \
    napi_throw_error(env, nullptr, e.what());                                  \
  }                                                                            \
  return nullptr;

// gemmBf16(tA, tB, M, N, K, alpha, A: Float32Array | Uint16Array, aOff, lda, B: Uint16Array, bOff, ldb, beta, C, cOff, ldc
//          [, bias: Float32Array of N | null [, act: 0 | 1 | 2]]): with a bias, C = alpha op(A) op(B) + bias
// (+ beta C), the bias added by the product itself (a Linear's bias without a pass that first copies
// it into C); act 1 / 2 then applies GELU (erf / tanh approximation) as C is written
napi_value gemm_bf16(napi_env env, napi_callback_info info) {
  Args a(env, info, 16);
  bool tA = a.flag(0), tB = a.flag(1);
  long M = (long)a.num(2), N = (long)a.num(3), K = (long)a.num(4);
  float alpha = (float)a.num(5);
  // A already in bf16 (a Uint16Array) is used as it is: the copy loraPass (kernels.c) wrote in its pass over A
  bool a_is_bf16 = false;
  if (a.ok) {
    napi_typedarray_type type = napi_float32_array;
    bool is = false;
    napi_is_typedarray(env, a.v[6], &is);
    if (is) napi_get_typedarray_info(env, a.v[6], &type, nullptr, nullptr, nullptr, nullptr);
    a_is_bf16 = type == napi_uint16_array;
  }
  float *A = a_is_bf16 ? nullptr : a.f32(6);
  uint16_t *Ab = a_is_bf16 ? a.u16(6) : nullptr;
  long aOff = (long)a.num(7), lda = (long)a.num(8);
  uint16_t *B = a.u16(9); long bOff = (long)a.num(10), ldb = (long)a.num(11);
  float beta = (float)a.num(12);
  float *C = a.f32(13); long cOff = (long)a.num(14), ldc = (long)a.num(15);
  a.gemm_extents(tA, tB, M, N, K, aOff, lda, bOff, ldb, cOff, ldc);
  float *bias = nullptr;
  if (a.ok && a.n > 16) {
    napi_valuetype vt;
    napi_typeof(env, a.v[16], &vt);
    if (vt != napi_null && vt != napi_undefined) {
      bias = a.f32(16);
      if (a.ok && static_cast<long>(a.lens[16]) != N) a.fail("argument bias must have N values");
    }
  }
  int act = a.ok && a.n > 17 ? static_cast<int>(a.num(17)) : 0;
  if (a.ok && (act < 0 || act > 2)) a.fail("argument act must be 0 (none), 1 (GELU, erf) or 2 (GELU, tanh)");
  if (!a.ok) return nullptr;
  if (M == 0 || N == 0) return nullptr;
  GUARD_BEGIN
  if (!a_is_bf16) {
    long rows = tA ? K : M, cols = tA ? M : K;
    a_bf16.resize(static_cast<size_t>(rows * cols));
    to_bf16(a_bf16.data(), A + aOff, rows, cols, lda);
    Ab = a_bf16.data();
    aOff = 0;
    lda = cols;
  }
  Prim &p = matmul_for(dt::bf16, Geom{tA, tB, M, N, K, lda, ldb, ldc}, alpha, beta, bias != nullptr, act);
  run(p, Ab + aOff, B + bOff, C + cOff, bias);
  GUARD_END
}

// gemmDnnl: the arguments of the Kernels interface's gemm (all Float32Array)
napi_value gemm_f32(napi_env env, napi_callback_info info) {
  Args a(env, info, 16);
  bool tA = a.flag(0), tB = a.flag(1);
  long M = (long)a.num(2), N = (long)a.num(3), K = (long)a.num(4);
  float alpha = (float)a.num(5);
  float *A = a.f32(6); long aOff = (long)a.num(7), lda = (long)a.num(8);
  float *B = a.f32(9); long bOff = (long)a.num(10), ldb = (long)a.num(11);
  float beta = (float)a.num(12);
  float *C = a.f32(13); long cOff = (long)a.num(14), ldc = (long)a.num(15);
  a.gemm_extents(tA, tB, M, N, K, aOff, lda, bOff, ldb, cOff, ldc);
  if (!a.ok) return nullptr;
  if (M == 0 || N == 0) return nullptr;
  GUARD_BEGIN
  Prim &p = matmul_for(dt::f32, Geom{tA, tB, M, N, K, lda, ldb, ldc}, alpha, beta);
  run(p, A + aOff, B + bOff, C + cOff);
  GUARD_END
}

// The elements problem (i, j) of a batched operand addresses (rows x cols at ld), gathered into a
// dense bf16 [n1, n2, rows, cols] (zero batch strides gather the shared matrix once).
void gather_bf16(std::vector<uint16_t> &dst, const float *src, long rows, long cols, long ld, long n1, long s1,
                 long n2, long s2) {
  long m1 = s1 ? n1 : 1, m2 = s2 ? n2 : 1;
  dst.resize(static_cast<size_t>(m1 * m2 * rows * cols));
  for (long i = 0; i < m1; i++)
    for (long j = 0; j < m2; j++) to_bf16(dst.data() + (i * m2 + j) * rows * cols, src + i * s1 + j * s2, rows, cols, ld);
}

std::vector<uint16_t> b_bf16;

// The arguments of the Kernels interface's gemmBatched (all Float32Array), unpacked and checked:
// false when there is nothing to do or an error was thrown (every problem needs its own C).
struct Batched {
  Geom g;
  float alpha = 1, beta = 0, *A = nullptr, *B = nullptr, *C = nullptr;
  long aOff = 0, bOff = 0, cOff = 0;
};
bool batched_args(napi_env env, napi_callback_info info, const char *name, Batched &r) {
  Args a(env, info, 24);
  Geom &g = r.g;
  g.tA = a.flag(0), g.tB = a.flag(1);
  g.M = (long)a.num(2), g.N = (long)a.num(3), g.K = (long)a.num(4);
  r.alpha = (float)a.num(5);
  r.A = a.f32(6); r.aOff = (long)a.num(7); g.lda = (long)a.num(8);
  g.aS1 = (long)a.num(9), g.aS2 = (long)a.num(10);
  r.B = a.f32(11); r.bOff = (long)a.num(12); g.ldb = (long)a.num(13);
  g.bS1 = (long)a.num(14), g.bS2 = (long)a.num(15);
  r.beta = (float)a.num(16);
  r.C = a.f32(17); r.cOff = (long)a.num(18); g.ldc = (long)a.num(19);
  g.cS1 = (long)a.num(20), g.cS2 = (long)a.num(21);
  g.n1 = (long)a.num(22), g.n2 = (long)a.num(23);
  a.extent(6, "A", r.aOff, g.tA ? g.K : g.M, g.tA ? g.M : g.K, g.lda, g.n1, g.aS1, g.n2, g.aS2);
  a.extent(11, "B", r.bOff, g.tB ? g.N : g.K, g.tB ? g.K : g.N, g.ldb, g.n1, g.bS1, g.n2, g.bS2);
  a.extent(17, "C", r.cOff, g.M, g.N, g.ldc, g.n1, g.cS1, g.n2, g.cS2);
  if (!a.ok) return false;
  if (g.M == 0 || g.N == 0 || g.n1 == 0 || g.n2 == 0) return false;
  if ((g.cS1 == 0 && g.n1 > 1) || (g.cS2 == 0 && g.n2 > 1)) {
    char msg[128];
    snprintf(msg, sizeof msg, "gelora dnnl: %s needs a distinct C per problem", name);
    napi_throw_error(env, nullptr, msg);
    return false;
  }
  return true;
}

// gemmBatchedBf16: gemmBatched with both inputs rounded to bf16 (activations, e.g. attention's QK^T
// and PV, as torch.autocast does), then the whole batch as one oneDNN primitive.
napi_value gemm_batched_bf16(napi_env env, napi_callback_info info) {
  Batched r;
  if (!batched_args(env, info, "gemmBatchedBf16", r)) return nullptr;
  Geom g = r.g;
  float *A = r.A, *B = r.B, *C = r.C, alpha = r.alpha, beta = r.beta;
  long aOff = r.aOff, bOff = r.bOff, cOff = r.cOff;
  GUARD_BEGIN
  long aR = g.tA ? g.K : g.M, aC = g.tA ? g.M : g.K, bR = g.tB ? g.N : g.K, bC = g.tB ? g.K : g.N;
  gather_bf16(a_bf16, A + aOff, aR, aC, g.lda, g.n1, g.aS1, g.n2, g.aS2);
  gather_bf16(b_bf16, B + bOff, bR, bC, g.ldb, g.n1, g.bS1, g.n2, g.bS2);
  // the dense copies' own strides
  auto dense = [&](long &ld, long &s1, long &s2, long rows, long cols) {
    long m2 = s2 ? g.n2 : 1;
    ld = cols;
    s2 = s2 ? rows * cols : 0;
    s1 = s1 ? m2 * rows * cols : 0;
  };
  dense(g.lda, g.aS1, g.aS2, aR, aC);
  dense(g.ldb, g.bS1, g.bS2, bR, bC);
  Prim &p = matmul_for(dt::bf16, g, alpha, beta);
  run(p, a_bf16.data(), b_bf16.data(), C + cOff);
  GUARD_END
}

// gemmBatchedDnnl: gemmBatched run in float32 by oneDNN as one primitive over the whole batch,
// operands addressed in place through their strides (nothing gathered). Attention's products in bf16 mode: they stay float32, as they did on
// OpenBLAS, but a batch of 96 small problems is one threaded call instead of 96 sgemm calls.
napi_value gemm_batched_f32(napi_env env, napi_callback_info info) {
  Batched r;
  if (!batched_args(env, info, "gemmBatchedDnnl", r)) return nullptr;
  GUARD_BEGIN
  Prim &p = matmul_for(dt::f32, r.g, r.alpha, r.beta);
  run(p, r.A + r.aOff, r.B + r.bOff, r.C + r.cOff);
  GUARD_END
}

// f32ToBf16(dst: Uint16Array, dOff, src: Float32Array, sOff, n): how weights become bf16
napi_value f32_to_bf16(napi_env env, napi_callback_info info) {
  Args a(env, info, 5);
  uint16_t *dst = a.u16(0); long dOff = (long)a.num(1);
  float *src = a.f32(2); long sOff = (long)a.num(3), n = (long)a.num(4);
  a.extent(0, "dst", dOff, 1, n, n);
  a.extent(2, "src", sOff, 1, n, n);
  if (!a.ok) return nullptr;
  to_bf16(dst + dOff, src + sOff, 1, n, n);
  return nullptr;
}

// f32ToBf16Rows(dst: Uint16Array, dOff, ldd, src: Float32Array, sOff, lds, rows, cols, scale):
// dst[r * ldd + c] = bf16(scale * src[r * lds + c]): a LoRA factor written into linear's joined weight
// (a few thousand values, often r per row: one call instead of one per row)
napi_value f32_to_bf16_rows(napi_env env, napi_callback_info info) {
  Args a(env, info, 9);
  uint16_t *dst = a.u16(0); long dOff = (long)a.num(1), ldd = (long)a.num(2);
  float *src = a.f32(3); long sOff = (long)a.num(4), lds = (long)a.num(5), rows = (long)a.num(6), cols = (long)a.num(7);
  float scale = (float)a.num(8);
  a.extent(0, "dst", dOff, rows, cols, ldd);
  a.extent(3, "src", sOff, rows, cols, lds);
  if (!a.ok) return nullptr;
  for (long r = 0; r < rows; r++)
    for (long c = 0; c < cols; c++) dst[dOff + r * ldd + c] = bf16_of(scale * src[sOff + r * lds + c]);
  return nullptr;
}

// The implementation oneDNN chose for a shape (e.g. "brg:avx512_core_amx"), for benchmarks' JSON.
// dnnlImpl(bf16: boolean, tA, tB, M, N, K)
napi_value impl_of(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  bool bf = a.flag(0), tA = a.flag(1), tB = a.flag(2);
  long M = (long)a.num(3), N = (long)a.num(4), K = (long)a.num(5);
  if (!a.ok) return nullptr;
  GUARD_BEGIN
  Prim &p = matmul_for(bf ? dt::bf16 : dt::f32, Geom{tA, tB, M, N, K, tA ? M : K, tB ? K : N, N}, 1.f, 0.f);
  napi_value s;
  napi_create_string_utf8(env, p.impl.c_str(), NAPI_AUTO_LENGTH, &s);
  return s;
  GUARD_END
}

const char *isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
  }
}

void set_prop(napi_env env, napi_value obj, const char *name, napi_value v) { napi_set_named_property(env, obj, name, v); }

// dnnlInfo() -> {library, isa, avx512bf16, amx, threads}: the ISA oneDNN dispatches to on this CPU
// (what the CPU and OS allow, capped by DNNL_MAX_CPU_ISA), which decides whether bf16 is worth it.
napi_value info_of(napi_env env, napi_callback_info) {
  GUARD_BEGIN
  const dnnl_version_t *ver = dnnl_version();
  dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  unsigned bits = static_cast<unsigned>(isa);
  bool bf16 = (bits & static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16)) ==
              static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  bool amx = (bits & static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx)) ==
             static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
  char lib[64];
  snprintf(lib, sizeof lib, "oneDNN %d.%d.%d", ver->major, ver->minor, ver->patch);
  napi_value obj, v;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, lib, NAPI_AUTO_LENGTH, &v); set_prop(env, obj, "library", v);
  napi_create_string_utf8(env, isa_name(isa), NAPI_AUTO_LENGTH, &v); set_prop(env, obj, "isa", v);
  napi_get_boolean(env, bf16, &v); set_prop(env, obj, "avx512bf16", v);
  napi_get_boolean(env, amx, &v); set_prop(env, obj, "amx", v);
  napi_create_int32(env, omp_get_max_threads(), &v); set_prop(env, obj, "threads", v);
  return obj;
  GUARD_END
}

// dnnlSetThreads(n): oneDNN runs on OpenMP (libgomp), a pool separate from OpenBLAS's
napi_value set_threads(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  int n = (int)a.num(0);
  if (!a.ok) return nullptr;
  omp_set_num_threads(n);
  return nullptr;
}

}  // namespace

extern "C" void gelora_dnnl_register(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
#define FN(name, fn) {name, nullptr, fn, nullptr, nullptr, nullptr, napi_enumerable, nullptr}
      FN("gemmBf16", gemm_bf16), FN("gemmDnnl", gemm_f32), FN("gemmBatchedBf16", gemm_batched_bf16), FN("gemmBatchedDnnl", gemm_batched_f32), FN("f32ToBf16", f32_to_bf16), FN("f32ToBf16Rows", f32_to_bf16_rows),
      FN("dnnlImpl", impl_of), FN("dnnlInfo", info_of), FN("dnnlSetThreads", set_threads),
#undef FN
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
}
