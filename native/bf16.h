// float32 -> bf16 rounding shared by the C and C++ sources (dnnl.cc's products, knn.c's bf16 Gram):
// the top 16 bits of the float, rounded to nearest even; NaN stays a (quiet) NaN. The same rule as
// bf16Bits in src/engine/backends/dnnl.ts. Written so that the compiler vectorizes loops over it.
#ifndef GELORA_BF16_H
#define GELORA_BF16_H
#include <stdint.h>
#include <string.h>

static inline uint16_t bf16_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_value(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

#endif
