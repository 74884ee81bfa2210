// N-API entry point. The per-kernel glue (argument unpacking, type and bounds checks) is generated
// from src/engine/kernel-spec.ts into glue.gen.c; only the non-kernel functions live here.
#include "glue.gen.c"
#include <string.h>

extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);

static napi_value blas_info(napi_env env, napi_callback_info info) {
  (void)info;
  char text[256];
  snprintf(text, sizeof text, "%s; threads %d", openblas_get_config(), openblas_get_num_threads());
  napi_value s;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &s);
  return s;
}

// elementThreads(n): the OpenMP threads of the element-wise kernels (kernels.c) and of oneDNN; n > 0
// sets them, and the count now in effect is returned (1 where the addon was built without OpenMP)
#ifdef _OPENMP
#include <omp.h>
#endif
static napi_value element_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t n = 0;
  if (argc > 0) napi_get_value_int32(env, argv[0], &n);
  int now = 1;
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
  now = omp_get_max_threads();
#endif
  napi_value v;
  napi_create_int32(env, now, &v);
  return v;
}

#ifdef GELORA_DNNL
extern void gelora_dnnl_register(napi_env env, napi_value exports);  // dnnl.cc: bf16/oneDNN matmuls
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_define_properties(env, exports, sizeof KERNEL_TABLE / sizeof KERNEL_TABLE[0], KERNEL_TABLE);
  napi_property_descriptor extra[] = {{"blasInfo", NULL, blas_info, NULL, NULL, NULL, napi_enumerable, NULL},
                                      {"elementThreads", NULL, element_threads, NULL, NULL, NULL, napi_enumerable, NULL}};
  napi_define_properties(env, exports, 2, extra);
#ifdef GELORA_DNNL
  gelora_dnnl_register(env, exports);
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
