// Kernels of the native backend. Contracts are documented once, in src/engine/kernels.ts.
#pragma once
#include <stdint.h>

void k_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
            const float *B, int ldb, float beta, float *C, int ldc);
void k_gemm_batched(int tA, int tB, int M, int N, int K, float alpha,
                    const float *A, int lda, long aS1, long aS2,
                    const float *B, int ldb, long bS1, long bS2, float beta,
                    float *C, int ldc, long cS1, long cS2, int n1, int n2);

void k_binary(int op, float *out, const float *a, const float *b, int ndim, const int32_t *shape,
              const int32_t *aStr, const int32_t *bStr);
void k_accumulate(float *dst, const float *src, const float *mul, float alpha, int ndim, const int32_t *shape,
                  const int32_t *dStr, const int32_t *sStr, const int32_t *mStr);

void k_unary(int op, float *out, const float *inp, long n);
void k_unary_backward(int op, float *dinp, const float *inp, const float *dout, long n);

void k_softmax(float *out, const float *inp, long rows, int cols, float scale,
               const float *mask, long maskGroup, int causalQ);
void k_softmax_backward(float *dinp, const float *out, const float *dout, long rows, int cols, float scale);

void k_layernorm(float *out, float *sum, float *mean, float *rstd, const float *inp, const float *residual,
                 const float *w, const float *b, long N, int C, float eps);
void k_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, long N, int C);

void k_rmsnorm(float *out, float *rstd, const float *inp, const float *w, long N, int C, float eps);
void k_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, long N, int C);

void k_embedding(float *out, const float *table, const int32_t *ids, long n, int C);
void k_embedding_backward(float *dtable, const float *dout, const int32_t *ids, long n, int C);

void k_gather_last(float *out, const float *src, const int32_t *idx, long outer, int srcLast, int idxLast, long idxOuter);
void k_gather_last_backward(float *dsrc, const float *dout, const int32_t *idx, long outer, int srcLast, int idxLast, long idxOuter);

void k_rope(float *out, const float *inp, const float *cos, const float *sin, int B, int T, int H, int d,
            float sign, int accumulate);

void k_knn_select(int32_t *outIdx, float *outD2, const float *G, const float *rowSq, const float *colSq,
                  long rows, long cols, long selfOffset, int k);

uint32_t k_dropout_mask(float *mask, long n, double p, double keep, uint32_t state);
void k_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double beta1, double beta2,
             double eps, double wd, double bc1, double bc2);
