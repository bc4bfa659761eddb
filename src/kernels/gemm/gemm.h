/* gemm.h -- dense matrix multiply kernels over plain arrays (row-major).
 *
 *   C[m][n] = alpha * sum_k op(A)[m][k] * op(B)[k][n] + beta * C[m][n]
 *
 * op(A) is A (M x K, element (m,k) at A[m*lda + k]) or, when ta, the transpose of a
 * K x M matrix (element (m,k) at A[k*lda + m]); likewise op(B) is K x N, or when tb the
 * transpose of an N x K matrix. C is M x N with row stride ldc. When beta == 0, C is
 * not read (so NaN/garbage in C does not propagate), as in BLAS.
 *
 * ref.c holds the plain-C reference that faster ISA kernels are tested against. */
#ifndef PL_KERNELS_GEMM_H
#define PL_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

void pl_ref_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

void pl_ref_dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
                  int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

#endif
