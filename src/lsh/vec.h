/* vec.h -- dense float primitives for LSH hashing, candidate scoring (HALOS) and the
 * extreme-classification trainer: dot products over gathered rows, row updates, a
 * lazily-applied Adam step over rows, and a packed single-precision GEMM.
 *
 * Every function has a portable C version (vec.c) and an AVX-512 version
 * (vec_avx512.c); the best one is picked once, at first use, from pl_cpu_isa()
 * (PILLAR_ISA=ref or avx2 in the environment selects the portable versions).
 * All arrays are plain row-major floats; no graph or tensor types. */
#ifndef PL_LSH_VEC_H
#define PL_LSH_VEC_H

#include <stdbool.h>
#include <stdint.h>

/* Adam hyper-parameters for pl_vec_adam_rows. `lr_t` already folds in the bias
 * correction: lr * sqrt(1 - beta2^t) / (1 - beta1^t). */
typedef struct pl_adam_step {
    float lr_t;
    float beta1, beta2, eps;
} pl_adam_step;

typedef struct pl_vec_ops {
    const char *isa; /* "avx512" or "ref" */
    float (*dot)(const float *a, const float *b, int64_t n);
    /* y += a * x */
    void (*axpy)(float a, const float *x, float *y, int64_t n);
    /* out[k] = W[ids[k]] . h + (bias ? bias[ids[k]] : 0) for k < n; rows of d floats,
     * row stride ldw. */
    void (*gather_dots)(const float *W, int64_t ldw, const float *bias, const uint32_t *ids,
                        int64_t n, const float *h, int64_t d, float *out);
    /* The backward pass of gather_dots for one input vector h:
     *   dh += sum_k g[k] * W[ids[k]]      (dh may be NULL)
     *   G[ids[k]] += g[k] * h             (G may be NULL)
     * rows of d floats with strides ldw / ldg. */
    void (*scatter_rows)(const float *W, int64_t ldw, float *G, int64_t ldg, const uint32_t *ids,
                         const float *g, int64_t n, const float *h, int64_t d, float *dh);
    /* y[0..n) = sum over i < m of x[i] * A[i * lda + 0..n) (rows with x[i] == 0 are
     * skipped): a vector times a row-major matrix, y kept in registers. */
    void (*vecmat)(const float *x, int64_t m, const float *A, int64_t lda, int64_t n, float *y);
    /* One Adam step of n parameters: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * w -= lr_t * m / (sqrt(v) + eps); g is read (and set to zero when zero_g). */
    void (*adam)(float *w, float *m, float *v, float *g, int64_t n, const pl_adam_step *s,
                 bool zero_g);
    /* C = alpha * op(A) op(B) + beta * C, same conventions as pl_ref_sgemm
     * (kernels/gemm/gemm.h): op(A) is M x K (A^T of a K x M matrix when ta), op(B) is
     * K x N (B^T of an N x K matrix when tb); beta == 0 never reads C. One thread. */
    void (*sgemm)(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
} pl_vec_ops;

/* The chosen implementation (thread-safe, decided once). */
const pl_vec_ops *pl_vec(void);
/* The portable implementation, for tests that compare against it. */
const pl_vec_ops *pl_vec_ref(void);

/* Filled by vec_avx512.c; returns false if it was compiled without AVX-512. */
bool pl_vec_avx512_ops(pl_vec_ops *ops);

#endif
