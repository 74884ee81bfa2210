// Argument unpacking and bounds arithmetic for the generated N-API glue (glue.gen.c). Every check
// throws a JavaScript error naming the kernel and the argument; the kernel then does not run.
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define MAXARGS 24

typedef struct { napi_env env; napi_value v[MAXARGS]; size_t n; int ok; const char *kernel; } Args;

static int args_of(Args *a, napi_env env, napi_callback_info info, const char *kernel, size_t want) {
  a->env = env; a->n = MAXARGS; a->ok = 1; a->kernel = kernel;
  napi_get_cb_info(env, info, &a->n, a->v, NULL, NULL);
  if (a->n < want) {
    char msg[160];
    snprintf(msg, sizeof msg, "gelora native: %s takes %zu arguments, got %zu", kernel, want, a->n);
    napi_throw_type_error(env, NULL, msg);
    a->ok = 0;
  }
  return a->ok;
}

static void arg_fail(Args *a, const char *name, const char *what) {
  if (!a->ok) return;
  char msg[256];
  snprintf(msg, sizeof msg, "gelora native: %s: argument %s %s", a->kernel, name, what);
  napi_throw_type_error(a->env, NULL, msg);
  a->ok = 0;
}

static double arg_num(Args *a, size_t i, const char *name) {
  double d = 0;
  if (a->ok && napi_get_value_double(a->env, a->v[i], &d) != napi_ok) arg_fail(a, name, "must be a number");
  return d;
}

// An integer in [lo, hi]: sizes, offsets and strides are non-negative, so a negative offset is an
// error here rather than a read before the buffer.
static long long arg_int(Args *a, size_t i, const char *name, double lo, double hi) {
  double d = arg_num(a, i, name);
  if (a->ok && !(d == floor(d) && d >= lo && d <= hi)) {
    char what[128];
    snprintf(what, sizeof what, "must be an integer in [%.0f, %.0f], got %g", lo, hi, d);
    arg_fail(a, name, what);
  }
  return (long long)d;
}

static int arg_bool(Args *a, size_t i, const char *name) {
  bool b = false;
  if (a->ok && napi_get_value_bool(a->env, a->v[i], &b) != napi_ok) arg_fail(a, name, "must be a boolean");
  return b ? 1 : 0;
}

static const char *ta_name(napi_typedarray_type t) {
  switch (t) {
  case napi_float32_array: return "a Float32Array";
  case napi_float64_array: return "a Float64Array";
  case napi_int32_array: return "an Int32Array";
  case napi_uint16_array: return "a Uint16Array";
  default: return "a typed array";
  }
}

// A typed array of `type` (or NULL for null/undefined when optional); its element count in *len.
static void *arg_buf(Args *a, size_t i, const char *name, napi_typedarray_type want, int optional, long long *len) {
  *len = 0;
  if (!a->ok) return NULL;
  napi_valuetype vt;
  napi_typeof(a->env, a->v[i], &vt);
  if (optional && (vt == napi_null || vt == napi_undefined)) return NULL;
  bool is_ta = false;
  napi_is_typedarray(a->env, a->v[i], &is_ta);
  napi_typedarray_type type = napi_int8_array;
  size_t n = 0;
  void *data = NULL;
  if (is_ta) napi_get_typedarray_info(a->env, a->v[i], &type, &n, &data, NULL, NULL);
  if (!is_ta || type != want) {
    char what[96];
    snprintf(what, sizeof what, "must be %s%s", ta_name(want), optional ? " or null" : "");
    arg_fail(a, name, what);
    return NULL;
  }
  *len = (long long)n;
  return data;
}

static void need(Args *a, const char *name, long long have, long long needed) {
  if (!a->ok || needed <= have) return;
  char msg[256];
  snprintf(msg, sizeof msg, "gelora native: %s: argument %s has %lld values, but its offsets, strides and sizes reach %lld",
           a->kernel, name, have, needed);
  napi_throw_range_error(a->env, NULL, msg);
  a->ok = 0;
}

static void require(Args *a, int cond, const char *what) {
  if (!a->ok || cond) return;
  char msg[256];
  snprintf(msg, sizeof msg, "gelora native: %s: %s", a->kernel, what);
  napi_throw_range_error(a->env, NULL, msg);
  a->ok = 0;
}

// ---- bounds arithmetic (all in long long; "too large" is LLONG_MAX, which no buffer satisfies)

// elements spanned by `rows` rows of `cols` values, `ld` apart
static long long ext2(long long rows, long long cols, long long ld) {
  return rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0;
}

// an extent repeated over a two-level batch with strides s1, s2
static long long extb(long long e, long long n1, long long s1, long long n2, long long s2) {
  return e > 0 && n1 > 0 && n2 > 0 ? e + (n1 - 1) * s1 + (n2 - 1) * s2 : 0;
}

static long long prodi(long long nd, const int32_t *shape) {
  long long p = 1;
  for (long long d = 0; d < nd; d++) { if (shape[d] < 0) return LLONG_MAX; p *= shape[d]; }
  return p;
}

// elements reached reading `shape` through `str` (1 + the largest offset; 0 when empty)
static long long strided(long long nd, const int32_t *shape, const int32_t *str) {
  long long last = 0;
  for (long long d = 0; d < nd; d++) {
    if (shape[d] < 0 || str[d] < 0) return LLONG_MAX;
    if (shape[d] == 0) return 0;
    last += (long long)(shape[d] - 1) * str[d];
  }
  return last + 1;
}

// every id in [0, rows)
static int ids_below(const int32_t *ids, long long n, long long rows) {
  for (long long i = 0; i < n; i++) if (ids[i] < 0 || ids[i] >= rows) return 0;
  return 1;
}

static int labels_ok(const int32_t *labels, long long n, long long C, long long ignore) {
  for (long long i = 0; i < n; i++) if (labels[i] != ignore && (labels[i] < 0 || labels[i] >= C)) return 0;
  return 1;
}
