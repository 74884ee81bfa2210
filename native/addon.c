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

#ifdef GELORA_DNNL
extern void gelora_dnnl_register(napi_env env, napi_value exports);  // dnnl.cc: bf16/oneDNN matmuls
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_define_properties(env, exports, sizeof KERNEL_TABLE / sizeof KERNEL_TABLE[0], KERNEL_TABLE);
  napi_property_descriptor extra[] = {{"blasInfo", NULL, blas_info, NULL, NULL, NULL, napi_enumerable, NULL}};
  napi_define_properties(env, exports, 1, extra);
#ifdef GELORA_DNNL
  gelora_dnnl_register(env, exports);
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
