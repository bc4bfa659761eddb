/* ref.c -- reference GEMM: straightforward loops, the truth for faster kernels.
 *
 * Each output row is accumulated in a local buffer chunk so that the non-transposed
 * B case walks memory contiguously (i-k-j order) and the compiler can vectorise it;
 * the transposed-B case is a dot product per element. */
#include "kernels/gemm/gemm.h"

#define GEMM_CHUNK 256

#define DEFINE_GEMM(NAME, T)                                                                       \
    void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda, \
              const T *B, int64_t ldb, T beta, T *C, int64_t ldc) {                                \
        T acc[GEMM_CHUNK];                                                                         \
        for (int64_t m = 0; m < M; m++) {                                                          \
            T *crow = C + m * ldc;                                                                 \
            for (int64_t n0 = 0; n0 < N; n0 += GEMM_CHUNK) {                                       \
                int64_t nn = N - n0 < GEMM_CHUNK ? N - n0 : GEMM_CHUNK;                            \
                for (int64_t j = 0; j < nn; j++) acc[j] = 0;                                       \
                if (!tb) {                                                                         \
                    for (int64_t k = 0; k < K; k++) {                                              \
                        T a = ta ? A[k * lda + m] : A[m * lda + k];                                \
                        const T *brow = B + k * ldb + n0;                                          \
                        for (int64_t j = 0; j < nn; j++) acc[j] += a * brow[j];                    \
                    }                                                                              \
                } else {                                                                           \
                    for (int64_t j = 0; j < nn; j++) {                                             \
                        const T *bcol = B + (n0 + j) * ldb;                                        \
                        T s = 0;                                                                   \
                        if (ta)                                                                    \
                            for (int64_t k = 0; k < K; k++) s += A[k * lda + m] * bcol[k];         \
                        else                                                                       \
                            for (int64_t k = 0; k < K; k++) s += A[m * lda + k] * bcol[k];         \
                        acc[j] = s;                                                                \
                    }                                                                              \
                }                                                                                  \
                T *c = crow + n0;                                                                  \
                if (beta == 0)                                                                     \
                    for (int64_t j = 0; j < nn; j++) c[j] = alpha * acc[j];                        \
                else                                                                               \
                    for (int64_t j = 0; j < nn; j++) c[j] = alpha * acc[j] + beta * c[j];          \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_GEMM(pl_ref_sgemm, float)
DEFINE_GEMM(pl_ref_dgemm, double)
