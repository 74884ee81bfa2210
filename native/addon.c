// N-API glue: unpack JavaScript arguments, call the kernel. No allocation, no copies: typed arrays
// are passed by pointer. Argument order follows src/engine/kernels.ts exactly.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include "kernels.h"

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);

#define MAXARGS 24
#define THROW(env, msg) do { napi_throw_error(env, NULL, msg); return NULL; } while (0)

typedef struct { napi_env env; napi_value *v; size_t n; int ok; } Args;

static Args args_of(napi_env env, napi_callback_info info, napi_value *buf, size_t want) {
  Args a = {env, buf, MAXARGS, 1};
  napi_get_cb_info(env, info, &a.n, buf, NULL, NULL);
  if (a.n < want) { napi_throw_type_error(env, NULL, "gelora native: too few arguments"); a.ok = 0; }
  return a;
}

// A Float32Array (or null/undefined -> NULL when optional). Sets ok = 0 and throws on anything else.
static float *f32(Args *a, size_t i, int optional) {
  if (!a->ok) return NULL;
  napi_valuetype t;
  napi_typeof(a->env, a->v[i], &t);
  if (optional && (t == napi_null || t == napi_undefined)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(a->env, a->v[i], &is_ta);
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (is_ta) napi_get_typedarray_info(a->env, a->v[i], &type, &len, &data, NULL, NULL);
  if (!is_ta || type != napi_float32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "gelora native: argument %zu must be a Float32Array", i);
    napi_throw_type_error(a->env, NULL, msg);
    a->ok = 0;
    return NULL;
  }
  return (float *)data;
}

static int32_t *i32(Args *a, size_t i) {
  if (!a->ok) return NULL;
  bool is_ta = false;
  napi_is_typedarray(a->env, a->v[i], &is_ta);
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (is_ta) napi_get_typedarray_info(a->env, a->v[i], &type, &len, &data, NULL, NULL);
  if (!is_ta || type != napi_int32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "gelora native: argument %zu must be an Int32Array", i);
    napi_throw_type_error(a->env, NULL, msg);
    a->ok = 0;
    return NULL;
  }
  return (int32_t *)data;
}

static int32_t i32len(Args *a, size_t i) {
  size_t len = 0;
  napi_typedarray_type type;
  if (a->ok) napi_get_typedarray_info(a->env, a->v[i], &type, &len, NULL, NULL, NULL);
  return (int32_t)len;
}

static double num(Args *a, size_t i) {
  double d = 0;
  if (a->ok && napi_get_value_double(a->env, a->v[i], &d) != napi_ok) {
    napi_throw_type_error(a->env, NULL, "gelora native: expected a number");
    a->ok = 0;
  }
  return d;
}

static int flag(Args *a, size_t i) {
  bool b = false;
  if (a->ok) napi_get_value_bool(a->env, a->v[i], &b);
  return b ? 1 : 0;
}

#define ARGS(n) napi_value buf_[MAXARGS]; Args a = args_of(env, info, buf_, n); if (!a.ok) return NULL
#define DONE() return NULL

static napi_value gemm(napi_env env, napi_callback_info info) {
  ARGS(16);
  int tA = flag(&a, 0), tB = flag(&a, 1), M = (int)num(&a, 2), N = (int)num(&a, 3), K = (int)num(&a, 4);
  float alpha = (float)num(&a, 5);
  float *A = f32(&a, 6, 0); long aOff = (long)num(&a, 7); int lda = (int)num(&a, 8);
  float *B = f32(&a, 9, 0); long bOff = (long)num(&a, 10); int ldb = (int)num(&a, 11);
  float beta = (float)num(&a, 12);
  float *C = f32(&a, 13, 0); long cOff = (long)num(&a, 14); int ldc = (int)num(&a, 15);
  if (!a.ok) return NULL;
  k_gemm(tA, tB, M, N, K, alpha, A + aOff, lda, B + bOff, ldb, beta, C + cOff, ldc);
  DONE();
}

static napi_value gemm_batched(napi_env env, napi_callback_info info) {
  ARGS(24);
  int tA = flag(&a, 0), tB = flag(&a, 1), M = (int)num(&a, 2), N = (int)num(&a, 3), K = (int)num(&a, 4);
  float alpha = (float)num(&a, 5);
  float *A = f32(&a, 6, 0); long aOff = (long)num(&a, 7); int lda = (int)num(&a, 8);
  long aS1 = (long)num(&a, 9), aS2 = (long)num(&a, 10);
  float *B = f32(&a, 11, 0); long bOff = (long)num(&a, 12); int ldb = (int)num(&a, 13);
  long bS1 = (long)num(&a, 14), bS2 = (long)num(&a, 15);
  float beta = (float)num(&a, 16);
  float *C = f32(&a, 17, 0); long cOff = (long)num(&a, 18); int ldc = (int)num(&a, 19);
  long cS1 = (long)num(&a, 20), cS2 = (long)num(&a, 21);
  int n1 = (int)num(&a, 22), n2 = (int)num(&a, 23);
  if (!a.ok) return NULL;
  k_gemm_batched(tA, tB, M, N, K, alpha, A + aOff, lda, aS1, aS2, B + bOff, ldb, bS1, bS2, beta,
                 C + cOff, ldc, cS1, cS2, n1, n2);
  DONE();
}

static napi_value binary(napi_env env, napi_callback_info info) {
  ARGS(7);
  int op = (int)num(&a, 0);
  float *out = f32(&a, 1, 0), *x = f32(&a, 2, 0), *y = f32(&a, 3, 0);
  int32_t *shape = i32(&a, 4), *sa = i32(&a, 5), *sb = i32(&a, 6);
  int nd = i32len(&a, 4);
  if (!a.ok) return NULL;
  if (nd > 8) THROW(env, "gelora native: at most 8 dimensions");
  k_binary(op, out, x, y, nd, shape, sa, sb);
  DONE();
}

static napi_value accumulate(napi_env env, napi_callback_info info) {
  ARGS(8);
  float *dst = f32(&a, 0, 0), *src = f32(&a, 1, 0), *mul = f32(&a, 2, 1);
  float alpha = (float)num(&a, 3);
  int32_t *shape = i32(&a, 4), *sd = i32(&a, 5), *ss = i32(&a, 6), *sm = i32(&a, 7);
  int nd = i32len(&a, 4);
  if (!a.ok) return NULL;
  if (nd > 8) THROW(env, "gelora native: at most 8 dimensions");
  k_accumulate(dst, src, mul, alpha, nd, shape, sd, ss, sm);
  DONE();
}

static napi_value unary(napi_env env, napi_callback_info info) {
  ARGS(4);
  int op = (int)num(&a, 0);
  float *out = f32(&a, 1, 0), *inp = f32(&a, 2, 0);
  long n = (long)num(&a, 3);
  if (!a.ok) return NULL;
  k_unary(op, out, inp, n);
  DONE();
}

static napi_value unary_backward(napi_env env, napi_callback_info info) {
  ARGS(5);
  int op = (int)num(&a, 0);
  float *dinp = f32(&a, 1, 0), *inp = f32(&a, 2, 0), *dout = f32(&a, 3, 0);
  long n = (long)num(&a, 4);
  if (!a.ok) return NULL;
  k_unary_backward(op, dinp, inp, dout, n);
  DONE();
}

static napi_value softmax(napi_env env, napi_callback_info info) {
  ARGS(8);
  float *out = f32(&a, 0, 0), *inp = f32(&a, 1, 0);
  long rows = (long)num(&a, 2); int cols = (int)num(&a, 3); float scale = (float)num(&a, 4);
  float *mask = f32(&a, 5, 1); long group = (long)num(&a, 6); int causalQ = (int)num(&a, 7);
  if (!a.ok) return NULL;
  k_softmax(out, inp, rows, cols, scale, mask, group > 0 ? group : 1, causalQ);
  DONE();
}

static napi_value softmax_backward(napi_env env, napi_callback_info info) {
  ARGS(6);
  float *dinp = f32(&a, 0, 0), *out = f32(&a, 1, 0), *dout = f32(&a, 2, 0);
  long rows = (long)num(&a, 3); int cols = (int)num(&a, 4); float scale = (float)num(&a, 5);
  if (!a.ok) return NULL;
  k_softmax_backward(dinp, out, dout, rows, cols, scale);
  DONE();
}

static napi_value layernorm(napi_env env, napi_callback_info info) {
  ARGS(11);
  float *out = f32(&a, 0, 0), *sum = f32(&a, 1, 0), *mean = f32(&a, 2, 0), *rstd = f32(&a, 3, 0);
  float *inp = f32(&a, 4, 0), *res = f32(&a, 5, 1), *w = f32(&a, 6, 1), *b = f32(&a, 7, 1);
  long N = (long)num(&a, 8); int C = (int)num(&a, 9); float eps = (float)num(&a, 10);
  if (!a.ok) return NULL;
  k_layernorm(out, sum, mean, rstd, inp, res, w, b, N, C, eps);
  DONE();
}

static napi_value layernorm_backward(napi_env env, napi_callback_info info) {
  ARGS(10);
  float *dinp = f32(&a, 0, 1), *dw = f32(&a, 1, 1), *db = f32(&a, 2, 1), *dout = f32(&a, 3, 0);
  float *x = f32(&a, 4, 0), *w = f32(&a, 5, 1), *mean = f32(&a, 6, 0), *rstd = f32(&a, 7, 0);
  long N = (long)num(&a, 8); int C = (int)num(&a, 9);
  if (!a.ok) return NULL;
  k_layernorm_backward(dinp, dw, db, dout, x, w, mean, rstd, N, C);
  DONE();
}

static napi_value rmsnorm(napi_env env, napi_callback_info info) {
  ARGS(7);
  float *out = f32(&a, 0, 0), *rstd = f32(&a, 1, 0), *inp = f32(&a, 2, 0), *w = f32(&a, 3, 0);
  long N = (long)num(&a, 4); int C = (int)num(&a, 5); float eps = (float)num(&a, 6);
  if (!a.ok) return NULL;
  k_rmsnorm(out, rstd, inp, w, N, C, eps);
  DONE();
}

static napi_value rmsnorm_backward(napi_env env, napi_callback_info info) {
  ARGS(8);
  float *dinp = f32(&a, 0, 1), *dw = f32(&a, 1, 1), *dout = f32(&a, 2, 0), *inp = f32(&a, 3, 0);
  float *w = f32(&a, 4, 0), *rstd = f32(&a, 5, 0);
  long N = (long)num(&a, 6); int C = (int)num(&a, 7);
  if (!a.ok) return NULL;
  k_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
  DONE();
}

static napi_value embedding(napi_env env, napi_callback_info info) {
  ARGS(5);
  float *out = f32(&a, 0, 0), *table = f32(&a, 1, 0); int32_t *ids = i32(&a, 2);
  long n = (long)num(&a, 3); int C = (int)num(&a, 4);
  if (!a.ok) return NULL;
  k_embedding(out, table, ids, n, C);
  DONE();
}

static napi_value embedding_backward(napi_env env, napi_callback_info info) {
  ARGS(5);
  float *dt = f32(&a, 0, 0), *dout = f32(&a, 1, 0); int32_t *ids = i32(&a, 2);
  long n = (long)num(&a, 3); int C = (int)num(&a, 4);
  if (!a.ok) return NULL;
  k_embedding_backward(dt, dout, ids, n, C);
  DONE();
}

static napi_value gather_last(napi_env env, napi_callback_info info) {
  ARGS(7);
  float *out = f32(&a, 0, 0), *src = f32(&a, 1, 0); int32_t *idx = i32(&a, 2);
  long outer = (long)num(&a, 3); int srcLast = (int)num(&a, 4), idxLast = (int)num(&a, 5);
  long idxOuter = (long)num(&a, 6);
  if (!a.ok) return NULL;
  k_gather_last(out, src, idx, outer, srcLast, idxLast, idxOuter);
  DONE();
}

static napi_value gather_last_backward(napi_env env, napi_callback_info info) {
  ARGS(7);
  float *ds = f32(&a, 0, 0), *dout = f32(&a, 1, 0); int32_t *idx = i32(&a, 2);
  long outer = (long)num(&a, 3); int srcLast = (int)num(&a, 4), idxLast = (int)num(&a, 5);
  long idxOuter = (long)num(&a, 6);
  if (!a.ok) return NULL;
  k_gather_last_backward(ds, dout, idx, outer, srcLast, idxLast, idxOuter);
  DONE();
}

static napi_value rope(napi_env env, napi_callback_info info) {
  ARGS(10);
  float *out = f32(&a, 0, 0), *inp = f32(&a, 1, 0), *c = f32(&a, 2, 0), *s = f32(&a, 3, 0);
  int B = (int)num(&a, 4), T = (int)num(&a, 5), H = (int)num(&a, 6), d = (int)num(&a, 7);
  float sign = (float)num(&a, 8); int acc = flag(&a, 9);
  if (!a.ok) return NULL;
  k_rope(out, inp, c, s, B, T, H, d, sign, acc);
  DONE();
}

static napi_value knn_select(napi_env env, napi_callback_info info) {
  ARGS(9);
  int32_t *idx = i32(&a, 0); float *d2 = f32(&a, 1, 0), *G = f32(&a, 2, 0), *rs = f32(&a, 3, 0), *cs = f32(&a, 4, 0);
  long rows = (long)num(&a, 5), cols = (long)num(&a, 6), self = (long)num(&a, 7); int k = (int)num(&a, 8);
  if (!a.ok) return NULL;
  k_knn_select(idx, d2, G, rs, cs, rows, cols, self, k);
  DONE();
}

static napi_value adamw(napi_env env, napi_callback_info info) {
  ARGS(12);
  float *p = f32(&a, 0, 0), *g = f32(&a, 1, 0), *m = f32(&a, 2, 0), *v = f32(&a, 3, 0);
  long n = (long)num(&a, 4);
  double lr = num(&a, 5), b1 = num(&a, 6), b2 = num(&a, 7), eps = num(&a, 8);
  double wd = num(&a, 9), bc1 = num(&a, 10), bc2 = num(&a, 11);
  if (!a.ok) return NULL;
  k_adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
  DONE();
}

static napi_value dropout_mask(napi_env env, napi_callback_info info) {
  ARGS(5);
  float *mask = f32(&a, 0, 0);
  long n = (long)num(&a, 1);
  double p = num(&a, 2), keep = num(&a, 3);
  uint32_t state = (uint32_t)num(&a, 4);
  if (!a.ok) return NULL;
  napi_value out;
  napi_create_uint32(env, k_dropout_mask(mask, n, p, keep, state), &out);
  return out;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  ARGS(1);
  int n = (int)num(&a, 0);
  if (!a.ok) return NULL;
  openblas_set_num_threads(n);
  DONE();
}

static napi_value blas_info(napi_env env, napi_callback_info info) {
  char text[256];
  snprintf(text, sizeof text, "%s; threads %d", openblas_get_config(), openblas_get_num_threads());
  napi_value s;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &s);
  return s;
}

#ifdef GELORA_DNNL
extern void gelora_dnnl_register(napi_env env, napi_value exports);  // dnnl.cc: bf16/oneDNN matmuls
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
    FN("gemm", gemm), FN("gemmBatched", gemm_batched), FN("binary", binary), FN("accumulate", accumulate),
    FN("unary", unary), FN("unaryBackward", unary_backward), FN("softmax", softmax),
    FN("softmaxBackward", softmax_backward), FN("layernorm", layernorm), FN("layernormBackward", layernorm_backward),
    FN("rmsnorm", rmsnorm), FN("rmsnormBackward", rmsnorm_backward), FN("embedding", embedding),
    FN("embeddingBackward", embedding_backward), FN("gatherLast", gather_last),
    FN("gatherLastBackward", gather_last_backward), FN("rope", rope), FN("knnSelect", knn_select), FN("adamw", adamw), FN("dropoutMask", dropout_mask),
    FN("setThreads", set_threads), FN("blasInfo", blas_info),
#undef FN
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
#ifdef GELORA_DNNL
  gelora_dnnl_register(env, exports);
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
