/* spmm_matmul.h -- helpers of the sparse MatMul/Gemm path (ops/matmul_sparse.c) that
 * need per-ISA code: the transposes around the sparse kernel (A -> A^T before it, the
 * Y^T tile -> Y after it) and the sparse matrix-vector product of batch-1 layers.
 * spmm_matmul.c holds the plain-C versions (the reference) and the dispatch,
 * spmm_matmul_avx512.c the AVX-512 ones. */
#ifndef PL_KERNELS_SPMM_MATMUL_H
#define PL_KERNELS_SPMM_MATMUL_H

#include <stdint.h>

#include "kernels/sparse/sparse.h"

/* dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols (no overlap). */
void pl_spmm_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                       int64_t ldd);
void pl_spmm_transpose_ref(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                           int64_t ldd);

/* y[m - m0] = sum_k W[m][k] * x[k * incx] for rows m in [m0, m1) of w (no epilogue). */
void pl_spmm_gemv(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *x, int64_t incx,
                  float *y);
void pl_spmm_gemv_ref(const pl_sparse_w *w, int64_t m0, int64_t m1, const float *x, int64_t incx,
                      float *y);

/* ---- internal: the ISA file; NULL when built without AVX-512 */
typedef void (*pl_spmm_transpose_fn)(const float *, int64_t, int64_t, int64_t, float *, int64_t);
typedef void (*pl_spmm_gemv_fn)(const pl_sparse_w *, int64_t, int64_t, const float *, int64_t,
                                float *);
pl_spmm_transpose_fn pl_spmm_transpose_avx512(void);
pl_spmm_gemv_fn pl_spmm_gemv_avx512(void);

#endif
